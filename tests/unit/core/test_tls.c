/*
 * test_tls.c -- core/tls: a client and a server in one process, pumping
 * ciphertext between each other's buffers (no sockets).
 *
 * The suite's init makes a throw-away PKI (tests/support/test_pki.h) and
 * its fini removes it. Without openssl every test is reported as skipped,
 * never as passed.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/aesgcm.h"
#include "core/check.h"
#include "core/tls.h"
#include "core/tls_gcm.h"
#include "tests/support/test_pki.h"

#define SINK_NAME    "sink.e2e.test"
#define PUMP_ROUNDS  100	 /* handshake round trips before giving up */
#define BIG_TRANSFER (25u << 20) /* the largest message sluice accepts */
#define BIG_SEED     0x9e3779b97f4a7c15ull

static char pki[TEST_PKI_DIR_MAX]; /* the PKI directory of this test process; "" if none */

static struct tls_ctx *cctx, *sctx; /* the test's contexts; freed by teardown */
static struct tls_conn *cli, *srv;  /* the test's connections; freed by teardown */

/* --- fixture --- */

static void
setup(void)
{
	test_pki_make(pki, "/tmp/sluice-tls.XXXXXX");
}

static void
teardown(void)
{
	tls_conn_free(cli);
	cli = NULL;
	tls_conn_free(srv);
	srv = NULL;
	tls_ctx_free(cctx);
	cctx = NULL;
	tls_ctx_free(sctx);
	sctx = NULL;
	test_pki_remove(pki);
}

TestSuite(tls, .init = setup, .fini = teardown, .timeout = 120);

/* Contexts: a client trusting ca_file, a server presenting cert (NAME.crt/.key). */
static void
make_ctxs(const char *ca_file, const char *cert)
{
	char err[256], crt[128], key[128];

	snprintf(crt, sizeof(crt), "%s/%s.crt", pki, cert);
	snprintf(key, sizeof(key), "%s/%s.key", pki, cert);
	cctx = tls_client_ctx_new(test_pki_path(pki, ca_file), err, sizeof(err));
	cr_assert_not_null(cctx, "client context: %s", err);
	sctx = tls_server_ctx_new(crt, key, err, sizeof(err));
	cr_assert_not_null(sctx, "server context: %s", err);
}

/* Connections for name under policy on the contexts above. */
static void
make_conns(const char *name, enum tls_policy policy)
{
	cli = tls_conn_new(cctx, name, policy);
	srv = tls_conn_new(sctx, NULL, TLS_POLICY_VERIFY);
	cr_assert_not_null(cli);
	cr_assert_not_null(srv);
}

/* --- pumping --- */

/* Move what from has to send into to, as much as to takes. Returns bytes moved. */
static size_t
move(struct tls_conn *from, struct tls_conn *to)
{
	const void *p;
	size_t n = tls_out(from, &p), k;

	if (n == 0)
		return 0;
	k = tls_feed(to, p, n);
	tls_out_consumed(from, k);
	return k;
}

/* Run both handshakes until neither side has anything left to say. */
static void
handshake(int *crc, int *src)
{
	for (int i = 0; i < PUMP_ROUNDS; i++) {
		size_t moved;

		*crc = tls_handshake(cli);
		moved = move(cli, srv);
		*src = tls_handshake(srv);
		moved += move(srv, cli);
		if (moved == 0)
			return;
	}
	cr_assert_fail("handshake still talking after %d rounds", PUMP_ROUNDS);
}

static void
handshake_ok(void)
{
	int crc, src;

	handshake(&crc, &src);
	cr_assert_eq(crc, 0, "client: %d %s", crc, tls_error(cli));
	cr_assert_eq(src, 0, "server: %d %s", src, tls_error(srv));
	cr_assert(tls_is_done(cli) && tls_is_done(srv));
}

/* The client's handshake fails with a reason containing want; the server is told. */
static void
handshake_refused(const char *want)
{
	int crc, src;

	handshake(&crc, &src);
	cr_assert_eq(crc, -EPROTO, "client handshake: %d, want -EPROTO", crc);
	cr_assert_not_null(strstr(tls_error(cli), want), "client error '%s', want '%s'",
			   tls_error(cli), want);
	/* the client's alert reached the server: it does not wait forever */
	cr_assert_eq(src, -EPROTO, "server handshake: %d", src);
	cr_log_info("refused: client '%s', server '%s'", tls_error(cli), tls_error(srv));
}

/* Send msg from one side to the other and check it arrives whole. */
static void
roundtrip(struct tls_conn *from, struct tls_conn *to, const char *msg)
{
	char got[256];
	size_t n = strlen(msg), have = 0;

	cr_assert_eq(tls_write(from, msg, n), (ssize_t)n);
	for (int i = 0; i < PUMP_ROUNDS && have < n; i++) {
		ssize_t r;

		move(from, to);
		move(to, from); /* tickets and the like flow back */
		r = tls_read(to, got + have, sizeof(got) - have);
		if (r == -EAGAIN)
			continue;
		cr_assert_gt(r, 0, "tls_read: %zd %s", r, tls_error(to));
		have += (size_t)r;
	}
	cr_assert_eq(have, n);
	cr_assert_arr_eq(got, msg, n);
}

/* --- verification --- */

Test(tls, verify_accepts_the_ca_signed_certificate_for_its_names)
{
	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_ok();
	cr_assert_str_eq(tls_version(cli), "TLSv1.3");
	cr_assert_str_eq(tls_version(srv), "TLSv1.3");
	cr_assert_str_eq(tls_cipher(cli), tls_cipher(srv));
	cr_log_info("negotiated %s %s", tls_version(cli), tls_cipher(cli));
	roundtrip(cli, srv, "EHLO client.e2e.test\r\n");
	roundtrip(srv, cli, "250-sink.e2e.test\r\n250 PIPELINING\r\n");
	cr_assert_str_eq(tls_error(cli), "");
}

Test(tls, verify_accepts_another_subject_alt_name)
{
	make_ctxs("ca.crt", "server");
	make_conns("localhost", TLS_POLICY_VERIFY);
	handshake_ok();
}

Test(tls, verify_takes_names_with_a_trailing_dot_and_any_case)
{
	make_ctxs("ca.crt", "server");
	make_conns("Sink.E2E.test.", TLS_POLICY_VERIFY);
	handshake_ok();
}

Test(tls, verify_matches_an_ipv4_literal_against_the_ip_address_entry)
{
	make_ctxs("ca.crt", "server");
	make_conns("127.0.0.1", TLS_POLICY_VERIFY);
	handshake_ok();
}

Test(tls, verify_refuses_a_name_the_certificate_lacks)
{
	make_ctxs("ca.crt", "server");
	make_conns("other.e2e.test", TLS_POLICY_VERIFY);
	handshake_refused("name mismatch");
}

Test(tls, verify_refuses_a_certificate_for_another_name)
{
	make_ctxs("ca.crt", "wrongname");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_refused("name mismatch");
}

Test(tls, verify_refuses_an_unknown_ca)
{
	/* the client trusts only the self-signed certificate, not the test CA */
	make_ctxs("selfsigned.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_refused("unknown CA");
}

Test(tls, verify_refuses_a_self_signed_certificate)
{
	make_ctxs("ca.crt", "selfsigned");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_refused("certificate verify failed");
}

Test(tls, verify_refuses_an_expired_certificate)
{
	make_ctxs("ca.crt", "expired");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_refused("expired");
}

Test(tls, opportunistic_accepts_a_self_signed_certificate)
{
	make_ctxs("ca.crt", "selfsigned");
	make_conns(SINK_NAME, TLS_POLICY_OPPORTUNISTIC);
	handshake_ok();
	roundtrip(cli, srv, "MAIL FROM:<a@e2e.test>\r\n");
}

Test(tls, opportunistic_accepts_expired_and_misnamed_certificates)
{
	make_ctxs("ca.crt", "expired");
	make_conns("other.e2e.test", TLS_POLICY_OPPORTUNISTIC);
	handshake_ok();
	roundtrip(srv, cli, "220 ready\r\n");
}

Test(tls, opportunistic_works_without_a_name)
{
	make_ctxs("ca.crt", "server");
	make_conns(NULL, TLS_POLICY_OPPORTUNISTIC);
	handshake_ok();
}

/* Its own suite, without the PKI: the abort skips the fini that would remove it. */
Test(tls_fault, verify_without_a_name_is_a_programmer_fault, .signal = SIGABRT)
{
	char err[256];

	if (access(TLS_DEFAULT_CA_FILE, R_OK) != 0)
		cr_skip_test("%s is missing (ca-certificates)", TLS_DEFAULT_CA_FILE);
	cctx = tls_client_ctx_new(NULL, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	cli = tls_conn_new(cctx, NULL, TLS_POLICY_VERIFY);
}

/* --- contexts --- */

Test(tls, contexts_refuse_missing_and_mismatched_files)
{
	char err[256], crt[128], key[128];

	snprintf(crt, sizeof(crt), "%s/server.crt", pki);
	snprintf(key, sizeof(key), "%s/wrongname.key", pki);
	cr_assert_null(tls_server_ctx_new(crt, key, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "key does not work with the certificate"), "%s", err);
	cr_log_info("mismatched key: %s", err);
	cr_assert_null(
	    tls_server_ctx_new(test_pki_path(pki, "nonexistent.crt"), key, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "nonexistent.crt: No such file"), "%s", err);
	cr_assert_null(
	    tls_server_ctx_new(crt, test_pki_path(pki, "nonexistent.key"), err, sizeof(err)));
	cr_assert_not_null(strstr(err, "nonexistent.key: No such file"), "%s", err);
	cr_assert_null(tls_server_ctx_new(key, key, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "certificate "), "%s", err);
	cr_log_info("a key as certificate: %s", err);
	cr_assert_null(tls_client_ctx_new(test_pki_path(pki, "nonexistent.crt"), err, sizeof(err)));
	cr_assert_not_null(strstr(err, "CA bundle"), "%s", err);
	/* a key is not a CA bundle */
	cr_assert_null(tls_client_ctx_new(test_pki_path(pki, "ca.key"), err, sizeof(err)));
	cr_log_info("not a bundle: %s", err);
}

Test(tls, client_context_loads_the_system_bundle_by_default)
{
	char err[256];

	if (access(TLS_DEFAULT_CA_FILE, R_OK) != 0)
		cr_skip_test("%s is missing (ca-certificates)", TLS_DEFAULT_CA_FILE);
	cctx = tls_client_ctx_new(NULL, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
}

/* --- data --- */

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Decrypt what to holds into dst + *rd; returns false if it had nothing. */
static bool
drain(struct tls_conn *to, unsigned char *dst, size_t cap, size_t *rd)
{
	bool got = false;

	while (*rd < cap) {
		ssize_t r = tls_read(to, dst + *rd, cap - *rd);

		if (r == -EAGAIN)
			break;
		cr_assert_gt(r, 0, "tls_read: %zd %s", r, tls_error(to));
		*rd += (size_t)r;
		got = true;
	}
	return got;
}

Test(tls, a_25mib_message_arrives_intact_with_bounded_output)
{
	unsigned char *src = malloc(BIG_TRANSFER), *dst = malloc(BIG_TRANSFER);
	size_t wr = 0, rd = 0, max_out = 0, short_writes = 0;
	uint64_t seed = BIG_SEED;
	const void *p;
	double t0;

	cr_assert(src != NULL && dst != NULL);
	for (size_t i = 0; i + 8 <= BIG_TRANSFER; i += 8) {
		uint64_t v = xorshift(&seed);

		memcpy(src + i, &v, 8);
	}
	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_ok();
	t0 = now_s();
	while (rd < BIG_TRANSFER) {
		bool progress = false;

		if (wr < BIG_TRANSFER) {
			ssize_t k = tls_write(cli, src + wr, BIG_TRANSFER - wr);

			cr_assert_geq(k, 0, "tls_write: %s", tls_error(cli));
			short_writes += (size_t)k < BIG_TRANSFER - wr;
			wr += (size_t)k;
			progress = k > 0;
		}
		if (tls_out(cli, &p) > max_out)
			max_out = tls_out(cli, &p);
		cr_assert_leq(max_out, TLS_OUT_HIGH_CLIENT);
		progress |= move(cli, srv) > 0;
		progress |= drain(srv, dst, BIG_TRANSFER, &rd);
		move(srv, cli);
		cr_assert(progress, "stalled at written %zu read %zu", wr, rd);
	}
	cr_log_info("25 MiB through TLS (%s %s) in %.3f s: %.0f MB/s encrypt+decrypt, "
		    "output peak %zu bytes",
		    tls_version(cli), tls_cipher(cli), now_s() - t0,
		    BIG_TRANSFER / 1e6 / (now_s() - t0), max_out);
	cr_assert_eq(rd, BIG_TRANSFER);
	cr_assert_gt(short_writes, 0, "the output buffer never stopped tls_write");
	cr_assert(memcmp(src, dst, BIG_TRANSFER) == 0, "the message changed in transit");
	free(src);
	src = NULL;
	free(dst);
	dst = NULL;
}

/* --- AES-GCM on VAES (core/tls_gcm) --- */

/* Send len pseudo-random bytes from one side to the other; they must arrive intact. */
static void
transfer(struct tls_conn *from, struct tls_conn *to, size_t len)
{
	unsigned char *src = malloc(len), *dst = malloc(len);
	size_t wr = 0, rd = 0;
	uint64_t seed = BIG_SEED;

	cr_assert(src != NULL && dst != NULL);
	for (size_t i = 0; i < len; i++)
		src[i] = (unsigned char)xorshift(&seed);
	/* bounded: every round moves at least one record (asserted) */
	while (rd < len) {
		bool progress = false;

		if (wr < len) {
			ssize_t k = tls_write(from, src + wr, len - wr);

			cr_assert_geq(k, 0, "tls_write: %s", tls_error(from));
			wr += (size_t)k;
			progress = k > 0;
		}
		progress |= move(from, to) > 0;
		progress |= drain(to, dst, len, &rd);
		move(to, from);
		cr_assert(progress, "stalled at written %zu read %zu", wr, rd);
	}
	cr_assert(memcmp(src, dst, len) == 0, "the data changed in transit");
	free(src);
	src = NULL;
	free(dst);
	dst = NULL;
}

Test(tls, gcm_records_go_through_the_vaes_device_when_the_cpu_has_it)
{
	unsigned long before = tls_gcm_records();

	if (!aesgcm_available())
		cr_skip_test("this CPU has no VAES/VPCLMULQDQ: wolfSSL's own AES-GCM is used");
	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_ok();
	cr_assert_not_null(strstr(tls_cipher(cli), "GCM"), "cipher %s", tls_cipher(cli));
	transfer(cli, srv, 100000);
	transfer(srv, cli, 100000);
	/* 2 x 7 records of data each sealed and opened, plus the handshake's */
	cr_assert_geq(tls_gcm_records() - before, 28, "device records: %lu",
		      tls_gcm_records() - before);
}

/* One side on the device, the other on wolfSSL's own AES-GCM: each opens what the
 * other seals, so a mistake the device makes on both ends cannot hide. */
Test(tls, vaes_records_interoperate_with_wolfssls_own_gcm)
{
	char err[256], crt[128], key[128];
	unsigned long before = tls_gcm_records();

	if (!aesgcm_available())
		cr_skip_test("this CPU has no VAES/VPCLMULQDQ: nothing to compare");
	snprintf(crt, sizeof(crt), "%s/server.crt", pki);
	snprintf(key, sizeof(key), "%s/server.key", pki);
	cr_assert_eq(setenv("SLUICE_AESGCM", "wolfssl", 1), 0);
	sctx = tls_server_ctx_new(crt, key, err, sizeof(err));
	cr_assert_not_null(sctx, "server context: %s", err);
	cr_assert_eq(unsetenv("SLUICE_AESGCM"), 0);
	cctx = tls_client_ctx_new(test_pki_path(pki, "ca.crt"), err, sizeof(err));
	cr_assert_not_null(cctx, "client context: %s", err);
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_ok();
	/* every length class of the cipher: whole 8-block runs, single blocks, a tail */
	transfer(cli, srv, 16384 * 3 + 129);
	transfer(srv, cli, 16384 * 3 + 17);
	roundtrip(cli, srv, "QUIT\r\n");
	cr_assert_gt(tls_gcm_records() - before, 0, "the client never used the device");
	/* the client's records were sealed by core/tls (tx_seal), the server's by wolfSSL */
	cr_assert(tls_seals_own(cli), "%s %s", tls_version(cli), tls_cipher(cli));
	cr_assert(!tls_seals_own(srv));
}

/* Our record layer's sizes, both ways, and its close_notify. */
Test(tls, records_sealed_by_core_tls_open_at_every_size_and_close_cleanly)
{
	static const size_t lens[] = {1, 15, 16, 17, 255, 256, 257, 16383, 16384, 16385, 1000003};
	char buf[16];

	if (!aesgcm_available())
		cr_skip_test("this CPU has no VAES/VPCLMULQDQ: wolfSSL seals every record");
	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_ok();
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		transfer(cli, srv, lens[i]);
		transfer(srv, cli, lens[i]);
	}
	cr_assert(tls_seals_own(cli) && tls_seals_own(srv));
	cr_assert_eq(tls_close(cli), 0);
	move(cli, srv);
	cr_assert_eq(tls_read(srv, buf, sizeof(buf)), 0, "close_notify: %s", tls_error(srv));
}

Test(tls, sluice_aesgcm_wolfssl_leaves_every_record_to_wolfssl)
{
	unsigned long before = tls_gcm_records();

	cr_assert_eq(setenv("SLUICE_AESGCM", "wolfssl", 1), 0);
	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_ok();
	transfer(cli, srv, 50000);
	cr_assert_eq(tls_gcm_records(), before);
	cr_assert(!tls_seals_own(cli) && !tls_seals_own(srv));
	cr_assert_eq(unsetenv("SLUICE_AESGCM"), 0);
}

/* Resident bytes of this process (/proc/self/statm). */
static size_t
resident_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size, pages;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%lu %lu", &size, &pages), 2);
	fclose(f);
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}

#define TRIM_PAIRS 16 /* clients whose full output buffers tls_trim() gives back */

Test(tls, trim_gives_an_idle_clients_output_pages_back)
{
	struct tls_conn *c[TRIM_PAIRS], *s[TRIM_PAIRS];
	size_t before, after;

	make_ctxs("ca.crt", "server");
	for (int i = 0; i < TRIM_PAIRS; i++) {
		make_conns(SINK_NAME, TLS_POLICY_VERIFY);
		handshake_ok();
		transfer(cli, srv, 1u << 20); /* fills the client's output to its high water */
		c[i] = cli;
		s[i] = srv;
		cli = srv = NULL;
	}
	before = resident_bytes();
	for (int i = 0; i < TRIM_PAIRS; i++)
		tls_trim(c[i]);
	after = resident_bytes();
	cr_log_info("tls_trim on %d idle clients: resident %zu -> %zu KiB", TRIM_PAIRS,
		    before >> 10, after >> 10);
	/* at least half of each buffer's part past TLS_OUT_CAP: the allocator's placement
	   (ASan's among others) decides how many of its pages are whole */
	cr_assert_geq(before, after + (size_t)TRIM_PAIRS * (TLS_OUT_HIGH_CLIENT - TLS_OUT_CAP) / 2,
		      "resident %zu -> %zu bytes", before, after);
	/* the pages come back on the next write: the connections still work */
	transfer(c[0], s[0], 100000);
	transfer(s[0], c[0], 100000);
	for (int i = 0; i < TRIM_PAIRS; i++) {
		tls_conn_free(c[i]);
		tls_conn_free(s[i]);
	}
}

Test(tls, feed_takes_no_more_than_its_buffer)
{
	static unsigned char junk[TLS_IN_CAP + 100];

	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	cr_assert_eq(tls_feed(srv, junk, sizeof(junk)), TLS_IN_CAP);
	cr_assert_eq(tls_feed(srv, junk, sizeof(junk)), 0);
}

Test(tls, close_notify_reads_as_closed)
{
	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_ok();
	roundtrip(cli, srv, "QUIT\r\n");
	roundtrip(srv, cli, "221 bye\r\n");
	cr_assert_eq(tls_close(srv), 0);
	move(srv, cli);
	{
		char buf[64];

		cr_assert_eq(tls_read(cli, buf, sizeof(buf)), 0, "%s", tls_error(cli));
		cr_assert_eq(tls_read(cli, buf, sizeof(buf)), 0, "closed stays closed");
	}
	cr_assert_eq(tls_close(cli), 0, "answering close_notify: %s", tls_error(cli));
}

/* --- garbage --- */

Test(tls, plaintext_instead_of_a_client_hello_fails_cleanly)
{
	static const char smtp[] = "EHLO client.e2e.test\r\nMAIL FROM:<a@e2e.test>\r\n";
	char buf[16];

	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	cr_assert_eq(tls_feed(srv, smtp, sizeof(smtp) - 1), sizeof(smtp) - 1);
	cr_assert_eq(tls_handshake(srv), -EPROTO);
	cr_assert_neq(tls_error(srv)[0], '\0');
	cr_log_info("server on plaintext: %s", tls_error(srv));
	cr_assert_eq(tls_handshake(srv), -EPROTO, "a failure is final");
	cr_assert_eq(tls_read(srv, buf, sizeof(buf)), -EPROTO);
	cr_assert_eq(tls_close(srv), -EPROTO);
}

Test(tls, plaintext_instead_of_a_server_hello_fails_cleanly)
{
	static const char smtp[] = "220 sink.e2e.test ESMTP\r\n";

	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	cr_assert_eq(tls_handshake(cli), -EAGAIN);
	cr_assert_eq(tls_feed(cli, smtp, sizeof(smtp) - 1), sizeof(smtp) - 1);
	cr_assert_eq(tls_handshake(cli), -EPROTO);
	cr_log_info("client on plaintext: %s", tls_error(cli));
}

Test(tls, random_bytes_fail_cleanly)
{
	unsigned char junk[4096];
	uint64_t seed = BIG_SEED;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)xorshift(&seed);
	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	tls_feed(srv, junk, sizeof(junk));
	cr_assert_eq(tls_handshake(srv), -EPROTO);
	cr_assert_eq(tls_handshake(cli), -EAGAIN);
	tls_feed(cli, junk, sizeof(junk));
	cr_assert_eq(tls_handshake(cli), -EPROTO);
}

Test(tls, a_changed_record_fails_cleanly)
{
	unsigned char rec[256];
	const void *p;
	size_t n;
	char buf[64];

	make_ctxs("ca.crt", "server");
	make_conns(SINK_NAME, TLS_POLICY_VERIFY);
	handshake_ok();
	cr_assert_eq(tls_write(cli, "RCPT TO:<b@e2e.test>\r\n", 22), 22);
	n = tls_out(cli, &p);
	cr_assert(n > 10 && n <= sizeof(rec));
	memcpy(rec, p, n);
	tls_out_consumed(cli, n);
	rec[n - 3] ^= 0x01; /* inside the AEAD tag */
	cr_assert_eq(tls_feed(srv, rec, n), n);
	cr_assert_eq(tls_read(srv, buf, sizeof(buf)), -EPROTO);
	cr_log_info("changed record: %s", tls_error(srv));
}
