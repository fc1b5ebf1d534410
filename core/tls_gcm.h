/*
 * tls_gcm.h -- AES-GCM records of wolfSSL on core/aesgcm (level 2: I/O
 * support, beside core/tls).
 *
 * wolfSSL 5.5 (Debian 12) encrypts AES-GCM one block per AES-NI instruction;
 * core/aesgcm does two per VAES instruction and is ~2-3x faster on the CPUs
 * that have VAES (bench/bench_aesgcm.c). wolfSSL lets a "crypto device" take
 * over any algorithm: tls_gcm_dev_id() registers one that takes AES-GCM with
 * 96-bit IVs (every TLS 1.2 and 1.3 GCM suite) and hands everything else back
 * to wolfSSL's own code (CRYPTOCB_UNAVAILABLE). core/tls gives the device to
 * every context it makes (wolfSSL_CTX_SetDevId), so the sessions of sluice and
 * of the tools use it.
 *
 * The device keeps, per thread, a small cache of expanded keys (round keys and
 * powers of H: ~1.6 KiB, too costly to rebuild for every record), keyed by
 * wolfSSL's Aes object and checked against its raw key. A key is wiped when
 * its slot is reused and when the thread calls tls_gcm_thread_done().
 */
#ifndef SLUICE_CORE_TLS_GCM_H
#define SLUICE_CORE_TLS_GCM_H

#include <stdbool.h>

/*
 * The wolfSSL device id of the AES-GCM device, registered on first use; or
 * -2 (wolfSSL's INVALID_DEVID: no device) when this CPU lacks VAES or the
 * environment says SLUICE_AESGCM=wolfssl (benchmarks compare the two). Call
 * after wolfSSL_Init(), from one thread (context set-up, like tls.h's
 * *_ctx_new functions).
 */
int tls_gcm_dev_id(void);

/* Records this thread has sealed or opened through the device (tests). */
unsigned long tls_gcm_records(void);

/* Wipe and free this thread's key cache (a thread's exit path; safe to call
 * when the thread never used the device). */
void tls_gcm_thread_done(void);

#endif /* SLUICE_CORE_TLS_GCM_H */
