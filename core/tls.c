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
 * room: tls_write() produces no record that could pass TLS_OUT_HIGH, and
 * what else wolfSSL sends (handshake flights, alerts, KeyUpdate answers,
 * tickets) fits in the TLS_OUT_CAP - TLS_OUT_HIGH headroom or fails the
 * connection.
 */
#include "core/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "core/check.h"
#include "core/tls_gcm.h"

/* Ciphertext one record may add to its plaintext: header, explicit IV,
 * MAC or AEAD tag, CBC padding (TLS 1.2 CBC with SHA-384 needs 325). */
#define TLS_RECORD_SLACK 512

struct tls_ctx {
	WOLFSSL_CTX *ctx; /* owned; read-only once the first connection exists */
	bool server;	  /* the role of every connection made from it */
};

struct tls_conn {
	WOLFSSL *ssl;			/* owned */
	bool server;			/* role, from the context */
	bool done;			/* handshake complete */
	bool failed;			/* a fatal error happened; err says why */
	bool overflow;			/* io_send() found no room: fatal */
	size_t in_off, in_len;		/* in[in_off..in_len) not yet taken by wolfSSL */
	size_t out_len;			/* out[0..out_len) waits for the owner's send */
	char err[TLS_ERR_MAX];		/* reason of the failure; "" if none */
	unsigned char in[TLS_IN_CAP];	/* received ciphertext */
	unsigned char out[TLS_OUT_CAP]; /* ciphertext to send */
};

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
	if (sz < 0 || (size_t)sz > TLS_OUT_CAP - c->out_len) {
		c->overflow = true;
		return WOLFSSL_CBIO_ERR_GENERAL;
	}
	memcpy(c->out + c->out_len, buf, (size_t)sz);
	c->out_len += (size_t)sz;
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
		snprintf(c->err, sizeof(c->err), "output buffer full (%d bytes): peer not reading",
			 TLS_OUT_CAP);
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

	if (err == WOLFSSL_ERROR_WANT_READ && !c->overflow)
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
	struct tls_conn *c;

	BUG_ON(!t->server && policy == TLS_POLICY_VERIFY && name == NULL);
	/* the two buffers are not zeroed: only [0..len) is ever read */
	c = malloc(sizeof(*c));
	if (c == NULL)
		return NULL;
	memset(c, 0, offsetof(struct tls_conn, in));
	c->server = t->server;
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

ssize_t
tls_write(struct tls_conn *c, const void *p, size_t n)
{
	const char *src = p;
	size_t done = 0;

	if (c->failed)
		return -EPROTO;
	BUG_ON(!c->done);
	while (done < n) {
		size_t piece = n - done < TLS_RECORD_MAX ? n - done : TLS_RECORD_MAX;
		int ret;

		if (c->out_len + piece + TLS_RECORD_SLACK > TLS_OUT_HIGH)
			break;
		ret = wolfSSL_write(c->ssl, src + done, (int)piece);
		if (ret <= 0)
			return conn_fail(c, wolfSSL_get_error(c->ssl, ret));
		done += (size_t)ret;
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

int
tls_close(struct tls_conn *c)
{
	int ret;

	if (c->failed || !c->done)
		return -EPROTO;
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
