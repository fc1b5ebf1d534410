/*
 * tls.h -- TLS sessions over memory buffers, on wolfSSL (level 2: I/O
 * support, no SMTP).
 *
 * The module never touches a socket: the owner (a shard, or a tool) does
 * all I/O on its ring and moves ciphertext in and out through two buffers
 * per connection, in the spirit of OpenSSL's memory BIOs:
 *
 *   recv CQE  -> tls_feed(c, bytes, n)          copies ciphertext in
 *             -> tls_handshake(c) until it returns 0, then tls_read(c, ...)
 *   replies   -> tls_write(c, plain, n)         encrypts into the output buffer
 *   send      <- tls_out(c, &p, &len); send(p, len); on its CQE
 *                tls_out_consumed(c, res)
 *
 * Any call may leave ciphertext to send (handshake flights, alerts, a TLS 1.3
 * KeyUpdate answer, close_notify): after each one, send what tls_out() holds
 * unless a send is already in flight.
 *
 * Return values (STYLE "Return conventions"):
 *   -EAGAIN  the call needs more ciphertext: feed what you hold and arm a
 *            recv. By then the input buffer is empty (wolfSSL has taken
 *            every byte), so up to TLS_IN_CAP bytes can be fed.
 *   -EPROTO  fatal: handshake or record failure, certificate refused, alert
 *            received. tls_error() says why ("certificate verify failed:
 *            unknown CA", "certificate name mismatch", "certificate
 *            expired", ...). The connection is unusable; tls_out() may still
 *            hold an alert worth sending before the socket is closed.
 *
 * Buffers and lifetimes:
 *   - input: tls_feed() copies at most TLS_IN_CAP - pending bytes and says
 *     how many it took; the owner keeps the rest and feeds it after the next
 *     -EAGAIN. The owner's buffer is not referenced after the call.
 *   - output: tls_out() lends out[0..len). Those bytes do not move and are
 *     not overwritten until tls_out_consumed(), which the owner calls once
 *     per send, after its completion (with the byte count sent, possibly
 *     short). Calls in between may append after them, never move them. So
 *     the owner has at most one send in flight per connection.
 *   - bounded memory: tls_write() encrypts in records of at most
 *     TLS_RECORD_MAX plaintext bytes and stops producing them once
 *     TLS_OUT_HIGH bytes of ciphertext wait to be sent (TLS_OUT_HIGH_CLIENT
 *     for a client); it then returns fewer bytes than asked (possibly 0) and
 *     the owner writes the rest after the next tls_out_consumed(). The room
 *     between the high-water mark and TLS_OUT_CAP (_CLIENT) takes handshake
 *     flights and control records; a peer that makes us produce more without
 *     reading (KeyUpdate floods) gets -EPROTO. A client sends message bodies
 *     (sluice forwarding, sluice-source), so its output holds 15 records:
 *     one send per 240 KiB of a body instead of per 32 KiB, fewer trips
 *     through the ring (with records sealed in place, see tls.c, this took
 *     the 25 MiB forwarding row of bench/run.sh from ~64 % to 72-79 % of the
 *     plain relay). A server sends replies, so it keeps 64 KiB. A connection
 *     costs sizeof its buffers (about 80 KiB for a server, 272 KiB for a
 *     client, of which pages never written cost nothing and tls_trim() gives
 *     back those of an idle one) plus wolfSSL's own state.
 *
 * Threads: a tls_ctx is built at start-up, before any shard runs, and is
 * then shared read-only by every shard; it must outlive every connection
 * made from it. A tls_conn belongs to one thread. What this relies on in
 * wolfSSL (5.5, built without SINGLE_THREADED, with ERROR_QUEUE_PER_THREAD):
 * a WOLFSSL_CTX is not changed after the first wolfSSL_new(); wolfSSL_new()
 * and wolfSSL_free() update the context's reference count under its own
 * mutex; certificate verification reads the context's CA table under the
 * certificate manager's lock; the server session cache is process-wide and
 * locked per row; each WOLFSSL has its own RNG. tls_*_ctx_new() and
 * tls_ctx_free() call wolfSSL_Init()/wolfSSL_Cleanup(), which are not
 * thread-safe: call them from one thread only (start-up and shutdown).
 *
 * Protocol: TLS 1.2 and TLS 1.3 (RFC 8996 retired 1.0 and 1.1), wolfSSL's
 * default cipher suites.
 */
#ifndef SLUICE_CORE_TLS_H
#define SLUICE_CORE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define TLS_IN_CAP	    16384  /* ciphertext buffered by tls_feed() per connection */
#define TLS_OUT_CAP	    65536  /* ciphertext waiting for the owner's send, hard limit */
#define TLS_OUT_HIGH	    49152  /* tls_write() encrypts no record that would pass this */
#define TLS_OUT_CAP_CLIENT  262144 /* the same two for a client connection */
#define TLS_OUT_HIGH_CLIENT 245760
#define TLS_RECORD_MAX	    16384 /* plaintext bytes per record (RFC 8446 5.1) */
#define TLS_ERR_MAX	    160	  /* tls_error() text, NUL included */
#define TLS_NAME_MAX	    253	  /* destination name, a trailing dot not counted (RFC 1035) */

#define TLS_DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt" /* Debian's bundle */

/* What a client checks of the server's certificate. A server checks nothing. */
enum tls_policy {
	TLS_POLICY_VERIFY,	  /* chain to a CA of the context, within its dates, and the
				     destination name in the certificate; else -EPROTO */
	TLS_POLICY_OPPORTUNISTIC, /* encrypt, but accept any certificate (RFC 7435) */
};

struct tls_ctx;
struct tls_conn;

/*
 * A client context that verifies servers against the PEM bundle ca_file
 * (NULL: TLS_DEFAULT_CA_FILE). Returns NULL with a reason in err[errlen] if
 * the bundle cannot be read or holds no usable certificate.
 */
struct tls_ctx *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);

/*
 * A server context presenting cert_file (PEM: the certificate, then any
 * intermediates) with the private key key_file (PEM). Returns NULL with a
 * reason in err[errlen] if a file cannot be read or a test handshake in
 * memory fails (the key does not belong to the certificate, say).
 */
struct tls_ctx *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err,
				   size_t errlen);

/* Free ctx (NULL is a no-op). Every connection made from it must be freed. */
void tls_ctx_free(struct tls_ctx *ctx);

/*
 * A connection in ctx's role. For a client, name is the destination host
 * name, at most TLS_NAME_MAX characters plus an optional trailing dot (which
 * is dropped): SNI (left out for IP literals) and, under TLS_POLICY_VERIFY,
 * the name checked (RFC 6125: subjectAltName DNS entries, wildcards in the
 * leftmost label, case-insensitive). VERIFY without a name is a programmer
 * fault. IP literals are checked against iPAddress entries only for IPv4:
 * wolfSSL 5.5 matches "::1" against nothing. A server ignores name and
 * policy. Allocates (wolfSSL allocates per connection anyway); returns NULL
 * when out of memory.
 */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *name, enum tls_policy policy);

/* Free c (NULL is a no-op). No close_notify is sent: see tls_close(). */
void tls_conn_free(struct tls_conn *c);

/* Copy up to n bytes of received ciphertext into c; returns how many it took. */
size_t tls_feed(struct tls_conn *c, const void *p, size_t n);

/* Advance the handshake: 0 once complete (and on every later call), -EAGAIN, -EPROTO. */
int tls_handshake(struct tls_conn *c);

/*
 * Decrypt into buf[0..cap), cap > 0, after the handshake: plaintext bytes
 * (> 0), 0 once the peer's close_notify arrived, -EAGAIN, or -EPROTO.
 */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t cap);

/*
 * Encrypt p[0..n) after the handshake: returns the bytes taken (< n when the
 * output reached TLS_OUT_HIGH, see above) or -EPROTO.
 */
ssize_t tls_write(struct tls_conn *c, const void *p, size_t n);

/* Lend the ciphertext waiting to be sent: *p, returns its length (0: nothing). */
size_t tls_out(const struct tls_conn *c, const void **p);

/* n bytes of what tls_out() lent were sent; n <= that length. */
void tls_out_consumed(struct tls_conn *c, size_t n);

/*
 * c goes idle (a pooled upstream connection): give back to the kernel the
 * pages of its output buffer past the first TLS_OUT_CAP bytes, if anything
 * filled them since the last call and nothing waits there now (else a
 * no-op). A client's buffer fills 240 KiB while a body is sent, and an idle
 * pool would keep that resident for nothing; the pages come back on the
 * next big write, at a page fault each.
 */
void tls_trim(struct tls_conn *c);

/*
 * Queue a close_notify alert (RFC 8446 6.1) after everything written so far;
 * send tls_out(), then close the socket (waiting for the peer's is not needed).
 * Returns 0, or -EPROTO after a failure or before the handshake completed
 * (nothing is queued then).
 */
int tls_close(struct tls_conn *c);

/*
 * A thread that made TLS connections is about to exit: free what wolfSSL
 * keeps per thread (Debian builds it with FP_ECC, a thread-local cache of
 * ECC fixed points that leaks otherwise). Call it last in the thread.
 */
void tls_thread_done(void);

/*
 * True once core/tls seals this connection's records itself rather than
 * wolfSSL (TLS 1.3 with AES-GCM on core/aesgcm, from the first tls_write()
 * after the handshake; see tls.c). For tests and logs.
 */
bool tls_seals_own(const struct tls_conn *c);

/* Why the last -EPROTO happened; "" if nothing failed. */
const char *tls_error(const struct tls_conn *c);

/* True once the handshake is complete. */
bool tls_is_done(const struct tls_conn *c);

/* Negotiated protocol ("TLSv1.3") and cipher suite, for logs and Received:. */
const char *tls_version(const struct tls_conn *c);
const char *tls_cipher(const struct tls_conn *c);

#endif /* SLUICE_CORE_TLS_H */
