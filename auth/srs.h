/*
 * srs.h -- Sender Rewriting Scheme: SRS0/SRS1 forward and reverse (level 1).
 *
 * When sluice forwards a message, the upstream sees our IP with the
 * original sender's MAIL FROM and SPF fails; so the sender is rewritten into
 * our forwarding domain, and a bounce to the rewritten address is turned back
 * into the original sender. The format is the one of Mail::SRS (Guarded
 * scheme) and postsrsd/libsrs2, so their tools read our addresses and we read
 * theirs (tests/unit/auth/test_srs.c holds vectors from both):
 *
 *   SRS0=HHHH=TT=example.com=alice@fwd.example
 *   SRS1=HHHH=fwd1.example==XXXX=TT=orig.example=bob@fwd.example
 *
 * HHHH is the first 4 base64 characters of HMAC-SHA1(secret, the fields
 * after it, each lowercased (ASCII), concatenated without separators); TT is
 * the day number (unix time / 86400) modulo 1024 in two base32 characters
 * (A-Z2-7). SRS1 replaces SRS0 when the sender already is another
 * forwarder's SRS0 (or SRS1) address: it keeps that forwarder's host and its
 * SRS0 data (with their separator, hence the "==") and signs them with our
 * secret; it carries no timestamp, the first forwarder checks its own.
 *
 * struct srs is built at start-up (srs_init, srs_load_secrets), then read
 * only: any shard may call srs_forward/srs_reverse on a shared const struct.
 * Both are pure (the clock is an argument), allocate nothing and do no I/O.
 *
 * Decisions:
 * - Hash and timestamp compare case-insensitively, as Mail::SRS and libsrs2
 *   do, because some MTAs lowercase addresses; this folds the 24-bit hash
 *   to about 21 bits, the same margin the other implementations accept.
 * - A hash must be exactly 4 characters (libsrs2 accepts no longer one;
 *   Mail::SRS would accept a longer prefix of the digest): we only read what
 *   we wrote. The hash is checked before the timestamp, so a forged address
 *   is reported as forged rather than expired.
 * - An SRS local part may exceed RFC 5321's 64 octets: postsrsd and Mail::SRS
 *   never shorten one (the alternative, a database of aliases, makes SRS
 *   stateful across edge nodes). The whole address is bounded by the RFC
 *   5321 4.5.3.1.3 path limit, SRS_MAX_ADDRESS, and refused beyond it.
 * - Senders are taken as written in MAIL FROM: a quoted local part or an
 *   address literal cannot be put into an unquoted SRS local part and is
 *   refused (the caller decides what to do with such a sender).
 * - Secrets shorter than SRS_MIN_SECRET are refused: the hash can be checked
 *   offline, so a short secret can be guessed from one SRS address.
 */
#ifndef SLUICE_AUTH_SRS_H
#define SLUICE_AUTH_SRS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SRS_MAX_SECRETS	     16		 /* secrets in rotation; the first signs */
#define SRS_MIN_SECRET	     16		 /* bytes; see "Decisions" */
#define SRS_MAX_SECRET	     256	 /* bytes per secret */
#define SRS_MAX_SECRETS_FILE (64 * 1024) /* a larger secrets file is refused */
#define SRS_MAX_DOMAIN	     253	 /* RFC 1035 2.3.4 text form, no final dot */
#define SRS_MAX_ADDRESS	     254	 /* RFC 5321 4.5.3.1.3: 256-octet path less "<>" */
#define SRS_ADDR_BUF	     (SRS_MAX_ADDRESS + 1) /* an output buffer that always fits */
#define SRS_HASH_LEN	     4			   /* base64 characters, as everyone signs */
#define SRS_DEFAULT_MAX_AGE  3			   /* days an SRS0 address stays valid */
#define SRS_MAX_MAX_AGE	     365		   /* days; far from the 1024-day timestamp wrap */

struct srs_secret {
	unsigned char key[SRS_MAX_SECRET]; /* HMAC key bytes, as in the file */
	size_t len;			   /* SRS_MIN_SECRET..SRS_MAX_SECRET */
};

struct srs {
	char domain[SRS_MAX_DOMAIN + 1];	    /* our forwarding domain, NUL-terminated */
	size_t domain_len;			    /* strlen(domain), >= 1 */
	unsigned max_age;			    /* days, 1..SRS_MAX_MAX_AGE */
	unsigned nsecrets;			    /* 0..SRS_MAX_SECRETS; 0 until loaded */
	struct srs_secret secrets[SRS_MAX_SECRETS]; /* [0] signs; all verify */
};

/* What srs_reverse made of an address. */
enum srs_status {
	SRS_OK,	       /* valid: out holds the address the bounce goes to */
	SRS_NOT_SRS,   /* not an SRS0/SRS1 address of our domain: route it normally */
	SRS_BAD_HASH,  /* SRS syntax, but no secret gives its hash: forged */
	SRS_EXPIRED,   /* genuine SRS0 whose timestamp is older than max_age days */
	SRS_MALFORMED, /* our domain and an SRS tag, but fields missing or invalid */
};

/*
 * Set up *s for our forwarding domain (an LDH host name, at most
 * SRS_MAX_DOMAIN octets; kept as written) with SRS0 addresses valid for
 * max_age days (1..SRS_MAX_MAX_AGE; SRS_DEFAULT_MAX_AGE is the usual choice).
 * No secrets yet: add them with srs_parse_secrets or srs_load_secrets.
 * Returns 0, -SLUICE_ESYNTAX (domain) or -ERANGE (max_age); on error *s is
 * zeroed.
 */
int srs_init(struct srs *s, const char *domain, unsigned max_age);

/*
 * Wipe the secrets (explicit_bzero) and zero *s. Call when done with it.
 */
void srs_fini(struct srs *s);

/*
 * Replace the secrets of *s with those in text[0..len), one per line: the
 * first signs, all verify (rotation: put the new secret first and keep the
 * old ones until the addresses they signed have expired). Blank lines and
 * lines whose first non-blank character is '#' are ignored; a secret is the
 * whole line without its LF or CRLF, byte for byte, as postsrsd reads it.
 * Refused, with "NAME:LINE: reason" in err (always NUL-terminated when
 * errlen > 0): leading or trailing blanks, control characters, a secret
 * shorter than SRS_MIN_SECRET or longer than SRS_MAX_SECRET bytes, more than
 * SRS_MAX_SECRETS secrets; and no secret at all ("NAME: no secret ...").
 * Returns 0, -SLUICE_ESYNTAX or -SLUICE_ELIMIT; on error *s has no secrets.
 */
int srs_parse_secrets(struct srs *s, const char *text, size_t len, const char *name, char *err,
		      size_t errlen);

/*
 * srs_parse_secrets() on the contents of the file at path (at most
 * SRS_MAX_SECRETS_FILE bytes), with path as NAME. An unreadable file gives
 * "PATH: strerror(errno)" and the negative errno. Blocking file I/O: start-up
 * and reload only, never on a shard.
 */
int srs_load_secrets(struct srs *s, const char *path, char *err, size_t errlen);

/*
 * Rewrite the MAIL FROM address sender[0..len) (no angle brackets) for
 * relaying, signing with the first secret at unix time now (seconds, >= 0).
 * Writes a NUL-terminated address to out[0..cap) and returns its length:
 *   - len 0 (the null sender <>): returns 0, out = "": a bounce stays a bounce;
 *   - a sender in our own domain (any case): copied unchanged, as postsrsd
 *     and Mail::SRS do, so our own SRS addresses are never wrapped twice;
 *   - local part SRS0<sep>REST (sep one of = + -, any case) at host H:
 *     SRS1=HHHH=H=<sep>REST@domain;
 *   - local part SRS1<sep>X=H1=REST at any host, REST starting with a
 *     separator as SRS0 data does: SRS1=HHHH=H1=REST@domain (the first
 *     forwarder stays the one to bounce to); an SRS1 local part without
 *     these fields is wrapped as a plain one below, so it still reverses;
 *   - anything else, LOCAL@HOST: SRS0=HHHH=TT=HOST=LOCAL@domain.
 * Errors: -SLUICE_ESYNTAX when the sender has no '@', an empty or quoted
 * local part, a byte outside atext/'.'/UTF-8 in it, or a host that is not
 * LDH/UTF-8 labels (address literals); -SLUICE_ELIMIT when the result would
 * exceed SRS_MAX_ADDRESS octets; -ENOSPC when it does not fit in cap
 * (cap >= SRS_ADDR_BUF always suffices). On error out is "" when cap > 0.
 * Precondition: s has secrets.
 */
ssize_t srs_forward(const struct srs *s, const char *sender, size_t len, int64_t now, char *out,
		    size_t cap);

/*
 * Undo our rewriting of the recipient addr[0..len) (no angle brackets) at
 * unix time now (seconds, >= 0). On SRS_OK, out (NUL-terminated) is where
 * the bounce goes: the original sender for an SRS0 address; for an SRS1
 * address, the previous forwarder's SRS0 address (SRS0<sep>...@its host),
 * which that forwarder checks with its own secret. SRS1 has no timestamp.
 * The domain must be ours (any case) and the local part must start with
 * SRS0 or SRS1 (any case) and a separator, else SRS_NOT_SRS. Longer than
 * SRS_MAX_ADDRESS, missing or empty fields, a timestamp that is not two
 * base32 characters, or bytes no sender could have: SRS_MALFORMED. No
 * secret matching the hash (exactly SRS_HASH_LEN characters, compared in
 * constant time, case-insensitively): SRS_BAD_HASH. An SRS0 timestamp more
 * than max_age days old, counted modulo 1024 days as Mail::SRS and libsrs2
 * do (so one from "tomorrow" is 1023 days old): SRS_EXPIRED. On anything but
 * SRS_OK, out is "" when cap > 0.
 * Precondition: cap > min(len, SRS_MAX_ADDRESS) (SRS_ADDR_BUF always does:
 * the result is never longer than the input); s has secrets.
 */
enum srs_status srs_reverse(const struct srs *s, const char *addr, size_t len, int64_t now,
			    char *out, size_t cap);

/*
 * Static text for a status, starting with one word a log or an operator can
 * grep: "ok", "not ours", "forged", "expired", "malformed".
 */
const char *srs_status_text(enum srs_status st);

#endif /* SLUICE_AUTH_SRS_H */
