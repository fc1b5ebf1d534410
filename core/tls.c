/*
 * tls.c -- TLS sessions over memory buffers, on wolfSSL (see tls.h).
 *
 * wolfSSL reads and writes through two callbacks installed on every
 * context: io_recv() hands it ciphertext from c->in, io_send() appends its
 * records to c->out. io_recv() answers WANT_READ when c->in is empty, which
 * wolfSSL turns into WANT_READ from the call in progress and resumes later.
 * io_send() never answers WANT_WRITE: after a WANT_WRITE, wolfSSL_write()
 * must be called again with the same buffer, which would leak wolfSSL's
 * internal state into the owner's API. Instead the output buffer always has
 * room: tls_write() produces no record that could pass the role's
 * high-water mark, and what else wolfSSL sends (handshake flights, alerts,
 * KeyUpdate answers, tickets) fits in the headroom above it or fails the
 * connection.
 *
 * Sealing our own records. wolfSSL_write() copies the text into a record of
 * its own, seals it there, and io_send() copies the record into c->out: two
 * copies of every byte sent, as much CPU as the sealing itself on a 25 MiB
 * message. So once a TLS 1.3 AES-GCM handshake is done and core/aesgcm runs
 * here (the context has its device, core/tls_gcm.h), the first tls_write()
 * takes the write key, IV and sequence number from wolfSSL (its ATOMIC_USER
 * accessors) and from then on seals application records straight from the
 * owner's buffer into c->out (RFC 8446 5.2-5.3), close_notify included: the
 * split of kTLS (the library shakes hands, the record layer is elsewhere),
 * in user space. Reading stays wolfSSL's. wolfSSL's write sequence number
 * stops there, so a record it sends later (a KeyUpdate answer, an alert)
 * would reuse a nonce: io_send() opens it and seals its content again with
 * our sequence number (tx_reseal()), and tx_sync() follows wolfSSL to the
 * new key a KeyUpdate brings.
 */
#include "core/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "core/aesgcm.h"
#include "core/check.h"
#include "core/tls_gcm.h"

/* Ciphertext one record may add to its plaintext: header, explicit IV,
 * MAC or AEAD tag, CBC padding (TLS 1.2 CBC with SHA-384 needs 325). */
#define TLS_RECORD_SLACK 512

#define TLS13_HEADER	  5	     /* opaque_type, legacy_record_version, length */
#define TLS13_TAG	  16	     /* AES-GCM's tag in TLS 1.3 */
#define TLS13_APP_DATA	  23	     /* ContentType application_data, the outer type */
#define TLS13_ALERT	  21	     /* ContentType alert */
#define TLS13_SEQ_LIMIT	  (1u << 24) /* records per AES-GCM key: under RFC 8446 5.5's 2^24.5 */
#define TLS13_CONTROL_MAX 512	     /* text of a record tx_reseal() takes: KeyUpdate, alert */

/* Who seals application records (see the top of this file). */
enum tls_tx {
	TX_UNDECIDED, /* until the first tls_write() after the handshake */
	TX_WOLFSSL,   /* wolfSSL_write() */
	TX_OWN,	      /* tx_seal(), with tx_key */
};

struct tls_ctx {
	WOLFSSL_CTX *ctx; /* owned; read-only once the first connection exists */
	bool server;	  /* the role of every connection made from it */
	bool aesgcm;	  /* AES-GCM on core/aesgcm: the device is set, tx_decide() may seal */
};

struct tls_conn {
	WOLFSSL *ssl;		      /* owned */
	bool server;		      /* role, from the context */
	bool done;		      /* handshake complete */
	bool failed;		      /* a fatal error happened; err says why */
	bool aesgcm;		      /* from the context */
	bool overflow;		      /* io_send() found no room: fatal */
	bool stale_send;	      /* tx_reseal() could not seal a record again: fatal */
	bool tx_resync;		      /* tx_reseal() passed a record: wolfSSL may have a new key */
	enum tls_tx tx;		      /* who seals application records */
	uint64_t tx_seq;	      /* TX_OWN: sequence number of the next record */
	uint8_t tx_iv[AESGCM_IV_LEN]; /* TX_OWN: the write IV (RFC 8446 7.3) */
	uint8_t tx_raw[32];	      /* TX_OWN: the write key as wolfSSL holds it */
	size_t tx_rawlen;	      /* bytes of tx_raw */
	size_t in_off, in_len;	      /* in[in_off..in_len) not yet taken by wolfSSL */
	size_t out_len;		      /* out[0..out_len) waits for the owner's send */
	size_t out_cap, out_high;     /* TLS_OUT_CAP and _HIGH of the role (tls.h) */
	size_t out_peak;	      /* most of out used since tls_trim() last gave pages back */
	char err[TLS_ERR_MAX];	      /* reason of the failure; "" if none */
	unsigned char in[TLS_IN_CAP]; /* received ciphertext */
	struct aesgcm_key tx_key;     /* TX_OWN: the write key, expanded; wiped at free */
	unsigned char out[];	      /* [out_cap]: ciphertext to send */
};

/* out_len grew: keep out_peak, which tells tls_trim() whether pages are worth giving back. */
static inline void
out_grew(struct tls_conn *c)
{
	if (c->out_len > c->out_peak)
		c->out_peak = c->out_len;
}

/* ---------------------------------------------------------------- our records */

/* wolfSSL's write key now (its length in *keylen) and IV. */
static const unsigned char *
tx_wolfssl_key(const struct tls_conn *c, int *keylen, const unsigned char **iv)
{
	*keylen = wolfSSL_GetKeySize(c->ssl);
	*iv = c->server ? wolfSSL_GetServerWriteIV(c->ssl) : wolfSSL_GetClientWriteIV(c->ssl);
	return c->server ? wolfSSL_GetServerWriteKey(c->ssl) : wolfSSL_GetClientWriteKey(c->ssl);
}

/* Take wolfSSL's write key and IV into tx_key, tx_raw, tx_iv: 0 or -EINVAL. */
static int
tx_take_key(struct tls_conn *c)
{
	const unsigned char *iv, *key;
	int keylen;

	key = tx_wolfssl_key(c, &keylen, &iv);
	if (key == NULL || iv == NULL || keylen <= 0 || (size_t)keylen > sizeof(c->tx_raw) ||
	    aesgcm_key_init(&c->tx_key, key, (size_t)keylen) < 0)
		return -EINVAL;
	memcpy(c->tx_raw, key, (size_t)keylen);
	c->tx_rawlen = (size_t)keylen;
	memcpy(c->tx_iv, iv, AESGCM_IV_LEN);
	return 0;
}

/*
 * Seal from now on what tls_write() and tls_close() send, if this
 * connection allows: TLS 1.3 with AES-GCM, core/aesgcm on this CPU. Called
 * once, before the first record after the handshake; wolfSSL has nothing
 * buffered then (io_send() takes each record whole).
 */
static void
tx_decide(struct tls_conn *c)
{
	word64 seq;

	c->tx = TX_WOLFSSL;
	if (!c->aesgcm || wolfSSL_version(c->ssl) != TLS1_3_VERSION ||
	    wolfSSL_GetBulkCipher(c->ssl) != wolfssl_aes_gcm ||
	    wolfSSL_GetAeadMacSize(c->ssl) != TLS13_TAG ||
	    wolfSSL_GetIVSize(c->ssl) != AESGCM_IV_LEN || tx_take_key(c) < 0)
		return;
	(void)wolfSSL_GetSequenceNumber(c->ssl, &seq); /* returns !seq, not an error */
	c->tx_seq = seq;
	c->tx = TX_OWN;
}

/*
 * Follow wolfSSL to a new write key: after it sends a KeyUpdate (through
 * tx_reseal(), which sets tx_resync) it derives the next one (RFC 8446
 * 7.2), whose records start again at sequence number 0 (5.3). Without a
 * record of wolfSSL's since the last call, its key cannot have changed: no
 * work on the write path. Returns 0, or -EPROTO (c failed).
 */
static int
tx_sync(struct tls_conn *c)
{
	const unsigned char *iv, *key;
	unsigned diff = 0;
	int keylen;

	if (!c->tx_resync)
		return 0;
	c->tx_resync = false;
	key = tx_wolfssl_key(c, &keylen, &iv);
	if (key == NULL || keylen != (int)c->tx_rawlen)
		diff = 1;
	else
		for (size_t i = 0; i < c->tx_rawlen; i++) /* secrets: no early exit */
			diff |= (unsigned)(key[i] ^ c->tx_raw[i]);
	if (diff == 0)
		return 0;
	aesgcm_key_fini(&c->tx_key);
	if (tx_take_key(c) < 0) {
		c->failed = true;
		snprintf(c->err, sizeof(c->err), "wolfSSL's new write key is unusable");
		return -EPROTO;
	}
	c->tx_seq = 0;
	return 0;
}

/* The nonce of record seq under iv: iv XOR seq, left-padded (RFC 8446 5.3). */
static void
tx_nonce(const uint8_t iv[AESGCM_IV_LEN], uint64_t seq, uint8_t nonce[AESGCM_IV_LEN])
{
	memcpy(nonce, iv, AESGCM_IV_LEN);
	for (int i = 0; i < 8; i++)
		nonce[AESGCM_IV_LEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
}

/*
 * Append one TLSCiphertext (RFC 8446 5.2) holding p[0..n) of content type
 * type to c->out under tx_key and the next sequence number; the caller
 * checked the room.
 */
static void
tx_seal(struct tls_conn *c, const void *p, size_t n, uint8_t type)
{
	uint8_t *rec = c->out + c->out_len, nonce[AESGCM_IV_LEN];
	size_t len = n + 1 + TLS13_TAG; /* the text, its type, the tag */

	rec[0] = TLS13_APP_DATA;
	rec[1] = 3; /* legacy_record_version 0x0303 */
	rec[2] = 3;
	rec[3] = (uint8_t)(len >> 8);
	rec[4] = (uint8_t)len;
	tx_nonce(c->tx_iv, c->tx_seq++, nonce);
	aesgcm_seal_tail(&c->tx_key, nonce, rec, TLS13_HEADER, p, n, &type, 1, rec + TLS13_HEADER,
			 rec + TLS13_HEADER + n + 1, TLS13_TAG);
	c->out_len += TLS13_HEADER + len;
	out_grew(c);
}

/* Bytes after the header of the record at rec. */
static size_t
tx_body_len(const uint8_t *rec)
{
	return (size_t)rec[3] << 8 | rec[4];
}

/*
 * Records wolfSSL sends after the takeover (a KeyUpdate answer, an alert)
 * carry its write sequence numbers, which tx_seal() has used: sent as they
 * are, they would reuse nonces. So each one is opened, under the key it was
 * sealed with (tx_key: wolfSSL changes keys only after sending the
 * KeyUpdate) and wolfSSL's nonce, and its content sealed again with our next
 * sequence number. buf[0..n) holds whole records, the last one sealed with
 * the sequence number just below wolfSSL's. Returns 0, or -EPROTO: c fails,
 * and no record leaves as wolfSSL sealed it.
 */
static int
tx_reseal(struct tls_conn *c, const uint8_t *buf, size_t n)
{
	uint8_t text[TLS13_CONTROL_MAX], nonce[AESGCM_IV_LEN];
	size_t off, nrec = 0;
	word64 seq;
	int ret = -EPROTO;

	if (tx_sync(c) < 0)
		return -EPROTO;
	for (off = 0; off + TLS13_HEADER <= n; off += TLS13_HEADER + tx_body_len(buf + off))
		nrec++;
	(void)wolfSSL_GetSequenceNumber(c->ssl, &seq);
	if (off != n || seq < nrec)
		goto out;
	seq -= nrec;
	for (off = 0; off < n; off += TLS13_HEADER + tx_body_len(buf + off)) {
		const uint8_t *rec = buf + off;
		size_t tn = tx_body_len(rec) - TLS13_TAG;

		if (rec[0] != TLS13_APP_DATA || tx_body_len(rec) <= TLS13_TAG || tn > sizeof(text))
			goto out;
		tx_nonce(c->tx_iv, seq++, nonce);
		if (aesgcm_open(&c->tx_key, nonce, rec, TLS13_HEADER, rec + TLS13_HEADER, tn, text,
				rec + TLS13_HEADER + tn, TLS13_TAG) < 0)
			goto out;
		while (tn > 0 && text[tn - 1] == 0) /* TLSInnerPlaintext's zero padding */
			tn--;
		if (tn == 0)
			goto out;
		if (c->out_len + tn + TLS_RECORD_SLACK > c->out_cap) {
			c->overflow = true;
			goto out;
		}
		if (c->tx_seq >= TLS13_SEQ_LIMIT)
			goto out;
		tx_seal(c, text, tn - 1, text[tn - 1]);
	}
	c->tx_resync = true; /* a KeyUpdate among them changes wolfSSL's key once it is out */
	ret = 0;
out:
	explicit_bzero(text, sizeof(text));
	c->stale_send = ret < 0 && !c->overflow;
	return ret;
}

/* ---------------------------------------------------------------- I/O callbacks */

static int
io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_conn *c = arg;
	size_t n = c->in_len - c->in_off;

	(void)ssl;
	if (n == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (sz >= 0 && n > (size_t)sz)
		n = (size_t)sz;
	memcpy(buf, c->in + c->in_off, n);
	c->in_off += n;
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	return (int)n;
}

static int
io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_conn *c = arg;

	(void)ssl;
	if (sz >= 0 && c->tx == TX_OWN) {
		if (tx_reseal(c, (const uint8_t *)buf, (size_t)sz) < 0)
			return WOLFSSL_CBIO_ERR_GENERAL;
		return sz;
	}
	if (sz < 0 || (size_t)sz > c->out_cap - c->out_len) {
		c->overflow = true;
		return WOLFSSL_CBIO_ERR_GENERAL;
	}
	memcpy(c->out + c->out_len, buf, (size_t)sz);
	c->out_len += (size_t)sz;
	out_grew(c);
	return sz;
}

/* ---------------------------------------------------------------- errors */

/* The certificate checks, in words; NULL for other errors. */
static const char *
verify_reason(int err)
{
	switch (err) {
	case ASN_NO_SIGNER_E:
		return "certificate verify failed: unknown CA";
	case ASN_SELF_SIGNED_E:
		return "certificate verify failed: self-signed certificate";
	case ASN_AFTER_DATE_E:
		return "certificate verify failed: certificate expired";
	case ASN_BEFORE_DATE_E:
		return "certificate verify failed: certificate not yet valid";
	case ASN_SIG_CONFIRM_E:
		return "certificate verify failed: bad signature";
	case DOMAIN_NAME_MISMATCH:
	case IPADDR_MISMATCH:
		return "certificate verify failed: name mismatch";
	case VERIFY_SIGN_ERROR:
		return "handshake signature does not verify with the certificate's key";
	default:
		return NULL;
	}
}

/* Record why c failed (err: a wolfSSL error code) and return -EPROTO. */
static int
conn_fail(struct tls_conn *c, int err)
{
	WOLFSSL_ALERT_HISTORY h;
	const char *why = verify_reason(err);
	char text[WOLFSSL_MAX_ERROR_SZ];

	c->failed = true;
	if (c->overflow) {
		snprintf(c->err, sizeof(c->err), "output buffer full (%zu bytes): peer not reading",
			 c->out_cap);
	} else if (c->stale_send) {
		snprintf(c->err, sizeof(c->err),
			 "a record wolfSSL sent after sluice took the sealing over could not be "
			 "sealed again");
	} else if (why != NULL) {
		snprintf(c->err, sizeof(c->err), "%s", why);
	} else if (err == FATAL_ERROR && wolfSSL_get_alert_history(c->ssl, &h) == WOLFSSL_SUCCESS) {
		snprintf(c->err, sizeof(c->err), "peer sent alert: %s",
			 wolfSSL_alert_desc_string_long(h.last_rx.code));
	} else {
		wolfSSL_ERR_error_string_n((unsigned long)err, text, sizeof(text));
		snprintf(c->err, sizeof(c->err), "%s (wolfSSL %d)", text, err);
	}
	return -EPROTO;
}

/* Map a wolfSSL call's failed return ret to -EAGAIN or a failure. */
static int
conn_status(struct tls_conn *c, int ret)
{
	int err = wolfSSL_get_error(c->ssl, ret);

	if (err == WOLFSSL_ERROR_WANT_READ && !c->overflow && !c->stale_send)
		return -EAGAIN;
	return conn_fail(c, err);
}

/*
 * "WHAT FILE: reason" into err[errlen] after wolfSSL refused FILE. Its
 * loaders only say WOLFSSL_FAILURE; the reason, if any, is in the
 * (per-thread) error queue, which is emptied here.
 */
static void
ctx_error(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = wolfSSL_ERR_get_error();
	char text[WOLFSSL_MAX_ERROR_SZ] = "no usable PEM data";

	if (access(file, R_OK) != 0)
		snprintf(text, sizeof(text), "%s", strerror(errno));
	else if (e != 0)
		wolfSSL_ERR_error_string_n(e, text, sizeof(text));
	wolfSSL_ERR_clear_error();
	snprintf(err, errlen, "%s %s: %s", what, file, text);
}

/* ---------------------------------------------------------------- contexts */

static struct tls_ctx *
ctx_new(bool server, char *err, size_t errlen)
{
	struct tls_ctx *t;
	int devid;

	if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "wolfSSL_Init failed");
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		goto err_init;
	}
	t->server = server;
	t->ctx = wolfSSL_CTX_new(server ? wolfSSLv23_server_method() : wolfSSLv23_client_method());
	if (t->ctx == NULL) {
		snprintf(err, errlen, "wolfSSL_CTX_new failed");
		goto err_alloc;
	}
	/* RFC 8996: TLS 1.0 and 1.1 are deprecated */
	if (wolfSSL_CTX_SetMinVersion(t->ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "wolfSSL cannot do TLS 1.2");
		goto err_ctx;
	}
	wolfSSL_CTX_SetIORecv(t->ctx, io_recv);
	wolfSSL_CTX_SetIOSend(t->ctx, io_send);
	/* AES-GCM records on VAES where the CPU has it (core/tls_gcm.h) */
	devid = tls_gcm_dev_id();
	if (devid != INVALID_DEVID && wolfSSL_CTX_SetDevId(t->ctx, devid) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "wolfSSL refused the AES-GCM device");
		goto err_ctx;
	}
	t->aesgcm = devid != INVALID_DEVID;
	return t;

err_ctx:
	wolfSSL_CTX_free(t->ctx);
err_alloc:
	free(t);
	t = NULL;
err_init:
	wolfSSL_Cleanup();
	return NULL;
}

struct tls_ctx *
tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	struct tls_ctx *t = ctx_new(false, err, errlen);

	if (t == NULL)
		return NULL;
	if (ca_file == NULL)
		ca_file = TLS_DEFAULT_CA_FILE;
	if (wolfSSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != WOLFSSL_SUCCESS) {
		ctx_error(err, errlen, "CA bundle", ca_file);
		tls_ctx_free(t);
		return NULL;
	}
	/* the policy of each connection may relax this (tls_conn_new) */
	wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_PEER, NULL);
	return t;
}

/* Move what from has to send into to, as much as to takes. Returns the bytes moved. */
static size_t
conn_pipe(struct tls_conn *from, struct tls_conn *to)
{
	size_t n = tls_feed(to, from->out, from->out_len);

	tls_out_consumed(from, n);
	return n;
}

/*
 * Run both handshakes until neither side has more to say. Returns NULL when
 * both completed, else why one failed.
 */
static const char *
handshake_in_memory(struct tls_conn *c, struct tls_conn *s)
{
	int crc = -EAGAIN, src = -EAGAIN;

	/* a handshake takes two round trips; the bound only stops a bug from spinning */
	for (int i = 0; i < 16; i++) {
		size_t moved;

		crc = tls_handshake(c);
		moved = conn_pipe(c, s);
		src = tls_handshake(s);
		moved += conn_pipe(s, c);
		if (moved == 0)
			break;
	}
	if (crc != 0)
		return crc == -EAGAIN ? "handshake stalled" : tls_error(c);
	if (src != 0)
		return src == -EAGAIN ? "handshake stalled" : tls_error(s);
	return NULL;
}

/*
 * wolfSSL 5.5's wolfSSL_CTX_check_private_key() passes an EC key that does
 * not belong to the certificate (it catches RSA mismatches). Prove the pair
 * the way a peer would: one handshake in memory, whose CertificateVerify
 * only the matching key can sign. About 2 ms of CPU, once, at start-up.
 */
static int
server_self_test(struct tls_ctx *srv, char *err, size_t errlen)
{
	struct tls_ctx *cli = ctx_new(false, err, errlen);
	struct tls_conn *c = NULL, *s = NULL;
	const char *why = "out of memory";

	if (cli == NULL)
		return -ENOMEM;
	c = tls_conn_new(cli, NULL, TLS_POLICY_OPPORTUNISTIC);
	s = tls_conn_new(srv, NULL, TLS_POLICY_OPPORTUNISTIC);
	if (c != NULL && s != NULL)
		why = handshake_in_memory(c, s);
	if (why != NULL)
		snprintf(err, errlen, "key does not work with the certificate (test handshake: %s)",
			 why);
	tls_conn_free(c);
	c = NULL;
	tls_conn_free(s);
	s = NULL;
	tls_ctx_free(cli);
	cli = NULL;
	return why == NULL ? 0 : -EPROTO;
}

struct tls_ctx *
tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	struct tls_ctx *t = ctx_new(true, err, errlen);

	if (t == NULL)
		return NULL;
	if (wolfSSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != WOLFSSL_SUCCESS) {
		ctx_error(err, errlen, "certificate", cert_file);
		goto err;
	}
	if (wolfSSL_CTX_use_PrivateKey_file(t->ctx, key_file, WOLFSSL_FILETYPE_PEM) !=
	    WOLFSSL_SUCCESS) {
		ctx_error(err, errlen, "private key", key_file);
		goto err;
	}
	/* SMTP servers do not ask clients for certificates */
	wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_NONE, NULL);
	if (server_self_test(t, err, errlen) < 0) {
		snprintf(err + strlen(err), errlen - strlen(err), " (key %s, certificate %s)",
			 key_file, cert_file);
		goto err;
	}
	return t;

err:
	tls_ctx_free(t);
	return NULL;
}

void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	wolfSSL_CTX_free(t->ctx);
	free(t);
	t = NULL;
	wolfSSL_Cleanup();
}

/* ---------------------------------------------------------------- connections */

/* RFC 6066 3: "Literal IPv4 and IPv6 addresses are not permitted" in SNI. */
static bool
name_is_ip_literal(const char *name)
{
	unsigned char a[16];

	return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/* Client side of a new connection: SNI, and the name check under VERIFY. */
static int
conn_client_setup(struct tls_conn *c, const char *name, enum tls_policy policy)
{
	char host[TLS_NAME_MAX + 2];
	size_t len;

	if (name == NULL) {
		wolfSSL_set_verify(c->ssl, WOLFSSL_VERIFY_NONE, NULL);
		return 0;
	}
	len = strlen(name);
	BUG_ON(len > TLS_NAME_MAX + 1);
	/* "mx.example." from DNS is the same host, but wolfSSL would not match it */
	len -= len > 0 && name[len - 1] == '.';
	memcpy(host, name, len);
	host[len] = '\0';
	if (!name_is_ip_literal(host) && wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, host,
							(unsigned short)len) != WOLFSSL_SUCCESS)
		return -ENOMEM;
	if (policy == TLS_POLICY_OPPORTUNISTIC) {
		wolfSSL_set_verify(c->ssl, WOLFSSL_VERIFY_NONE, NULL);
		return 0;
	}
	/* wolfSSL checks the name against the subjectAltName DNS entries (the
	 * CN only without them), wildcards in the leftmost label included */
	if (wolfSSL_check_domain_name(c->ssl, host) != WOLFSSL_SUCCESS)
		return -ENOMEM;
	return 0;
}

struct tls_conn *
tls_conn_new(struct tls_ctx *t, const char *name, enum tls_policy policy)
{
	size_t cap = t->server ? TLS_OUT_CAP : TLS_OUT_CAP_CLIENT;
	struct tls_conn *c;

	BUG_ON(!t->server && policy == TLS_POLICY_VERIFY && name == NULL);
	/* the buffers are not zeroed: only [0..len) is ever read; tx_key wants
	   32-byte alignment, and sizeof is a multiple of it, as is cap */
	c = aligned_alloc(_Alignof(struct tls_conn), sizeof(*c) + cap);
	if (c == NULL)
		return NULL;
	memset(c, 0, offsetof(struct tls_conn, in));
	c->server = t->server;
	c->aesgcm = t->aesgcm;
	c->out_cap = cap;
	c->out_high = t->server ? TLS_OUT_HIGH : TLS_OUT_HIGH_CLIENT;
	c->ssl = wolfSSL_new(t->ctx);
	if (c->ssl == NULL)
		goto err_alloc;
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	if (!c->server && conn_client_setup(c, name, policy) < 0)
		goto err_ssl;
	return c;

err_ssl:
	wolfSSL_free(c->ssl);
	c->ssl = NULL;
err_alloc:
	free(c);
	c = NULL;
	return NULL;
}

void
tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	wolfSSL_free(c->ssl);
	c->ssl = NULL;
	if (c->tx == TX_OWN) {
		aesgcm_key_fini(&c->tx_key);
		explicit_bzero(c->tx_raw, sizeof(c->tx_raw));
		explicit_bzero(c->tx_iv, sizeof(c->tx_iv));
	}
	free(c);
	c = NULL;
}

size_t
tls_feed(struct tls_conn *c, const void *p, size_t n)
{
	size_t room;

	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	room = TLS_IN_CAP - c->in_len;
	if (n > room)
		n = room;
	memcpy(c->in + c->in_len, p, n);
	c->in_len += n;
	return n;
}

int
tls_handshake(struct tls_conn *c)
{
	int ret;

	if (c->failed)
		return -EPROTO;
	if (c->done)
		return 0;
	ret = c->server ? wolfSSL_accept(c->ssl) : wolfSSL_connect(c->ssl);
	if (ret != WOLFSSL_SUCCESS)
		return conn_status(c, ret);
	c->done = true;
	return 0;
}

ssize_t
tls_read(struct tls_conn *c, void *buf, size_t cap)
{
	int ret;

	BUG_ON(cap == 0);
	if (c->failed)
		return -EPROTO;
	BUG_ON(!c->done);
	ret = wolfSSL_read(c->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
	if (ret > 0)
		return ret;
	if (wolfSSL_get_error(c->ssl, ret) == WOLFSSL_ERROR_ZERO_RETURN)
		return 0;
	return conn_status(c, ret);
}

/* Seal one record of p[0..n), n <= TLS_RECORD_MAX: the bytes taken, or -EPROTO. */
static ssize_t
write_record(struct tls_conn *c, const char *p, size_t n)
{
	int ret;

	if (c->tx == TX_OWN) {
		if (c->tx_seq >= TLS13_SEQ_LIMIT) {
			c->failed = true;
			snprintf(c->err, sizeof(c->err), "%u records sent with one key: reconnect",
				 TLS13_SEQ_LIMIT);
			return -EPROTO;
		}
		tx_seal(c, p, n, TLS13_APP_DATA);
		return (ssize_t)n;
	}
	ret = wolfSSL_write(c->ssl, p, (int)n);
	if (ret <= 0)
		return conn_fail(c, wolfSSL_get_error(c->ssl, ret));
	return ret;
}

ssize_t
tls_write(struct tls_conn *c, const void *p, size_t n)
{
	const char *src = p;
	size_t done = 0;

	if (c->failed)
		return -EPROTO;
	BUG_ON(!c->done);
	if (c->tx == TX_UNDECIDED)
		tx_decide(c);
	if (c->tx == TX_OWN && tx_sync(c) < 0)
		return -EPROTO;
	while (done < n) {
		size_t piece = n - done < TLS_RECORD_MAX ? n - done : TLS_RECORD_MAX;
		ssize_t k;

		if (c->out_len + piece + TLS_RECORD_SLACK > c->out_high)
			break;
		k = write_record(c, src + done, piece);
		if (k < 0)
			return k;
		done += (size_t)k;
	}
	return (ssize_t)done;
}

size_t
tls_out(const struct tls_conn *c, const void **p)
{
	*p = c->out;
	return c->out_len;
}

void
tls_out_consumed(struct tls_conn *c, size_t n)
{
	BUG_ON(n > c->out_len);
	/* a short send: keep the rest at the front, where the next tls_out() lends it */
	memmove(c->out, c->out + n, c->out_len - n);
	c->out_len -= n;
}

void
tls_trim(struct tls_conn *c)
{
	uintptr_t page, lo, hi;

	/* the first TLS_OUT_CAP bytes stay: a connection carrying small messages
	   parks after each one, and a syscall and a page fault per message cost
	   ~10 % of the 4 KiB forwarding rate; only a big body's pages go */
	if (c->out_len != 0 || c->out_peak <= TLS_OUT_CAP)
		return;
	c->out_peak = 0;
	page = (uintptr_t)sysconf(_SC_PAGESIZE);
	lo = ((uintptr_t)c->out + TLS_OUT_CAP + page - 1) & ~(page - 1);
	hi = ((uintptr_t)c->out + c->out_cap) & ~(page - 1);
	if (hi > lo) /* advice: a failure costs memory only */
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int
tls_close(struct tls_conn *c)
{
	int ret;

	if (c->failed || !c->done)
		return -EPROTO;
	if (c->tx == TX_OWN) {
		static const uint8_t alert[2] = {1, 0}; /* warning(1), close_notify(0) */

		if (tx_sync(c) < 0)
			return -EPROTO;
		if (c->out_len + sizeof(alert) + TLS_RECORD_SLACK > c->out_cap) {
			c->overflow = true;
			return conn_fail(c, 0);
		}
		tx_seal(c, alert, sizeof(alert), TLS13_ALERT);
		return 0;
	}
	ret = wolfSSL_shutdown(c->ssl);
	if (ret == WOLFSSL_SUCCESS || ret == WOLFSSL_SHUTDOWN_NOT_DONE)
		return c->overflow ? conn_fail(c, 0) : 0;
	return conn_fail(c, wolfSSL_get_error(c->ssl, ret));
}

const char *
tls_error(const struct tls_conn *c)
{
	return c->err;
}

bool
tls_seals_own(const struct tls_conn *c)
{
	return c->tx == TX_OWN;
}

bool
tls_is_done(const struct tls_conn *c)
{
	return c->done;
}

const char *
tls_version(const struct tls_conn *c)
{
	return wolfSSL_get_version(c->ssl);
}

const char *
tls_cipher(const struct tls_conn *c)
{
	return wolfSSL_CIPHER_get_name(wolfSSL_get_current_cipher(c->ssl));
}

void
tls_thread_done(void)
{
	tls_gcm_thread_done();
#ifdef FP_ECC
	wc_ecc_fp_free();
#endif
}
