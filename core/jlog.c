/*
 * jlog.c -- JSON-lines formatting into a fixed buffer, and the rate limiter.
 *
 * Every write goes through jlog_put(), which refuses to grow len past
 * cap - JLOG_RESERVE; members are written with a mark and rolled back to it
 * when they do not fit, so a line is valid JSON after every call. The
 * timestamp is computed with a days-to-civil conversion instead of
 * gmtime_r(), which is slower and takes glibc's tz lock on every call.
 * See jlog.h for the escaping rules (RFC 8259 7, RFC 3629 4).
 */
#include "core/jlog.h"

#include <string.h>

#include "core/check.h"

static const char jlog_hex[16] = "0123456789abcdef";

static size_t
jlog_room(const struct jlog *j)
{
	return j->cap - JLOG_RESERVE - j->len;
}

/* Append n bytes whole, or nothing (returns false). */
static bool
jlog_put(struct jlog *j, const char *p, size_t n)
{
	if (n > jlog_room(j))
		return false;
	memcpy(j->buf + j->len, p, n);
	j->len += n;
	j->buf[j->len] = '\0';
	return true;
}

/*
 * Length of the well-formed UTF-8 sequence of 2..4 bytes at p (RFC 3629 4,
 * the table of well-formed byte sequences), or 0 if p[0] does not start one.
 */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		if (p[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f; /* surrogates U+D800..U+DFFF */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		if (p[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0; /* ASCII is handled by the caller; 80..c1, f5..ff never start one */
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/*
 * Append s[0..n) escaped, one whole unit (byte, escape or UTF-8 sequence) at
 * a time, keeping `keep` bytes of room. Returns false if it stopped early.
 */
static bool
jlog_put_escaped(struct jlog *j, const char *s, size_t n, size_t keep)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		char esc[6];
		const char *unit = esc;
		size_t ulen, used = 1;
		unsigned char ch = p[i];

		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			ulen = 2;
		} else if (ch >= 0x20 && ch < 0x7f) {
			unit = s + i;
			ulen = 1;
		} else if (ch >= 0x80 && (used = utf8_seq(p + i, n - i)) != 0) {
			unit = s + i;
			ulen = used;
		} else {
			/* control, DEL or a byte outside well-formed UTF-8 */
			memcpy(esc, "\\u00", 4);
			esc[4] = jlog_hex[ch >> 4];
			esc[5] = jlog_hex[ch & 15];
			ulen = 6;
			used = 1;
		}
		if (ulen + keep > jlog_room(j))
			return false;
		jlog_put(j, unit, ulen);
		i += used;
	}
	return true;
}

/* Write ,"key": (no comma for the first member). On failure roll back and stop. */
static bool
jlog_key(struct jlog *j, const char *key)
{
	size_t mark = j->len;

	if (j->overflow)
		return false;
	ASSERT(strpbrk(key, "\"\\") == NULL);
	if ((!j->first && !jlog_put(j, ",", 1)) || !jlog_put(j, "\"", 1) ||
	    !jlog_put_escaped(j, key, strlen(key), 0) || !jlog_put(j, "\":", 2)) {
		j->len = mark;
		j->buf[mark] = '\0';
		j->overflow = true;
		return false;
	}
	j->first = false;
	return true;
}

/* A whole member "key":RAW, or nothing. */
static void
jlog_raw(struct jlog *j, const char *key, const char *raw, size_t n)
{
	size_t mark = j->len;
	bool first = j->first;

	if (!jlog_key(j, key))
		return;
	if (!jlog_put(j, raw, n)) {
		j->len = mark;
		j->buf[mark] = '\0';
		j->first = first;
		j->overflow = true;
	}
}

void
jlog_str(struct jlog *j, const char *key, const char *s, size_t n)
{
	size_t mark = j->len;
	bool first = j->first;

	if (!jlog_key(j, key))
		return;
	if (!jlog_put(j, "\"", 1) || jlog_room(j) < 1) {
		/* not even an empty value fits: drop the member */
		j->len = mark;
		j->buf[mark] = '\0';
		j->first = first;
		j->overflow = true;
		return;
	}
	if (!jlog_put_escaped(j, s, n, 1))
		j->overflow = true; /* value cut at a unit boundary, still closed below */
	/* the room for this quote was kept by jlog_put_escaped(keep = 1) */
	jlog_put(j, "\"", 1);
}

void
jlog_strv(struct jlog *j, const char *key, const char *list, size_t len)
{
	size_t mark = j->len;
	bool first = j->first;
	size_t i = 0;

	if (!jlog_key(j, key))
		return;
	if (!jlog_put(j, "[", 1))
		goto err_drop;
	while (i < len) {
		const char *end = memchr(list + i, '\0', len - i);
		size_t n = end != NULL ? (size_t)(end - (list + i)) : len - i;

		/* each element whole or not at all; keep room for "]" */
		size_t el = j->len;

		if ((i != 0 && !jlog_put(j, ",", 1)) || !jlog_put(j, "\"", 1) ||
		    !jlog_put_escaped(j, list + i, n, 2) || !jlog_put(j, "\"", 1)) {
			j->len = el;
			j->buf[el] = '\0';
			j->overflow = true;
			break;
		}
		i += n + 1;
	}
	if (!jlog_put(j, "]", 1))
		goto err_drop;
	return;
err_drop:
	j->len = mark;
	j->buf[mark] = '\0';
	j->first = first;
	j->overflow = true;
}

void
jlog_cstr(struct jlog *j, const char *key, const char *s)
{
	if (s == NULL)
		jlog_null(j, key);
	else
		jlog_str(j, key, s, strlen(s));
}

/* Decimal digits of v, right-aligned in out[0..20); returns the start. */
static char *
u64_digits(char out[21], uint64_t v)
{
	char *p = out + 20;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return p;
}

void
jlog_u64(struct jlog *j, const char *key, uint64_t v)
{
	char tmp[21];
	char *p = u64_digits(tmp, v);

	jlog_raw(j, key, p, (size_t)(tmp + 20 - p));
}

void
jlog_i64(struct jlog *j, const char *key, int64_t v)
{
	char tmp[21];
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	char *p = u64_digits(tmp, mag);

	if (v < 0)
		*--p = '-';
	jlog_raw(j, key, p, (size_t)(tmp + 20 - p));
}

void
jlog_bool(struct jlog *j, const char *key, bool v)
{
	if (v)
		jlog_raw(j, key, "true", 4);
	else
		jlog_raw(j, key, "false", 5);
}

void
jlog_null(struct jlog *j, const char *key)
{
	jlog_raw(j, key, "null", 4);
}

void
jlog_ms(struct jlog *j, const char *key, uint64_t ns)
{
	char tmp[32];
	char *p = u64_digits(tmp, ns / 1000000);
	size_t n = (size_t)(tmp + 20 - p);
	unsigned frac = (unsigned)(ns / 1000 % 1000);
	char num[32];

	memcpy(num, p, n);
	num[n++] = '.';
	num[n++] = (char)('0' + frac / 100);
	num[n++] = (char)('0' + frac / 10 % 10);
	num[n++] = (char)('0' + frac % 10);
	jlog_raw(j, key, num, n);
}

/*
 * Days since 1970-01-01 to a proleptic Gregorian date, by 400-year eras of
 * 146097 days, with years starting on 1 March so the leap day comes last.
 */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468; /* days from 0000-03-01 to 1970-01-01 */
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);			      /* [0, 146096] */
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);		      /* [0, 365] */
	unsigned mp = (5 * doy + 2) / 153;				      /* March = 0 */

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void
put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

void
jlog_format_ts(char out[JLOG_TS_LEN + 1], const struct timespec *t)
{
	const int64_t max_s = 253402300799; /* 9999-12-31T23:59:59Z */
	int64_t s = (int64_t)t->tv_sec, y;
	unsigned m, d, ms, sod;
	long ns = t->tv_nsec;

	if (s < 0) {
		s = 0;
		ns = 0;
	} else if (s > max_s) {
		s = max_s;
		ns = 999999999;
	}
	if (ns < 0 || ns > 999999999)
		ns = 0;
	ms = (unsigned)(ns / 1000000);
	sod = (unsigned)(s % 86400);
	civil_from_days(s / 86400, &y, &m, &d);

	put2(out, (unsigned)(y / 100));
	put2(out + 2, (unsigned)(y % 100));
	out[4] = '-';
	put2(out + 5, m);
	out[7] = '-';
	put2(out + 8, d);
	out[10] = 'T';
	put2(out + 11, sod / 3600);
	out[13] = ':';
	put2(out + 14, sod / 60 % 60);
	out[16] = ':';
	put2(out + 17, sod % 60);
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	put2(out + 21, ms % 100);
	out[23] = 'Z';
	out[24] = '\0';
}

void
jlog_begin_at(struct jlog *j, char *buf, size_t cap, const char *event, const struct timespec *now)
{
	char ts[JLOG_TS_LEN + 1];

	BUG_ON(cap < JLOG_MIN_CAP);
	j->buf = buf;
	j->cap = cap;
	j->len = 1;
	j->first = true;
	j->overflow = false;
	buf[0] = '{';
	buf[1] = '\0';
	jlog_format_ts(ts, now);
	jlog_str(j, "ts", ts, JLOG_TS_LEN);
	jlog_cstr(j, "event", event);
}

void
jlog_begin(struct jlog *j, char *buf, size_t cap, const char *event)
{
	struct timespec now;

	if (clock_gettime(CLOCK_REALTIME, &now) != 0)
		now = (struct timespec){0};
	jlog_begin_at(j, buf, cap, event, &now);
}

size_t
jlog_end(struct jlog *j)
{
	static const char tail_ok[] = "}\n";
	static const char tail_trunc[] = ",\"truncated\":true}\n";
	_Static_assert(sizeof(tail_trunc) <= JLOG_RESERVE, "JLOG_RESERVE too small");

	/* The reserve guarantees room: len <= cap - JLOG_RESERVE. */
	if (j->overflow) {
		memcpy(j->buf + j->len, tail_trunc, sizeof(tail_trunc));
		j->len += sizeof(tail_trunc) - 1;
	} else {
		memcpy(j->buf + j->len, tail_ok, sizeof(tail_ok));
		j->len += sizeof(tail_ok) - 1;
	}
	return j->len;
}

bool
ratelimit_allow(struct ratelimit *r, uint64_t now_ns)
{
	if (now_ns < r->window_start_ns || now_ns - r->window_start_ns >= r->window_ns) {
		r->window_start_ns = now_ns;
		r->count = 0;
	}
	if (r->count < r->burst) {
		r->count++;
		return true;
	}
	r->suppressed++;
	return false;
}

uint64_t
ratelimit_take_suppressed(struct ratelimit *r)
{
	uint64_t n = r->suppressed;

	r->suppressed = 0;
	return n;
}
