/*
 * aesgcm.h -- AES-GCM (NIST SP 800-38D) on VAES and VPCLMULQDQ, for TLS
 * records (level 0: pure computation, no I/O, no shard).
 *
 * AES-128, AES-192 and AES-256 with 96-bit IVs and tags of 12 to 16 bytes.
 * The code uses 256-bit (ymm) VAES and VPCLMULQDQ, two AES blocks per
 * instruction: counter mode over 16 blocks at a time, GHASH aggregated over
 * 32 blocks with H^1..H^32 and one reduction, the two interleaved in one
 * loop (see aesgcm.c). Zen 4 runs the 256-bit forms at the same throughput
 * as AVX-512's 512-bit ones, and the ymm code also runs on Zen 3 and on
 * Intel from Ice Lake on, so AVX-512 was rejected.
 *
 * Only CPUs that aesgcm_available() accepts may run aesgcm_key_init(),
 * aesgcm_seal() and aesgcm_open(); the caller keeps another implementation
 * (wolfSSL's) for the rest. On other architectures aesgcm_available() is
 * false and the other functions are never to be called (BUG_ON).
 *
 * Threads: a struct aesgcm_key is written by aesgcm_key_init() and only read
 * afterwards, so once initialised it may be shared by any number of threads.
 * Every function is constant time with respect to the key, the data and the
 * tag (no table lookups, no data-dependent branches); lengths are public.
 */
#ifndef SLUICE_CORE_AESGCM_H
#define SLUICE_CORE_AESGCM_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/check.h"

#define AESGCM_IV_LEN	  12		      /* the only IV length: J0 = IV || 0^31 || 1 */
#define AESGCM_TAG_MIN	  12		      /* shortest tag accepted (SP 800-38D 5.2.1.2) */
#define AESGCM_TAG_MAX	  16		      /* a full tag */
#define AESGCM_ROUNDS_MAX 14		      /* AES-256 */
#define AESGCM_TEXT_MAX	  ((1ull << 36) - 32) /* bytes per message (SP 800-38D 5.2.1.1) */
#define AESGCM_TAIL_MAX	  16		      /* aesgcm_seal_tail(): bytes after the text */
#define AESGCM_HPOW	  32		      /* powers of H kept: blocks per reduction, even */

/*
 * An expanded key: round keys and the powers of H. Opaque to callers; the
 * layout serves the vector code. 1568 bytes, _Alignof 32: embed it, or
 * allocate it with aligned_alloc(32, ...) (plain malloc() promises 16).
 * Holds secrets: wipe it with aesgcm_key_fini(). Setting one up costs about
 * 150 ns (key expansion, 32 powers of H), so cache it per key rather than
 * per record.
 */
struct aesgcm_key {
	/* round keys, each 16 bytes stored twice so that one 32-byte load feeds both
	   lanes of a ymm register; rk[0..rounds] are valid */
	alignas(32) uint8_t rk[AESGCM_ROUNDS_MAX + 1][32];
	/* hpow[i] = H^(AESGCM_HPOW - i) times x^-1, byte-reversed for PCLMULQDQ (see
	   aesgcm.c); hpow[AESGCM_HPOW] is zero padding for odd block counts */
	alignas(32) uint8_t hpow[AESGCM_HPOW + 1][16];
	/* hfold[i]: the two 64-bit halves of hpow[i] XORed, stored in both halves
	   (Karatsuba's middle factor); hfold[AESGCM_HPOW] is zero */
	alignas(32) uint8_t hfold[AESGCM_HPOW + 1][16];
	unsigned rounds; /* 10, 12 or 14 */
};

/*
 * True if this CPU has AVX2, AES-NI, PCLMULQDQ, VAES and VPCLMULQDQ and the
 * kernel saves the ymm registers. Cheap after the first call (the answer is
 * cached); any thread may call it.
 */
bool aesgcm_available(void);

/*
 * Expand key[0..keylen) (16, 24 or 32 bytes) into k. Returns 0, or -EINVAL
 * for another length (k is then left zeroed). Precondition:
 * aesgcm_available().
 */
MUST_CHECK int aesgcm_key_init(struct aesgcm_key *k, const uint8_t *key, size_t keylen);

/* Wipe k (explicit_bzero). k may be initialised again afterwards. */
void aesgcm_key_fini(struct aesgcm_key *k);

/*
 * Encrypt in[0..n) into out[0..n) and write the first taglen bytes of the
 * tag to tag[0..taglen). in == out is allowed, other overlaps are not; no
 * buffer needs any alignment; n and aadlen may be 0 (in, out and aad may then
 * be NULL). taglen must lie in [AESGCM_TAG_MIN, AESGCM_TAG_MAX] and n must
 * not pass AESGCM_TEXT_MAX (both programmer faults: BUG_ON). Never reuse an
 * IV with the same key.
 */
void aesgcm_seal(const struct aesgcm_key *k, const uint8_t iv[AESGCM_IV_LEN], const uint8_t *aad,
		 size_t aadlen, const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag,
		 size_t taglen);

/*
 * aesgcm_seal() of in[0..n) followed by tail[0..tailn), tailn <=
 * AESGCM_TAIL_MAX, into out[0..n + tailn): a TLS 1.3 record seals its text
 * followed by its content type (RFC 8446 5.2), and this seals the text where
 * it lies instead of copying it next to the type. tail may be NULL when
 * tailn is 0. in == out is allowed, other overlaps are not.
 */
void aesgcm_seal_tail(const struct aesgcm_key *k, const uint8_t iv[AESGCM_IV_LEN],
		      const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t n,
		      const uint8_t *tail, size_t tailn, uint8_t *out, uint8_t *tag, size_t taglen);

/*
 * Decrypt in[0..n) into out[0..n) and check the tag[0..taglen) against the
 * first taglen bytes of the computed tag, in constant time. Returns 0, or
 * -EBADMSG if the tag does not match; out[0..n) is then all zeros (the
 * plaintext is never left behind, even in place). Same buffer and length
 * rules as aesgcm_seal().
 */
MUST_CHECK int aesgcm_open(const struct aesgcm_key *k, const uint8_t iv[AESGCM_IV_LEN],
			   const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t n,
			   uint8_t *out, const uint8_t *tag, size_t taglen);

#endif /* SLUICE_CORE_AESGCM_H */
