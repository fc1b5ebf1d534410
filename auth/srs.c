/*
 * srs.c -- SRS0/SRS1 rewriting and its reversal, HMAC-SHA1 through wolfSSL.
 *
 * The format follows Mail::SRS::Guarded and libsrs2 (as bundled in postsrsd)
 * field by field; see srs.h. Addresses are split with a few scans over
 * (pointer, length) pairs, hashed through a small lowercasing window (no
 * copy of the address), and written with a bounded writer that measures the
 * result even when it does not fit, so length errors are exact.
 *
 * Decisions:
 * - The HMAC key is set for every hash (two SHA-1 blocks more than caching
 *   the padded key state): a struct srs stays plain data that can be copied
 *   and wiped, and reversing costs microseconds against a network round trip.
 * - srs_reverse checks every secret even after a match, and folds case
 *   without branches, so its timing does not tell which secret or which
 *   character matched.
 */
#include "auth/srs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include "core/check.h"
#include "core/err.h"

#define SRS_DAY	      86400 /* seconds per timestamp tick */
#define SRS_TS_SLOTS  1024  /* two base32 characters */
#define SRS_SEP	      '='   /* between fields; we also write it after the tag */
#define SRS_TAG_LEN   4	    /* "SRS0", "SRS1" */
#define SRS_LOWER_WIN 64    /* bytes lowercased per HMAC update */

static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char srs_base64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A field of an address: p[0..n), not NUL-terminated. */
struct srs_part {
	const char *p;
	size_t n;
};

/* ---- characters ---- */

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5321 atext, '.', or a UTF-8 byte (RFC 6531): what an unquoted local part holds. */
static bool
is_local_char(unsigned char c)
{
	return is_alnum(c) || c >= 0x80 || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

/* LDH, '.', or a UTF-8 byte: no '=' (the separator) and no address literal. */
static bool
is_host_char(unsigned char c)
{
	return is_alnum(c) || c >= 0x80 || c == '-' || c == '.';
}

static bool
all_chars(struct srs_part f, bool (*ok)(unsigned char))
{
	if (f.n == 0)
		return false;
	for (size_t i = 0; i < f.n; i++)
		if (!ok((unsigned char)f.p[i]))
			return false;
	return true;
}

static unsigned char
ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Branch-free ASCII lowercase, for the constant-time hash comparison. */
static unsigned
ct_lower(unsigned char c)
{
	return c | (unsigned)((unsigned)(c - 'A') < 26u) << 5;
}

static bool
ieq(struct srs_part a, const char *b, size_t n)
{
	if (a.n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ascii_lower((unsigned char)a.p[i]) != ascii_lower((unsigned char)b[i]))
			return false;
	return true;
}

static bool
is_sep(char c)
{
	return c == '=' || c == '+' || c == '-';
}

/* The tag of an SRS local part: '0' for SRS0<sep>..., '1' for SRS1<sep>..., else 0. */
static char
srs_tag(struct srs_part local)
{
	if (local.n <= SRS_TAG_LEN || !ieq((struct srs_part){local.p, 3}, "SRS", 3) ||
	    !is_sep(local.p[SRS_TAG_LEN]))
		return 0;
	if (local.p[3] == '0' || local.p[3] == '1')
		return local.p[3];
	return 0;
}

/* Split f at the first '=': *head before it, *f after it. False if there is none. */
static bool
split_sep(struct srs_part *f, struct srs_part *head)
{
	const char *eq = memchr(f->p, SRS_SEP, f->n);

	if (eq == NULL)
		return false;
	head->p = f->p;
	head->n = (size_t)(eq - f->p);
	f->n -= head->n + 1;
	f->p = eq + 1;
	return true;
}

/* Split an address at its last '@'. */
static bool
split_at(const char *addr, size_t len, struct srs_part *local, struct srs_part *host)
{
	const char *at = len > 0 ? memrchr(addr, '@', len) : NULL;

	if (at == NULL)
		return false;
	*local = (struct srs_part){addr, (size_t)(at - addr)};
	*host = (struct srs_part){at + 1, len - local->n - 1};
	return true;
}

/* ---- hash and timestamp ---- */

/*
 * The SRS hash: base64 of HMAC-SHA1(key, lc(parts[0]) || lc(parts[1]) ...),
 * first SRS_HASH_LEN characters (Mail::SRS hash_create, libsrs2
 * srs_hash_create_v: ASCII lowercasing, no separators between the parts).
 */
static void
srs_hash(const struct srs_secret *k, const struct srs_part *parts, size_t nparts,
	 char out[SRS_HASH_LEN])
{
	unsigned char win[SRS_LOWER_WIN], d[WC_SHA_DIGEST_SIZE];
	Hmac h;
	int rc;

	rc = wc_HmacInit(&h, NULL, INVALID_DEVID);
	BUG_ON(rc != 0);
	rc = wc_HmacSetKey(&h, WC_SHA, k->key, (word32)k->len);
	BUG_ON(rc != 0);
	for (size_t i = 0; i < nparts; i++) {
		for (size_t off = 0; off < parts[i].n; off += sizeof(win)) {
			size_t n = parts[i].n - off < sizeof(win) ? parts[i].n - off : sizeof(win);

			for (size_t j = 0; j < n; j++)
				win[j] = ascii_lower((unsigned char)parts[i].p[off + j]);
			rc = wc_HmacUpdate(&h, win, (word32)n);
			BUG_ON(rc != 0);
		}
	}
	rc = wc_HmacFinal(&h, d);
	BUG_ON(rc != 0);
	wc_HmacFree(&h);
	/* base64 of the first 3 digest bytes gives exactly 4 characters */
	out[0] = srs_base64[d[0] >> 2];
	out[1] = srs_base64[(d[0] & 0x03) << 4 | d[1] >> 4];
	out[2] = srs_base64[(d[1] & 0x0f) << 2 | d[2] >> 6];
	out[3] = srs_base64[d[2] & 0x3f];
}

/* True if some secret gives hash (case-insensitively); every secret is tried. */
static bool
srs_hash_ok(const struct srs *s, struct srs_part hash, const struct srs_part *parts, size_t nparts)
{
	unsigned match = 0;

	if (hash.n != SRS_HASH_LEN)
		return false;
	for (unsigned i = 0; i < s->nsecrets; i++) {
		char want[SRS_HASH_LEN];
		unsigned diff = 0;

		srs_hash(&s->secrets[i], parts, nparts, want);
		for (size_t j = 0; j < SRS_HASH_LEN; j++)
			diff |=
			    ct_lower((unsigned char)want[j]) ^ ct_lower((unsigned char)hash.p[j]);
		match |= ((diff - 1) >> 8) & 1; /* 1 iff diff == 0 (diff < 256) */
	}
	return match != 0;
}

static unsigned
srs_day(int64_t now)
{
	BUG_ON(now < 0);
	return (unsigned)((uint64_t)now / SRS_DAY % SRS_TS_SLOTS);
}

static void
srs_timestamp(int64_t now, char out[2])
{
	unsigned day = srs_day(now);

	out[0] = srs_base32[day >> 5];
	out[1] = srs_base32[day & 31];
}

/* The value of one base32 character (any case), or -1. */
static int
base32_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

/* The value 0..1023 of a two-character base32 timestamp, or -1. */
static int
srs_timestamp_value(struct srs_part ts)
{
	int hi, lo;

	if (ts.n != 2)
		return -1;
	hi = base32_value((unsigned char)ts.p[0]);
	lo = base32_value((unsigned char)ts.p[1]);
	if (hi < 0 || lo < 0)
		return -1;
	return hi << 5 | lo;
}

/* ---- a bounded writer that keeps counting past its end ---- */

struct srs_out {
	char *p;    /* caller's buffer */
	size_t cap; /* its size */
	size_t n;   /* bytes the result needs (may exceed cap) */
};

static void
out_put(struct srs_out *o, const char *p, size_t n)
{
	if (o->n < o->cap)
		memcpy(o->p + o->n, p, n < o->cap - o->n ? n : o->cap - o->n);
	o->n += n;
}

static void
out_part(struct srs_out *o, struct srs_part f)
{
	out_put(o, f.p, f.n);
}

static void
out_char(struct srs_out *o, char c)
{
	out_put(o, &c, 1);
}

/* Leave "" in the buffer and return err. */
static ssize_t
out_fail(struct srs_out *o, int err)
{
	if (o->cap > 0)
		o->p[0] = '\0';
	return err;
}

/* NUL-terminate; the length, or -SLUICE_ELIMIT / -ENOSPC. */
static ssize_t
out_end(struct srs_out *o)
{
	if (o->n > SRS_MAX_ADDRESS)
		return out_fail(o, -SLUICE_ELIMIT);
	if (o->n >= o->cap)
		return out_fail(o, -ENOSPC);
	o->p[o->n] = '\0';
	return (ssize_t)o->n;
}

/* ---- set-up and secrets ---- */

int
srs_init(struct srs *s, const char *domain, unsigned max_age)
{
	size_t n = strlen(domain);

	memset(s, 0, sizeof(*s));
	if (n > SRS_MAX_DOMAIN || !all_chars((struct srs_part){domain, n}, is_host_char))
		return -SLUICE_ESYNTAX;
	if (max_age < 1 || max_age > SRS_MAX_MAX_AGE)
		return -ERANGE;
	memcpy(s->domain, domain, n + 1);
	s->domain_len = n;
	s->max_age = max_age;
	return 0;
}

void
srs_fini(struct srs *s)
{
	explicit_bzero(s, sizeof(*s));
}

static void srs_err(char *err, size_t errlen, const char *name, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* "NAME:LINE: reason", or "NAME: reason" when line is 0. */
static void
srs_err(char *err, size_t errlen, const char *name, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	n = line > 0 ? snprintf(err, errlen, "%s:%u: ", name, line)
		     : snprintf(err, errlen, "%s: ", name);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Check one line (no LF, no final CR) and add it as a secret unless it is blank or a comment. */
static int
srs_secret_line(struct srs *s, struct srs_part l, const char *name, unsigned line, char *err,
		size_t errlen)
{
	size_t i = 0;

	while (i < l.n && is_blank(l.p[i]))
		i++;
	if (i == l.n || l.p[i] == '#')
		return 0;
	if (i > 0 || is_blank(l.p[l.n - 1])) {
		srs_err(err, errlen, name, line, "secret has leading or trailing blanks");
		return -SLUICE_ESYNTAX;
	}
	for (i = 0; i < l.n; i++) {
		unsigned char c = (unsigned char)l.p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			srs_err(err, errlen, name, line, "control character 0x%02x in secret", c);
			return -SLUICE_ESYNTAX;
		}
	}
	if (l.n < SRS_MIN_SECRET || l.n > SRS_MAX_SECRET) {
		srs_err(err, errlen, name, line, "secret of %zu bytes (use %d to %d)", l.n,
			SRS_MIN_SECRET, SRS_MAX_SECRET);
		return -SLUICE_ESYNTAX;
	}
	if (s->nsecrets == SRS_MAX_SECRETS) {
		srs_err(err, errlen, name, line, "more than %d secrets", SRS_MAX_SECRETS);
		return -SLUICE_ELIMIT;
	}
	memcpy(s->secrets[s->nsecrets].key, l.p, l.n);
	s->secrets[s->nsecrets].len = l.n;
	s->nsecrets++;
	return 0;
}

static void
srs_drop_secrets(struct srs *s)
{
	explicit_bzero(s->secrets, sizeof(s->secrets));
	s->nsecrets = 0;
}

int
srs_parse_secrets(struct srs *s, const char *text, size_t len, const char *name, char *err,
		  size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned line = 0;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	srs_drop_secrets(s);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		struct srs_part l = {p, n > 0 && p[n - 1] == '\r' ? n - 1 : n};

		rc = srs_secret_line(s, l, name, ++line, err, errlen);
		if (rc < 0) {
			srs_drop_secrets(s);
			return rc;
		}
		p += n + (nl != NULL);
	}
	if (s->nsecrets == 0) {
		srs_err(err, errlen, name, 0, "no secret (one per line; the first signs)");
		return -SLUICE_ESYNTAX;
	}
	return 0;
}

int
srs_load_secrets(struct srs *s, const char *path, char *err, size_t errlen)
{
	char *buf;
	size_t n;
	FILE *f;
	int rc;

	srs_drop_secrets(s);
	f = fopen(path, "r");
	if (f == NULL) {
		rc = -errno;
		srs_err(err, errlen, path, 0, "%s", strerror(-rc));
		return rc;
	}
	buf = malloc(SRS_MAX_SECRETS_FILE + 1);
	if (buf == NULL) {
		fclose(f);
		srs_err(err, errlen, path, 0, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	n = fread(buf, 1, SRS_MAX_SECRETS_FILE + 1, f);
	if (ferror(f)) {
		rc = errno != 0 ? -errno : -EIO;
		srs_err(err, errlen, path, 0, "%s", strerror(-rc));
	} else if (n > SRS_MAX_SECRETS_FILE) {
		rc = -EFBIG;
		srs_err(err, errlen, path, 0, "file too large (max %d bytes)",
			SRS_MAX_SECRETS_FILE);
	} else {
		rc = srs_parse_secrets(s, buf, n, path, err, errlen);
	}
	explicit_bzero(buf, SRS_MAX_SECRETS_FILE + 1);
	free(buf);
	buf = NULL;
	fclose(f);
	return rc;
}

/* ---- forward ---- */

/* SRS0=HHHH=TT=HOST=LOCAL@domain */
static void
forward_srs0(const struct srs *s, struct srs_part local, struct srs_part host, int64_t now,
	     struct srs_out *o)
{
	char ts[2], hash[SRS_HASH_LEN];
	const struct srs_part parts[] = {{ts, 2}, host, local};

	srs_timestamp(now, ts);
	srs_hash(&s->secrets[0], parts, ARRAY_SIZE(parts), hash);
	out_put(o, "SRS0=", 5);
	out_put(o, hash, SRS_HASH_LEN);
	out_char(o, SRS_SEP);
	out_put(o, ts, 2);
	out_char(o, SRS_SEP);
	out_part(o, host);
	out_char(o, SRS_SEP);
	out_part(o, local);
}

/* SRS1=HHHH=HOST=REST@domain, the hash over HOST and REST (Mail::SRS::Guarded). */
static void
forward_srs1(const struct srs *s, struct srs_part host, struct srs_part rest, struct srs_out *o)
{
	char hash[SRS_HASH_LEN];
	const struct srs_part parts[] = {host, rest};

	srs_hash(&s->secrets[0], parts, ARRAY_SIZE(parts), hash);
	out_put(o, "SRS1=", 5);
	out_put(o, hash, SRS_HASH_LEN);
	out_char(o, SRS_SEP);
	out_part(o, host);
	out_char(o, SRS_SEP);
	out_part(o, rest);
}

/*
 * Another forwarder's SRS1<sep>HASH=HOST=REST: its HOST and REST, if the
 * fields are there and REST starts like SRS0 data (a separator). Otherwise
 * the address is wrapped as a plain one, which reverses to itself.
 */
static bool
parse_foreign_srs1(struct srs_part local, struct srs_part *host, struct srs_part *rest)
{
	struct srs_part f = {local.p + SRS_TAG_LEN + 1, local.n - SRS_TAG_LEN - 1}, hash;

	if (!split_sep(&f, &hash) || hash.n == 0 || !split_sep(&f, host))
		return false;
	*rest = f;
	return all_chars(*host, is_host_char) && rest->n > 0 && is_sep(rest->p[0]);
}

ssize_t
srs_forward(const struct srs *s, const char *sender, size_t len, int64_t now, char *out, size_t cap)
{
	struct srs_out o = {out, cap, 0};
	struct srs_part local, host, h1, rest;

	BUG_ON(s->nsecrets == 0);
	if (len == 0)
		return out_end(&o); /* <> stays <> */
	if (!split_at(sender, len, &local, &host))
		return out_fail(&o, -SLUICE_ESYNTAX);
	if (ieq(host, s->domain, s->domain_len)) {
		out_put(&o, sender, len);
		return out_end(&o);
	}
	if (!all_chars(local, is_local_char) || !all_chars(host, is_host_char))
		return out_fail(&o, -SLUICE_ESYNTAX);
	switch (srs_tag(local)) {
	case '0':
		/* keep the separator: SRS1=HHHH=HOST=<sep>HASH=TT=... */
		rest = (struct srs_part){local.p + SRS_TAG_LEN, local.n - SRS_TAG_LEN};
		forward_srs1(s, host, rest, &o);
		break;
	case '1':
		if (parse_foreign_srs1(local, &h1, &rest)) {
			forward_srs1(s, h1, rest, &o);
			break;
		}
		forward_srs0(s, local, host, now, &o);
		break;
	default:
		forward_srs0(s, local, host, now, &o);
		break;
	}
	out_char(&o, '@');
	out_put(&o, s->domain, s->domain_len);
	return out_end(&o);
}

/* ---- reverse ---- */

/* HASH=TT=HOST=USER (after "SRS0<sep>") -> USER@HOST */
static enum srs_status
reverse_srs0(const struct srs *s, struct srs_part f, int64_t now, struct srs_out *o)
{
	struct srs_part hash, ts, host;
	int then;

	if (!split_sep(&f, &hash) || !split_sep(&f, &ts) || !split_sep(&f, &host) || f.n == 0 ||
	    hash.n == 0 || !all_chars(host, is_host_char))
		return SRS_MALFORMED;
	then = srs_timestamp_value(ts);
	if (then < 0)
		return SRS_MALFORMED;

	const struct srs_part parts[] = {ts, host, f};

	if (!srs_hash_ok(s, hash, parts, ARRAY_SIZE(parts)))
		return SRS_BAD_HASH;
	/* Mail::SRS timestamp_check: age counted forward modulo 1024 days */
	if ((srs_day(now) + SRS_TS_SLOTS - (unsigned)then) % SRS_TS_SLOTS > s->max_age)
		return SRS_EXPIRED;
	out_part(o, f);
	out_char(o, '@');
	out_part(o, host);
	return SRS_OK;
}

/* HASH=HOST=REST (after "SRS1<sep>") -> SRS0REST@HOST */
static enum srs_status
reverse_srs1(const struct srs *s, struct srs_part f, struct srs_out *o)
{
	struct srs_part hash, host;

	if (!split_sep(&f, &hash) || !split_sep(&f, &host) || f.n == 0 || hash.n == 0 ||
	    !all_chars(host, is_host_char))
		return SRS_MALFORMED;

	const struct srs_part parts[] = {host, f};

	if (!srs_hash_ok(s, hash, parts, ARRAY_SIZE(parts)))
		return SRS_BAD_HASH;
	out_put(o, "SRS0", SRS_TAG_LEN);
	out_part(o, f);
	out_char(o, '@');
	out_part(o, host);
	return SRS_OK;
}

enum srs_status
srs_reverse(const struct srs *s, const char *addr, size_t len, int64_t now, char *out, size_t cap)
{
	struct srs_out o = {out, cap, 0};
	struct srs_part local, host, f;
	enum srs_status st;
	char tag;

	BUG_ON(s->nsecrets == 0);
	if (cap > 0)
		out[0] = '\0';
	if (!split_at(addr, len, &local, &host) || !ieq(host, s->domain, s->domain_len))
		return SRS_NOT_SRS;
	tag = srs_tag(local);
	if (tag == 0)
		return SRS_NOT_SRS;
	if (len > SRS_MAX_ADDRESS || !all_chars(local, is_local_char))
		return SRS_MALFORMED;
	BUG_ON(cap <= len); /* precondition: the result is shorter than addr */
	f = (struct srs_part){local.p + SRS_TAG_LEN + 1, local.n - SRS_TAG_LEN - 1};
	st = tag == '0' ? reverse_srs0(s, f, now, &o) : reverse_srs1(s, f, &o);
	if (st == SRS_OK)
		out[o.n] = '\0';
	return st;
}

const char *
srs_status_text(enum srs_status st)
{
	switch (st) {
	case SRS_OK:
		return "ok";
	case SRS_NOT_SRS:
		return "not ours: not an SRS address of our domain";
	case SRS_BAD_HASH:
		return "forged: the hash matches none of our secrets";
	case SRS_EXPIRED:
		return "expired: the timestamp is older than the maximum age";
	case SRS_MALFORMED:
		return "malformed: SRS fields missing or invalid";
	}
	return "?";
}
