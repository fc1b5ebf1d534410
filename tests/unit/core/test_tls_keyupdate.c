/*
 * test_tls_keyupdate.c -- core/tls as a server against a raw wolfSSL client
 * that sends a TLS 1.3 KeyUpdate asking for one in return.
 *
 * Once core/tls seals application records itself (tls_seals_own()),
 * wolfSSL's write sequence number is stale: a KeyUpdate answer sealed by
 * wolfSSL carries a nonce already used. core/tls must seal its content
 * again with its own sequence number and then follow wolfSSL to the new
 * key. The control test runs the same exchange with wolfSSL sealing
 * everything (SLUICE_AESGCM=wolfssl).
 *
 * The client is plain wolfSSL, not core/tls, because core/tls has no way to
 * send a KeyUpdate. Its I/O callbacks move bytes through two static pipes;
 * the server side is pumped with tls_out()/tls_out_consumed()/tls_feed().
 * The PKI comes from tests/support/test_pki.h.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "core/aesgcm.h"
#include "core/tls.h"
#include "tests/support/test_pki.h"

#define SINK_NAME   "sink.e2e.test"
#define PUMP_ROUNDS 100	  /* round trips before a handshake or read is stuck */
#define PIPE_CAP    65536 /* a whole handshake flight fits: sends never wait */

/* Bytes in flight one way: buf[off..len) not yet taken by the reader. */
struct pipe {
	unsigned char buf[PIPE_CAP];
	size_t off, len;
};

static char pki[TEST_PKI_DIR_MAX]; /* this test process's PKI directory; "" if none */
static struct pipe to_srv, to_cli; /* the raw client's sends, and what it receives */
static bool wolf_up;		   /* wolfSSL_Init() done for the raw client */
static WOLFSSL_CTX *raw_ctx;	   /* the raw client; freed by teardown */
static WOLFSSL *raw;
static struct tls_ctx *sctx; /* the core/tls server; freed by teardown */
static struct tls_conn *srv;

/* --- fixture --- */

static void
setup(void)
{
	test_pki_make(pki, "/tmp/sluice-tlsku.XXXXXX");
}

static void
teardown(void)
{
	wolfSSL_free(raw);
	raw = NULL;
	wolfSSL_CTX_free(raw_ctx);
	raw_ctx = NULL;
	tls_conn_free(srv);
	srv = NULL;
	tls_ctx_free(sctx);
	sctx = NULL;
	/* last: the raw client's objects are gone, core/tls balanced its own */
	if (wolf_up)
		wolfSSL_Cleanup();
	wolf_up = false;
	test_pki_remove(pki);
}

TestSuite(tls_keyupdate, .init = setup, .fini = teardown);

/* --- the raw client's I/O: static pipes instead of a socket --- */

/* Never WANT_WRITE: wolfSSL_update_keys() must get its record out in one call. */
static int
raw_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	(void)ssl;
	(void)arg;
	if (sz < 0 || (size_t)sz > PIPE_CAP - to_srv.len)
		return WOLFSSL_CBIO_ERR_GENERAL; /* the pipe is sized so this never happens */
	memcpy(to_srv.buf + to_srv.len, buf, (size_t)sz);
	to_srv.len += (size_t)sz;
	return sz;
}

static int
raw_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	size_t n = to_cli.len - to_cli.off;

	(void)ssl;
	(void)arg;
	if (n == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (sz >= 0 && n > (size_t)sz)
		n = (size_t)sz;
	memcpy(buf, to_cli.buf + to_cli.off, n);
	to_cli.off += n;
	if (to_cli.off == to_cli.len)
		to_cli.off = to_cli.len = 0;
	return (int)n;
}

/* Feed the server what the client sent, as much as it takes. Returns bytes moved. */
static size_t
pump_to_server(void)
{
	size_t n = tls_feed(srv, to_srv.buf + to_srv.off, to_srv.len - to_srv.off);

	to_srv.off += n;
	if (to_srv.off == to_srv.len)
		to_srv.off = to_srv.len = 0;
	return n;
}

/* Hand the client all the server's ciphertext. Returns bytes moved. */
static size_t
pump_to_client(void)
{
	const void *p;
	size_t n = tls_out(srv, &p);

	if (to_cli.off > 0) { /* keep the unread bytes at the front */
		memmove(to_cli.buf, to_cli.buf + to_cli.off, to_cli.len - to_cli.off);
		to_cli.len -= to_cli.off;
		to_cli.off = 0;
	}
	cr_assert_leq(n, PIPE_CAP - to_cli.len, "server output %zu bytes", n);
	memcpy(to_cli.buf + to_cli.len, p, n);
	to_cli.len += n;
	tls_out_consumed(srv, n);
	return n;
}

/* --- set-up of both ends --- */

/* The core/tls server on DIR/server.crt; SLUICE_AESGCM=env while it is made, if set. */
static void
make_server(const char *env)
{
	char err[256], crt[128], key[128];

	snprintf(crt, sizeof(crt), "%s/server.crt", pki);
	snprintf(key, sizeof(key), "%s/server.key", pki);
	/* the device is chosen when the context is made (tls_gcm_dev_id) */
	if (env != NULL)
		cr_assert_eq(setenv("SLUICE_AESGCM", env, 1), 0);
	sctx = tls_server_ctx_new(crt, key, err, sizeof(err));
	cr_assert_eq(unsetenv("SLUICE_AESGCM"), 0);
	cr_assert_not_null(sctx, "server context: %s", err);
	srv = tls_conn_new(sctx, NULL, TLS_POLICY_VERIFY);
	cr_assert_not_null(srv);
}

/* A TLS 1.3 AES-GCM client verifying the server against DIR/ca.crt and SINK_NAME. */
static void
make_raw_client(void)
{
	cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
	wolf_up = true;
	raw_ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
	cr_assert_not_null(raw_ctx);
	cr_assert_eq(wolfSSL_CTX_load_verify_locations(raw_ctx, test_pki_path(pki, "ca.crt"), NULL),
		     WOLFSSL_SUCCESS);
	wolfSSL_CTX_set_verify(raw_ctx, WOLFSSL_VERIFY_PEER, NULL);
	/* the takeover only happens on AES-GCM: leave ChaCha20 no chance */
	cr_assert_eq(
	    wolfSSL_CTX_set_cipher_list(raw_ctx, "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384"),
	    WOLFSSL_SUCCESS);
	wolfSSL_CTX_SetIORecv(raw_ctx, raw_recv);
	wolfSSL_CTX_SetIOSend(raw_ctx, raw_send);
	raw = wolfSSL_new(raw_ctx);
	cr_assert_not_null(raw);
	cr_assert_eq(wolfSSL_check_domain_name(raw, SINK_NAME), WOLFSSL_SUCCESS);
}

/* wolfSSL's reason for the last failure of raw, for assertion messages. */
static const char *
raw_error(int ret)
{
	static char text[WOLFSSL_MAX_ERROR_SZ];

	wolfSSL_ERR_error_string_n((unsigned long)wolfSSL_get_error(raw, ret), text, sizeof(text));
	return text;
}

/* One step of the client's handshake: true once complete; fails on anything but WANT_READ. */
static bool
raw_connect_step(void)
{
	int ret = wolfSSL_connect(raw);

	if (ret == WOLFSSL_SUCCESS)
		return true;
	cr_assert_eq(wolfSSL_get_error(raw, ret), WOLFSSL_ERROR_WANT_READ, "client: %s",
		     raw_error(ret));
	return false;
}

/* One step of the server's handshake: true once complete. */
static bool
srv_handshake_step(void)
{
	int ret = tls_handshake(srv);

	cr_assert(ret == 0 || ret == -EAGAIN, "server: %d %s", ret, tls_error(srv));
	return ret == 0;
}

/* Run both handshakes to completion; every round must move bytes until then. */
static void
handshake(void)
{
	bool cdone = false, sdone = false;

	for (int i = 0; i < PUMP_ROUNDS && !(cdone && sdone); i++) {
		size_t moved;

		if (!cdone)
			cdone = raw_connect_step();
		moved = pump_to_server();
		if (!sdone)
			sdone = srv_handshake_step();
		moved += pump_to_client();
		cr_assert(moved > 0 || (cdone && sdone), "handshake stalled: client %d server %d",
			  cdone, sdone);
	}
	cr_assert(cdone && sdone, "handshake still talking after %d rounds", PUMP_ROUNDS);
	cr_assert_str_eq(wolfSSL_get_version(raw), "TLSv1.3");
	cr_assert_not_null(strstr(tls_cipher(srv), "GCM"), "cipher %s", tls_cipher(srv));
}

/* --- application data --- */

/* The client reads msg, whole, from what the server has sent. */
static void
raw_expect(const char *msg)
{
	char got[256];
	size_t n = strlen(msg), have = 0;

	cr_assert_lt(n, sizeof(got));
	for (int i = 0; i < PUMP_ROUNDS && have < n; i++) {
		int ret;

		pump_to_client();
		ret = wolfSSL_read(raw, got + have, (int)(sizeof(got) - have));
		if (ret > 0) {
			have += (size_t)ret;
			continue;
		}
		cr_assert_eq(wolfSSL_get_error(raw, ret), WOLFSSL_ERROR_WANT_READ, "client: %s",
			     raw_error(ret));
	}
	cr_assert_eq(have, n, "client read %zu of %zu bytes", have, n);
	cr_assert_arr_eq(got, msg, n);
}

/* The server sends msg; the client must read it intact. */
static void
srv_say(const char *msg)
{
	size_t n = strlen(msg);

	cr_assert_eq(tls_write(srv, msg, n), (ssize_t)n, "tls_write: %s", tls_error(srv));
	raw_expect(msg);
}

/* The client sends msg; the server must read it intact. */
static void
raw_say(const char *msg)
{
	char got[256];
	int n = (int)strlen(msg), ret;
	ssize_t r;

	ret = wolfSSL_write(raw, msg, n);
	cr_assert_eq(ret, n, "client: %s", raw_error(ret));
	cr_assert_gt(pump_to_server(), 0);
	cr_assert_eq(to_srv.len, 0, "the server did not take the whole record");
	r = tls_read(srv, got, sizeof(got));
	cr_assert_eq(r, n, "tls_read: %zd %s", r, tls_error(srv));
	cr_assert_arr_eq(got, msg, (size_t)n);
}

/* The client sends a KeyUpdate with update_requested and it reaches the server. */
static void
raw_key_update(void)
{
	int ret = wolfSSL_update_keys(raw);

	/* raw_send() takes everything, so the record went out in this call */
	cr_assert_eq(ret, WOLFSSL_SUCCESS, "wolfSSL_update_keys: %d", ret);
	cr_assert_gt(to_srv.len, 0, "no KeyUpdate record was sent");
	cr_assert_gt(pump_to_server(), 0);
	cr_assert_eq(to_srv.len, 0, "the server did not take the whole KeyUpdate");
}

/* The client's close_notify check: its next read says the server closed. */
static void
raw_expect_close(void)
{
	char got[16];
	int ret;

	pump_to_client();
	ret = wolfSSL_read(raw, got, sizeof(got));
	cr_assert_leq(ret, 0, "data after close_notify");
	cr_assert_eq(wolfSSL_get_error(raw, ret), WOLFSSL_ERROR_ZERO_RETURN, "client: %s",
		     raw_error(ret));
}

/*
 * Two KeyUpdates from the client, each asking for ours: the server answers
 * each (tls_read() sees no error, and its answer is in tls_out()), and every
 * record after it, both ways, opens under the new keys; then the server's
 * close_notify. own: whether core/tls seals the server's records.
 */
static void
key_updates(bool own)
{
	const void *p;
	char buf[64];

	handshake();
	/* the decision is taken at the first write, not at the handshake */
	cr_assert(!tls_seals_own(srv));
	srv_say("250 ok\r\n");
	cr_assert_eq(tls_seals_own(srv), own, "%s %s", tls_version(srv), tls_cipher(srv));
	for (int round = 0; round < 2; round++) {
		ssize_t r;

		raw_key_update();
		r = tls_read(srv, buf, sizeof(buf));
		cr_assert_eq(r, -EAGAIN, "tls_read: %zd (%s)", r, tls_error(srv));
		cr_assert_str_eq(tls_error(srv), "");
		cr_assert_gt(tls_out(srv, &p), 0, "no KeyUpdate answer");
		/* the answer, then a record under the server's new key */
		srv_say("250 still ok\r\n");
		raw_say("NOOP\r\n");
	}
	cr_assert_eq(tls_close(srv), 0, "%s", tls_error(srv));
	raw_expect_close();
}

/* --- the tests --- */

/*
 * After the takeover wolfSSL's write sequence number is stale: its KeyUpdate
 * answer must be sealed again with ours (the client expects our sequence
 * number, so sent as wolfSSL sealed it the answer would not open), and the
 * server's records must follow to the new key.
 */
Test(tls_keyupdate, key_updates_after_the_takeover_are_answered_and_followed)
{
	/* the environment of the run must not turn the takeover off */
	cr_assert_eq(unsetenv("SLUICE_AESGCM"), 0);
	if (!aesgcm_available())
		cr_skip_test("this CPU has no VAES/VPCLMULQDQ: wolfSSL seals every record");
	make_server(NULL);
	make_raw_client();
	key_updates(true);
}

/* The same exchange with wolfSSL sealing everything (SLUICE_AESGCM=wolfssl). */
Test(tls_keyupdate, control_wolfssl_sealing_answers_key_updates)
{
	make_server("wolfssl");
	make_raw_client();
	key_updates(false);
}
