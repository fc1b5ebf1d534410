/*
 * aesgcm.c -- AES-GCM on VAES and VPCLMULQDQ (see aesgcm.h).
 *
 * Written from NIST SP 800-38D (GCM), FIPS-197 (AES) and Intel's intrinsics
 * guide. The work:
 *
 *   - AES: the key schedule follows FIPS-197 5.2 word by word, with SubWord
 *     done by AESENCLAST on a broadcast word (ShiftRows is then a no-op), so
 *     one routine serves 128-, 192- and 256-bit keys without an S-box table.
 *     Round keys are stored twice, one copy per 128-bit lane.
 *   - CTR: a chunk is 16 blocks in 8 ymm registers, so 8 independent
 *     VAESENC chains cover the instruction's latency (4 cycles, 2 per cycle).
 *   - GHASH: blocks are byte-reversed on load, so a GCM block becomes a
 *     128-bit integer whose bit 127 is the coefficient of x^0. In that
 *     "reflected" form a carry-less product comes out multiplied by x^-1,
 *     and the reduction is a Montgomery reduction by x^-128 done 64 bits at a
 *     time with two PCLMULQDQs. Both offsets are paid at key setup: the key
 *     holds each power of H times x^-1. Blocks are multiplied by H^32..H^1
 *     (Karatsuba: 3 VPCLMULQDQs per two blocks), summed unreduced over two
 *     chunks and reduced once.
 *   - The main loop hashes a chunk during the AES rounds of a chunk, one
 *     pair of blocks per round: sealing hashes the previous chunk's
 *     ciphertext (just written), opening the current one (just read).
 *   - Short messages (TLS records of a few dozen bytes) and the tails of
 *     long ones go through zero-padded stack buffers, which are wiped, with
 *     one AES batch and one GHASH pass over whatever is left.
 *
 * Measured on Zen 4 (bench/bench_aesgcm.c): VPCLMULQDQ issues once per two
 * cycles and shares pipes with VAESENC, so GHASH, not AES, sets the pace;
 * hence Karatsuba, the 32-block reduction and the reduction by PCLMULQDQ
 * (the shift-and-XOR version was 10% slower: more ops on the same pipes).
 *
 * Rejected: AVX-512 (same throughput on Zen 4, fewer CPUs), 4-bit GHASH
 * tables (secret-dependent lookups), hashing in a second pass after the
 * decryption (twice the loads for a 16 KiB record).
 */
#include "core/aesgcm.h"

#include <errno.h>
#include <string.h>

#include "core/check.h"

void
aesgcm_key_fini(struct aesgcm_key *k)
{
	explicit_bzero(k, sizeof(*k));
}

#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

#define AESGCM_TARGET __attribute__((target("avx2,aes,pclmul,vaes,vpclmulqdq")))
/* the step functions are instantiated per round count, so they must inline */
#define AESGCM_INLINE static inline __attribute__((always_inline)) AESGCM_TARGET

#define CHUNK 256 /* bytes per main-loop step: 16 blocks, AESGCM_HPOW */
#define PAIRS 8	  /* ymm registers per chunk, two blocks each */
/* seal_chunks() prefetches its input this far ahead (4 KiB): a record sealed
 * straight from a 25 MiB spool (core/tls) reads memory no cache holds, and
 * the AES rounds leave the hardware prefetcher behind; with it sluice spent
 * ~10 % less CPU forwarding 25 MiB over TLS (bench 4b, 16 vs 8, 32, 64) */
#define PREFETCH_CHUNKS 16
#define SHORT_TEXT	(CHUNK - 16) /* gcm_short(): J0 and the text in one batch of 16 blocks */
#define SHORT_AAD	64	     /* gcm_short(): AAD blocks + 16 stay within AESGCM_HPOW */

/* ---------------------------------------------------------------- CPU check */

/* Leaf 7 ECX bits, named here: older <cpuid.h> lacks them. */
#define CPUID7_ECX_VAES	      (1u << 9)
#define CPUID7_ECX_VPCLMULQDQ (1u << 10)
#define XCR0_SSE_AVX	      0x6u /* XMM and YMM state saved by the kernel */

/* CPUID by hand rather than __builtin_cpu_supports() as route/ does for AVX2: clang 14
 * (the fuzz build) does not know "vaes" or "vpclmulqdq" there. */
static bool
cpu_probe(void)
{
	unsigned a, b, c, d, lo, hi;
	const unsigned leaf1 = bit_AES | bit_PCLMUL | bit_OSXSAVE | bit_AVX;

	if (!__get_cpuid(1, &a, &b, &c, &d) || (c & leaf1) != leaf1)
		return false;
	/* OSXSAVE says XGETBV exists; XCR0 says whether ymm survives a context switch */
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	if ((lo & XCR0_SSE_AVX) != XCR0_SSE_AVX)
		return false;
	if (__get_cpuid_max(0, NULL) < 7)
		return false;
	__cpuid_count(7, 0, a, b, c, d);
	return (b & bit_AVX2) && (c & CPUID7_ECX_VAES) && (c & CPUID7_ECX_VPCLMULQDQ);
}

bool
aesgcm_available(void)
{
	/* A write-once cache of a hardware fact, the one exception to "no mutable
	 * globals": CPUID traps to the hypervisor on VMs (microseconds). Threads
	 * racing here all store the same value. 0 unknown, 1 no, 2 yes. */
	static int cached;
	int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);

	if (v == 0) {
		v = cpu_probe() ? 2 : 1;
		__atomic_store_n(&cached, v, __ATOMIC_RELAXED);
	}
	return v == 2;
}

/* ---------------------------------------------------------------- helpers */

/* Reverse the bytes of each 128-bit lane: GCM block <-> reflected integer. */
AESGCM_INLINE __m256i
bswap256(__m256i v)
{
	const __m256i rev = _mm256_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0,
					    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

	return _mm256_shuffle_epi8(v, rev);
}

AESGCM_INLINE __m128i
bswap128(__m128i v)
{
	const __m128i rev = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

	return _mm_shuffle_epi8(v, rev);
}

AESGCM_INLINE __m256i
loadu256(const uint8_t *p)
{
	return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

AESGCM_INLINE void
storeu256(uint8_t *p, __m256i v)
{
	_mm256_storeu_si256((__m256i *)(void *)p, v);
}

/*
 * Zero p[0..n), n a multiple of 32 and p aligned on 32: a few vector stores,
 * where memset's rep stosb start-up costs more than a short record's AES.
 */
AESGCM_INLINE void
zero32(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 32)
		_mm256_store_si256((__m256i *)(void *)(p + i), _mm256_setzero_si256());
}

/* zero32() for secrets after their last use; the barrier keeps the stores. */
AESGCM_INLINE void
wipe32(uint8_t *p, size_t n)
{
	zero32(p, n);
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* Blocks of 16 bytes that hold n bytes. */
static inline unsigned
blocks(size_t n)
{
	return (unsigned)((n + 15) / 16);
}

/* Round key r in both lanes. */
AESGCM_INLINE __m256i
round_key(const struct aesgcm_key *k, unsigned r)
{
	return loadu256(k->rk[r]);
}

/* hpow[i] and hpow[i + 1], one per lane. */
AESGCM_INLINE __m256i
hpow_pair(const struct aesgcm_key *k, unsigned i)
{
	return loadu256(k->hpow[i]);
}

/* One block through AES (J0 for the tag, 0^128 for H). */
AESGCM_INLINE __m128i
aes_block(const struct aesgcm_key *k, __m128i s)
{
	s = _mm_xor_si128(s, _mm_loadu_si128((const __m128i *)(const void *)k->rk[0]));
	for (unsigned r = 1; r < k->rounds; r++)
		s = _mm_aesenc_si128(s, _mm_loadu_si128((const __m128i *)(const void *)k->rk[r]));
	return _mm_aesenclast_si128(
	    s, _mm_loadu_si128((const __m128i *)(const void *)k->rk[k->rounds]));
}

/* ---------------------------------------------------------------- GHASH */

/*
 * The reduction constant. In the reflected form a polynomial a(x) of degree
 * < 128 is the integer sum a_i 2^(127-i), which reads as a polynomial in
 * y = x^-1 scaled by x^127. The GCM polynomial x^128 + x^7 + x^2 + x + 1
 * becomes Q(y) = y^128 + y^127 + y^126 + y^121 + 1, and Q - y^128 - 1 =
 * y^64 * (y^63 + y^62 + y^57): that last factor is this constant.
 */
#define GH_K 0xc200000000000000ull

/*
 * v, hidden from the optimiser. GCC's reassociation otherwise turns each
 * running sum into "keep every product, add them up at the end", which
 * needs more than 16 ymm registers and spills them all.
 */
AESGCM_INLINE __m256i
opaque(__m256i v)
{
	__asm__("" : "+x"(v));
	return v;
}

/* Unreduced sums of 256-bit products, two lanes each: lo + mid * 2^64 + hi * 2^128. */
struct gh_acc {
	__m256i lo, mid, hi;
};

AESGCM_INLINE void
gh_acc_init(struct gh_acc *a)
{
	a->lo = a->mid = a->hi = _mm256_setzero_si256();
}

/*
 * a += x * h, lane by lane, Karatsuba: lo = x0 h0, hi = x1 h1 and
 * (x0 + x1)(h0 + h1), whose excess lo + hi gh_acc_finish() removes once for
 * the whole sum. hf is h's folded halves (struct aesgcm_key.hfold). Three
 * VPCLMULQDQs instead of four matter: it issues once per two cycles on Zen 4,
 * which makes GHASH, not AES, the bottleneck.
 */
AESGCM_INLINE void
gh_mul_add(struct gh_acc *a, __m256i x, __m256i h, __m256i hf)
{
	__m256i xf = _mm256_xor_si256(x, _mm256_shuffle_epi32(x, 0x4e));

	a->lo = opaque(_mm256_xor_si256(a->lo, _mm256_clmulepi64_epi128(x, h, 0x00)));
	a->hi = opaque(_mm256_xor_si256(a->hi, _mm256_clmulepi64_epi128(x, h, 0x11)));
	a->mid = opaque(_mm256_xor_si256(a->mid, _mm256_clmulepi64_epi128(xf, hf, 0x00)));
}

/*
 * Montgomery reduction: (hi:lo) * y^-128 mod Q, with lo = c1:c0 and
 * hi = c3:c2 in 64-bit words. Step one adds c0 * Q = c0 + c0 K y^64 +
 * c0 y^128, which clears c0 (Q is 1 mod y^64); step two adds c1' * Q * y^64
 * for the new c1, which clears c1. The high half is left: the result. Each
 * step is a PCLMULQDQ by GH_K, a swap of the 64-bit halves and XORs.
 */
AESGCM_INLINE __m128i
gh_reduce(__m128i lo, __m128i hi)
{
	const __m128i k = _mm_set_epi64x(0, (long long)GH_K);
	__m128i t;

	t = _mm_clmulepi64_si128(lo, k, 0x00);
	lo = _mm_xor_si128(t, _mm_shuffle_epi32(lo, 0x4e));
	t = _mm_clmulepi64_si128(lo, k, 0x00);
	lo = _mm_xor_si128(t, _mm_shuffle_epi32(lo, 0x4e));
	return _mm_xor_si128(hi, lo);
}

/* Y from a: Karatsuba's correction, the middle term folded in, both lanes summed, reduced. */
AESGCM_INLINE __m128i
gh_acc_finish(const struct gh_acc *a)
{
	__m256i mid = _mm256_xor_si256(a->mid, _mm256_xor_si256(a->lo, a->hi));
	__m256i lo = _mm256_xor_si256(a->lo, _mm256_bslli_epi128(mid, 8));
	__m256i hi = _mm256_xor_si256(a->hi, _mm256_bsrli_epi128(mid, 8));

	return gh_reduce(
	    _mm_xor_si128(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1)),
	    _mm_xor_si128(_mm256_castsi256_si128(hi), _mm256_extracti128_si256(hi, 1)));
}

/* a * b * y^-128 mod Q: the field product when b is a stored (shifted) power. */
AESGCM_INLINE __m128i
gh_mul(__m128i a, __m128i b)
{
	__m128i lo = _mm_clmulepi64_si128(a, b, 0x00);
	__m128i hi = _mm_clmulepi64_si128(a, b, 0x11);
	__m128i mid =
	    _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01), _mm_clmulepi64_si128(a, b, 0x10));

	lo = _mm_xor_si128(lo, _mm_slli_si128(mid, 8));
	hi = _mm_xor_si128(hi, _mm_srli_si128(mid, 8));
	return gh_reduce(lo, hi);
}

/* hfold[i] and hfold[i + 1], as hpow_pair(). */
AESGCM_INLINE __m256i
hfold_pair(const struct aesgcm_key *k, unsigned i)
{
	return loadu256(k->hfold[i]);
}

/*
 * GHASH runs in groups of two chunks (32 blocks, H^32..H^1) with one
 * reduction per group; a lone chunk (odd counts, the AAD) is a group of its
 * own with H^16..H^1.
 */
enum gh_part {
	GH_ONLY,   /* a group of one chunk: Y in, H^16..H^1, reduce */
	GH_FIRST,  /* first of two: Y in, H^32..H^17, the sum stays open */
	GH_SECOND, /* second of two: H^16..H^1, reduce */
};

/*
 * Pair i (blocks 2i, 2i + 1) of a chunk at p, multiplied by its powers of H
 * for part and added to a; pair 0 of a group's first chunk takes Y in.
 */
AESGCM_INLINE void
gh_pair(const struct aesgcm_key *k, struct gh_acc *a, __m128i y, const uint8_t *p, unsigned i,
	enum gh_part part)
{
	__m256i x = bswap256(loadu256(p + 32 * i));
	unsigned at = (part == GH_FIRST ? 0 : 2 * PAIRS) + 2 * i;

	if (i == 0 && part != GH_SECOND)
		x = _mm256_xor_si256(x, _mm256_zextsi128_si256(y));
	gh_mul_add(a, x, hpow_pair(k, at), hfold_pair(k, at));
}

/* GHASH of the chunk at p within its group, no AES beside it; Y once part closes the group. */
AESGCM_INLINE __m128i
ghash_chunk_part(const struct aesgcm_key *k, struct gh_acc *a, __m128i y, const uint8_t *p,
		 enum gh_part part)
{
	if (part != GH_SECOND)
		gh_acc_init(a);
#pragma GCC unroll 8
	for (unsigned i = 0; i < PAIRS; i++)
		gh_pair(k, a, y, p, i, part);
	return part == GH_FIRST ? y : gh_acc_finish(a);
}

/* Y = (Y + X0) H^16 + X1 H^15 + ... + X15 H: one chunk at p, no AES beside it. */
AESGCM_INLINE __m128i
ghash_chunk(const struct aesgcm_key *k, __m128i y, const uint8_t *p)
{
	struct gh_acc a;

	return ghash_chunk_part(k, &a, y, p, GH_ONLY);
}

/*
 * Y after the m blocks (1..AESGCM_HPOW) at buf, zero-padded to an even
 * count: block j is multiplied by H^(m-j), that is hpow[HPOW - m + j]. With
 * m odd the last pair reads the zero padding and hpow[HPOW], so its upper
 * lane adds nothing. One reduction for all of them.
 */
static AESGCM_TARGET __m128i
ghash_blocks(const struct aesgcm_key *k, __m128i y, const uint8_t *buf, unsigned m)
{
	struct gh_acc a;

	gh_acc_init(&a);
	for (unsigned i = 0; 2 * i < m; i++) {
		__m256i x = bswap256(loadu256(buf + 32 * i));
		__m256i h = loadu256(k->hpow[AESGCM_HPOW - m + 2 * i]);
		__m256i hf = loadu256(k->hfold[AESGCM_HPOW - m + 2 * i]);

		if (i == 0)
			x = _mm256_xor_si256(x, _mm256_zextsi128_si256(y));
		gh_mul_add(&a, x, h, hf);
	}
	return gh_acc_finish(&a);
}

/* Y after hashing p[0..n), the last block zero-padded (the AAD). */
static AESGCM_TARGET __m128i
ghash_bytes(const struct aesgcm_key *k, __m128i y, const uint8_t *p, size_t n)
{
	alignas(32) uint8_t buf[CHUNK];

	for (; n >= CHUNK; p += CHUNK, n -= CHUNK)
		y = ghash_chunk(k, y, p);
	if (n > 0) {
		zero32(buf, 32 * ((blocks(n) + 1) / 2));
		memcpy(buf, p, n);
		y = ghash_blocks(k, y, buf, blocks(n));
	}
	return y;
}

/* ---------------------------------------------------------------- key setup */

/* FIPS-197 SubWord: AESENCLAST with a zero key on four equal columns. */
static AESGCM_TARGET uint32_t
sub_word(uint32_t w)
{
	__m128i s = _mm_aesenclast_si128(_mm_set1_epi32((int)w), _mm_setzero_si128());

	return (uint32_t)_mm_cvtsi128_si32(s);
}

/*
 * FIPS-197 5.2 KeyExpansion. Words hold their four bytes in memory order
 * (byte 0 in the low bits), so RotWord is a rotation right by 8 and Rcon
 * goes into the low byte.
 */
static AESGCM_TARGET void
expand_key(struct aesgcm_key *k, const uint8_t *key, unsigned nk)
{
	uint32_t w[4 * (AESGCM_ROUNDS_MAX + 1)];
	unsigned total = 4 * (k->rounds + 1);
	uint32_t rcon = 1;

	memcpy(w, key, 4 * nk);
	/* j = i mod nk, counted: a division per word cost more than the rest */
	for (unsigned i = nk, j = 0; i < total; i++, j = j + 1 == nk ? 0 : j + 1) {
		uint32_t t = w[i - 1];

		if (j == 0) {
			t = sub_word((t >> 8) | (t << 24)) ^ rcon;
			rcon =
			    ((rcon << 1) ^ ((rcon >> 7) * 0x1b)) & 0xff; /* xtime; public values */
		} else if (nk > 6 && j == 4) {
			t = sub_word(t);
		}
		w[i] = w[i - nk] ^ t;
	}
	for (unsigned r = 0; r <= k->rounds; r++) {
		memcpy(k->rk[r], &w[4 * r], 16);
		memcpy(k->rk[r] + 16, &w[4 * r], 16);
	}
	explicit_bzero(w, sizeof(w));
}

/* h * y in the reflected form (the field's h * x^-1): shift left, reduce by Q. */
static AESGCM_TARGET __m128i
mul_y(__m128i h)
{
	uint64_t lo = (uint64_t)_mm_cvtsi128_si64(h);
	uint64_t hi = (uint64_t)_mm_extract_epi64(h, 1);
	uint64_t mask = 0 - (hi >> 63); /* y^128 = y^127 + y^126 + y^121 + 1 */

	hi = (hi << 1) | (lo >> 63);
	lo <<= 1;
	return _mm_set_epi64x((long long)(hi ^ (mask & GH_K)), (long long)(lo ^ (mask & 1)));
}

/* gh_mul() in both lanes. */
AESGCM_INLINE __m256i
gh_mul2(__m256i a, __m256i b)
{
	const __m256i k = _mm256_set_epi64x(0, (long long)GH_K, 0, (long long)GH_K);
	__m256i lo = _mm256_clmulepi64_epi128(a, b, 0x00);
	__m256i hi = _mm256_clmulepi64_epi128(a, b, 0x11);
	__m256i mid = _mm256_xor_si256(_mm256_clmulepi64_epi128(a, b, 0x01),
				       _mm256_clmulepi64_epi128(a, b, 0x10));
	__m256i t;

	lo = _mm256_xor_si256(lo, _mm256_bslli_epi128(mid, 8));
	hi = _mm256_xor_si256(hi, _mm256_bsrli_epi128(mid, 8));
	/* gh_reduce(), lane by lane */
	t = _mm256_clmulepi64_epi128(lo, k, 0x00);
	lo = _mm256_xor_si256(t, _mm256_shuffle_epi32(lo, 0x4e));
	t = _mm256_clmulepi64_epi128(lo, k, 0x00);
	lo = _mm256_xor_si256(t, _mm256_shuffle_epi32(lo, 0x4e));
	return _mm256_xor_si256(hi, lo);
}

/*
 * H = AES_K(0^128), then hpow[HPOW - i] = P_i = H^i * x^-1 for i = 1..HPOW
 * and their folds. gh_mul(P_i, P_j) = P_(i+j), so the powers double up
 * (P_1..P_2n times P_2n gives P_2n+1..P_4n), two per ymm: 5 dependent
 * steps instead of 31, which keeps key setup cheap.
 */
static AESGCM_TARGET void
init_hpow(struct aesgcm_key *k)
{
	__m128i h1 = mul_y(bswap128(aes_block(k, _mm_setzero_si128())));
	__m256i p[AESGCM_HPOW / 2]; /* p[i] = P_2i+1 (lane 0), P_2i+2 (lane 1) */

	p[0] = _mm256_set_m128i(gh_mul(h1, h1), h1);
	for (unsigned n = 1; n < AESGCM_HPOW / 2; n *= 2) {
		__m256i top = _mm256_permute4x64_epi64(p[n - 1], 0xee); /* P_2n, both lanes */

		for (unsigned i = 0; i < n; i++)
			p[n + i] = gh_mul2(p[i], top);
	}
	for (unsigned i = 0; i < AESGCM_HPOW / 2; i++) {
		/* hpow[HPOW - 2i - 2] = P_2i+2, hpow[HPOW - 2i - 1] = P_2i+1: lanes swapped */
		__m256i v = _mm256_permute4x64_epi64(p[i], 0x4e);

		storeu256(k->hpow[AESGCM_HPOW - 2 * i - 2], v);
		storeu256(k->hfold[AESGCM_HPOW - 2 * i - 2],
			  _mm256_xor_si256(v, _mm256_shuffle_epi32(v, 0x4e)));
	}
	memset(k->hpow[AESGCM_HPOW], 0, 16);
	memset(k->hfold[AESGCM_HPOW], 0, 16);
}

int
aesgcm_key_init(struct aesgcm_key *k, const uint8_t *key, size_t keylen)
{
	memset(k, 0, sizeof(*k));
	if (keylen != 16 && keylen != 24 && keylen != 32)
		return -EINVAL;
	k->rounds = (unsigned)keylen / 4 + 6;
	expand_key(k, key, (unsigned)keylen / 4);
	init_hpow(k);
	return 0;
}

/* ---------------------------------------------------------------- CTR + GHASH */

/*
 * Counters live byte-reversed (as GHASH blocks do), which puts the 32-bit
 * big-endian block counter of SP 800-38D's inc32 into the low dword of each
 * lane, where VPADDD can count; it wraps mod 2^32 as inc32 does. ctr holds
 * blocks n (lane 0) and n + 1 (lane 1).
 */
AESGCM_INLINE __m256i
ctr_add(__m256i ctr, int d)
{
	return _mm256_add_epi32(ctr, _mm256_set_epi32(0, 0, 0, d, 0, 0, 0, d));
}

/*
 * The first round of the next 16 counter blocks; advances ctr by 16. While
 * the low byte of the counter does not wrap within the chunk (15 chunks in
 * 16), the blocks are made in memory order by adding to the last byte only:
 * one byte swap per chunk instead of one per register. The counter is
 * public, so the branch leaks nothing.
 */
AESGCM_INLINE void
ctr_begin(const struct aesgcm_key *k, __m256i *ctr, __m256i s[PAIRS])
{
	__m256i k0 = round_key(k, 0);

	if ((_mm256_cvtsi256_si32(*ctr) & 0xff) <= 256 - 2 * PAIRS) {
		__m256i be = bswap256(*ctr);

#pragma GCC unroll 8
		for (int i = 0; i < PAIRS; i++) {
			__m256i d = _mm256_set_epi32(2 * i << 24, 0, 0, 0, 2 * i << 24, 0, 0, 0);

			s[i] = _mm256_xor_si256(_mm256_add_epi32(be, d), k0);
		}
	} else {
#pragma GCC unroll 8
		for (int i = 0; i < PAIRS; i++)
			s[i] = _mm256_xor_si256(bswap256(ctr_add(*ctr, 2 * i)), k0);
	}
	*ctr = ctr_add(*ctr, 2 * PAIRS);
}

AESGCM_INLINE void
aes_round(__m256i s[PAIRS], __m256i rk)
{
#pragma GCC unroll 8
	for (int i = 0; i < PAIRS; i++)
		s[i] = _mm256_aesenc_epi128(s[i], rk);
}

AESGCM_INLINE void
aes_last(__m256i s[PAIRS], __m256i rk)
{
#pragma GCC unroll 8
	for (int i = 0; i < PAIRS; i++)
		s[i] = _mm256_aesenclast_epi128(s[i], rk);
}

/*
 * One chunk: out = in ^ keystream, and, if hash (a constant), the GHASH of
 * the chunk at hsrc as part of its group (*a the group's sum, *y the running
 * hash, updated when part closes the group). Each GHASH pair is loaded,
 * multiplied and added during one AES round, the pair that takes Y first:
 * the oldest VPCLMULQDQs win the busy unit, and the chain from Y to Y is the
 * longest one. All hsrc loads come before the stores to out, so hsrc == in
 * == out (opening in place) is fine. rounds and part are constants after
 * inlining, so the rounds unroll and schedule freely.
 */
AESGCM_INLINE void
crypt_chunk(const struct aesgcm_key *k, unsigned rounds, __m256i *ctr, struct gh_acc *a, __m128i *y,
	    bool hash, enum gh_part part, const uint8_t *hsrc, const uint8_t *in, uint8_t *out)
{
	__m256i s[PAIRS];

	if (hash && part != GH_SECOND)
		gh_acc_init(a);
	ctr_begin(k, ctr, s);
#pragma GCC unroll 16
	for (unsigned r = 1; r < rounds; r++) {
		aes_round(s, round_key(k, r));
		if (hash && r <= PAIRS)
			gh_pair(k, a, *y, hsrc, r - 1, part);
	}
	aes_last(s, round_key(k, rounds));
	if (hash && part != GH_FIRST)
		*y = gh_acc_finish(a);
#pragma GCC unroll 8
	for (int i = 0; i < PAIRS; i++)
		storeu256(out + 32 * i, _mm256_xor_si256(s[i], loadu256(in + 32 * i)));
}

/*
 * nchunks chunks, sealing. The ciphertext of chunk c is hashed during
 * chunk c + 1 (it does not exist earlier), the last one after the loop.
 * Locals, not *ctrp and *yp, carry the state: out may alias those, which
 * would force a store and a reload per chunk.
 */
AESGCM_INLINE void
seal_chunks(const struct aesgcm_key *k, unsigned rounds, __m256i *ctrp, __m128i *yp,
	    const uint8_t *in, uint8_t *out, size_t nchunks)
{
	__m256i ctr = *ctrp;
	__m128i y = *yp;
	struct gh_acc a;
	size_t c;

	crypt_chunk(k, rounds, &ctr, &a, &y, false, GH_ONLY, NULL, in, out);
	for (c = 1; c + 1 < nchunks; c += 2) {
		for (int l = 0; l < 2 * CHUNK; l += 64)
			_mm_prefetch((const char *)in + (c + PREFETCH_CHUNKS) * CHUNK + l,
				     _MM_HINT_T0);
		crypt_chunk(k, rounds, &ctr, &a, &y, true, GH_FIRST, out + (c - 1) * CHUNK,
			    in + c * CHUNK, out + c * CHUNK);
		crypt_chunk(k, rounds, &ctr, &a, &y, true, GH_SECOND, out + c * CHUNK,
			    in + (c + 1) * CHUNK, out + (c + 1) * CHUNK);
	}
	/* encrypted: chunks 0..c-1 with c = nchunks or nchunks - 1; hashed: 0..c-2 */
	if (c < nchunks) {
		crypt_chunk(k, rounds, &ctr, &a, &y, true, GH_FIRST, out + (c - 1) * CHUNK,
			    in + c * CHUNK, out + c * CHUNK);
		y = ghash_chunk_part(k, &a, y, out + c * CHUNK, GH_SECOND);
	} else {
		y = ghash_chunk_part(k, &a, y, out + (c - 1) * CHUNK, GH_ONLY);
	}
	*yp = y;
	*ctrp = ctr;
}

/* nchunks chunks, opening: each chunk's ciphertext is hashed as it is read. */
AESGCM_INLINE void
open_chunks(const struct aesgcm_key *k, unsigned rounds, __m256i *ctrp, __m128i *yp,
	    const uint8_t *in, uint8_t *out, size_t nchunks)
{
	__m256i ctr = *ctrp;
	__m128i y = *yp;
	struct gh_acc a;
	size_t c;

	for (c = 0; c + 1 < nchunks; c += 2) {
		crypt_chunk(k, rounds, &ctr, &a, &y, true, GH_FIRST, in + c * CHUNK, in + c * CHUNK,
			    out + c * CHUNK);
		crypt_chunk(k, rounds, &ctr, &a, &y, true, GH_SECOND, in + (c + 1) * CHUNK,
			    in + (c + 1) * CHUNK, out + (c + 1) * CHUNK);
	}
	if (c < nchunks)
		crypt_chunk(k, rounds, &ctr, &a, &y, true, GH_ONLY, in + c * CHUNK, in + c * CHUNK,
			    out + c * CHUNK);
	*yp = y;
	*ctrp = ctr;
}

/* One instance per round count and direction, so that each is fully unrolled. */
#define DEFINE_BULK(name, fn, rounds)                                                              \
	static AESGCM_TARGET void name(const struct aesgcm_key *k, __m256i *ctr, __m128i *y,       \
				       const uint8_t *in, uint8_t *out, size_t nchunks)            \
	{                                                                                          \
		fn(k, rounds, ctr, y, in, out, nchunks);                                           \
	}
DEFINE_BULK(seal_chunks_10, seal_chunks, 10)
DEFINE_BULK(seal_chunks_12, seal_chunks, 12)
DEFINE_BULK(seal_chunks_14, seal_chunks, 14)
DEFINE_BULK(open_chunks_10, open_chunks, 10)
DEFINE_BULK(open_chunks_12, open_chunks, 12)
DEFINE_BULK(open_chunks_14, open_chunks, 14)

typedef void bulk_fn(const struct aesgcm_key *k, __m256i *ctr, __m128i *y, const uint8_t *in,
		     uint8_t *out, size_t nchunks);

static bulk_fn *
bulk_for(unsigned rounds, bool seal)
{
	switch (rounds) {
	case 10:
		return seal ? seal_chunks_10 : open_chunks_10;
	case 12:
		return seal ? seal_chunks_12 : open_chunks_12;
	default:
		return seal ? seal_chunks_14 : open_chunks_14;
	}
}

/* buf[0..32 np) ^= the keystream of 2 np counter blocks from ctr; np is a constant. */
AESGCM_INLINE void
keystream_xor(const struct aesgcm_key *k, __m256i ctr, uint8_t *buf, int np)
{
	__m256i s[PAIRS], k0 = round_key(k, 0);

#pragma GCC unroll 8
	for (int i = 0; i < np; i++)
		s[i] = _mm256_xor_si256(bswap256(ctr_add(ctr, 2 * i)), k0);
	for (unsigned r = 1; r < k->rounds; r++) {
		__m256i rk = round_key(k, r);

#pragma GCC unroll 8
		for (int i = 0; i < np; i++)
			s[i] = _mm256_aesenc_epi128(s[i], rk);
	}
#pragma GCC unroll 8
	for (int i = 0; i < np; i++) {
		s[i] = _mm256_aesenclast_epi128(s[i], round_key(k, k->rounds));
		storeu256(buf + 32 * i, _mm256_xor_si256(s[i], loadu256(buf + 32 * i)));
	}
}

/* The length block, [len(A)]64 || [len(C)]64 in bits, stored at p in memory order. */
static AESGCM_TARGET void
put_lengths(uint8_t *p, size_t aadlen, size_t n)
{
	__m128i l = _mm_set_epi64x((long long)(aadlen * 8), (long long)(n * 8));

	_mm_storeu_si128((__m128i *)(void *)p, bswap128(l));
}

/* Bytes of keystream that crypt_blocks() makes for nblocks blocks: 1, 2, 4 or 8 pairs. */
static inline size_t
ks_bytes(unsigned nblocks)
{
	return nblocks <= 2 ? 32 : nblocks <= 4 ? 64 : nblocks <= 8 ? 128 : 256;
}

/*
 * t[0..ks_bytes(nblocks)) ^= keystream from ctr, in as few AES pairs as
 * cover nblocks: TLS carries many records of a few dozen bytes.
 */
static AESGCM_TARGET void
crypt_blocks(const struct aesgcm_key *k, __m256i ctr, uint8_t t[CHUNK], unsigned nblocks)
{
	switch (ks_bytes(nblocks)) {
	case 32:
		keystream_xor(k, ctr, t, 1);
		break;
	case 64:
		keystream_xor(k, ctr, t, 2);
		break;
	case 128:
		keystream_xor(k, ctr, t, 4);
		break;
	default:
		keystream_xor(k, ctr, t, PAIRS);
		break;
	}
}

/*
 * The last n < CHUNK bytes of a long message (n may be 0) and the length
 * block, through zero-padded buffers (partial blocks need no masked loads);
 * the text's blocks and the length block go through one GHASH pass. The
 * ciphertext is copied for GHASH before out is written: in may be out.
 */
static AESGCM_TARGET __m128i
crypt_final(const struct aesgcm_key *k, __m256i ctr, __m128i y, const uint8_t *in, uint8_t *out,
	    size_t n, bool seal, size_t aadlen, size_t total)
{
	alignas(32) uint8_t t[CHUNK], g[CHUNK + 32];
	unsigned nb = blocks(n);

	zero32(g, 32 * ((nb + 2) / 2));
	if (n > 0) {
		size_t used = ks_bytes(nb);

		zero32(t, used);
		memcpy(t, in, n);
		if (!seal)
			memcpy(g, in, n);
		crypt_blocks(k, ctr, t, nb);
		if (seal)
			memcpy(g, t, n);
		memcpy(out, t, n);
		wipe32(t, used); /* plaintext and keystream */
	}
	put_lengths(g + 16 * nb, aadlen, total);
	return ghash_blocks(k, y, g, nb + 1);
}

/*
 * A whole short message (n <= SHORT_TEXT, aadlen <= SHORT_AAD) in one AES
 * batch, J0 included (t[0..16) is a zero block, the text follows), and one
 * GHASH pass over AAD, text and lengths: TLS carries many small records
 * (SMTP replies), where the long path would pay for three reductions and a
 * separate AES of J0.
 */
static AESGCM_TARGET void
gcm_short(const struct aesgcm_key *k, __m256i ctr_j0, const uint8_t *aad, size_t aadlen,
	  const uint8_t *in, size_t n, uint8_t *out, bool seal, uint8_t tag[AESGCM_TAG_MAX])
{
	alignas(32) uint8_t t[CHUNK], g[2 * CHUNK];
	unsigned na = blocks(aadlen), nb = blocks(n), m = na + nb + 1;
	size_t used = ks_bytes(nb + 1);
	__m128i y;

	zero32(t, used);
	zero32(g, 32 * ((m + 1) / 2));
	if (aadlen > 0)
		memcpy(g, aad, aadlen);
	if (n > 0) {
		memcpy(t + 16, in, n);
		memcpy(g + 16 * na, in, n); /* opening hashes this; in may be out */
	}
	crypt_blocks(k, ctr_j0, t, nb + 1); /* t[0..16) becomes E(J0) */
	if (n > 0) {
		if (seal)
			memcpy(g + 16 * na, t + 16, n);
		memcpy(out, t + 16, n);
	}
	put_lengths(g + 16 * (na + nb), aadlen, n);
	y = ghash_blocks(k, _mm_setzero_si128(), g, m);
	y = _mm_xor_si128(bswap128(y), _mm_load_si128((const __m128i *)(const void *)t));
	_mm_storeu_si128((__m128i *)(void *)tag, y);
	wipe32(t, used); /* plaintext, keystream, E(J0) */
}

/* buf = a[0..an) || b[0..bn), an < CHUNK, bn <= AESGCM_TAIL_MAX; returns buf. */
static uint8_t *
join(uint8_t buf[CHUNK + 32], const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	if (an > 0)
		memcpy(buf, a, an);
	memcpy(buf + an, b, bn);
	return buf;
}

/*
 * The whole of GCM-AE (seal) or of GCM-AD before the tag check (open),
 * SP 800-38D 7.1 and 7.2, with a 96-bit IV: J0 = IV || 0^31 || 1, the text
 * counters start at inc32(J0), and the tag is GHASH(A, C, lengths) ^ E(J0).
 */
static AESGCM_TARGET void
gcm_crypt(const struct aesgcm_key *k, const uint8_t iv[AESGCM_IV_LEN], const uint8_t *aad,
	  size_t aadlen, const uint8_t *in, size_t n, const uint8_t *tail, size_t tailn,
	  uint8_t *out, bool seal, uint8_t tag[AESGCM_TAG_MAX])
{
	alignas(32) uint8_t joined[CHUNK + 32];
	__m128i y = _mm_setzero_si128(), j0, t;
	__m256i ctr;
	size_t bulk = n / CHUNK, done = bulk * CHUNK;
	uint32_t iv_hi;

	/* J0 built in a register: a 16-byte load of a block just written in
	   pieces would wait for the stores (no store-to-load forwarding) */
	memcpy(&iv_hi, iv + 8, 4);
	j0 = _mm_insert_epi32(_mm_loadl_epi64((const __m128i *)(const void *)iv), (int)iv_hi, 2);
	j0 = _mm_insert_epi32(j0, 1 << 24, 3); /* the counter, 1 big-endian */
	/* lanes J0, J0 + 1 (reflected, see ctr_add()) */
	ctr = _mm256_broadcastsi128_si256(bswap128(j0));
	ctr = _mm256_add_epi32(ctr, _mm256_set_epi32(0, 0, 0, 1, 0, 0, 0, 0));
	if (n + tailn <= SHORT_TEXT && aadlen <= SHORT_AAD) {
		if (tailn > 0) {
			in = join(joined, in, n, tail, tailn);
			n += tailn;
		}
		gcm_short(k, ctr, aad, aadlen, in, n, out, seal, tag);
		if (tailn > 0)
			wipe32(joined, sizeof(joined)); /* plaintext */
		return;
	}
	ctr = ctr_add(ctr, 1); /* inc32(J0), inc32(J0) + 1 */
	if (aadlen > 0)
		y = ghash_bytes(k, y, aad, aadlen);
	if (bulk > 0)
		bulk_for(k->rounds, seal)(k, &ctr, &y, in, out, bulk);
	if (tailn == 0) {
		y = crypt_final(k, ctr, y, n > done ? in + done : in, n > done ? out + done : out,
				n - done, seal, aadlen, n);
	} else {
		/* the rest of in and the tail, joined: at most one chunk and a final part */
		size_t rest = n - done + tailn, part = rest;
		uint8_t *p = join(joined, in + done, n - done, tail, tailn);

		if (part >= CHUNK) {
			bulk_for(k->rounds, seal)(k, &ctr, &y, p, p, 1);
			p += CHUNK;
			part -= CHUNK;
		}
		y = crypt_final(k, ctr, y, p, p, part, seal, aadlen, n + tailn);
		memcpy(out + done, joined, rest);
		wipe32(joined, sizeof(joined)); /* plaintext */
	}
	t = _mm_xor_si128(bswap128(y), aes_block(k, j0));
	_mm_storeu_si128((__m128i *)(void *)tag, t);
}

#else /* !__x86_64__: no VAES; callers use another implementation */

bool
aesgcm_available(void)
{
	return false;
}

int
aesgcm_key_init(struct aesgcm_key *k, const uint8_t *key, size_t keylen)
{
	(void)key;
	(void)keylen;
	memset(k, 0, sizeof(*k));
	return -EINVAL;
}

static void
gcm_crypt(const struct aesgcm_key *k, const uint8_t iv[AESGCM_IV_LEN], const uint8_t *aad,
	  size_t aadlen, const uint8_t *in, size_t n, const uint8_t *tail, size_t tailn,
	  uint8_t *out, bool seal, uint8_t tag[AESGCM_TAG_MAX])
{
	(void)k, (void)iv, (void)aad, (void)aadlen, (void)in, (void)n, (void)out, (void)seal;
	(void)tail, (void)tailn, (void)tag;
	BUG_ON(true); /* aesgcm_available() is false here */
}

#endif /* __x86_64__ */

/* ---------------------------------------------------------------- seal / open */

void
aesgcm_seal(const struct aesgcm_key *k, const uint8_t iv[AESGCM_IV_LEN], const uint8_t *aad,
	    size_t aadlen, const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag, size_t taglen)
{
	aesgcm_seal_tail(k, iv, aad, aadlen, in, n, NULL, 0, out, tag, taglen);
}

void
aesgcm_seal_tail(const struct aesgcm_key *k, const uint8_t iv[AESGCM_IV_LEN], const uint8_t *aad,
		 size_t aadlen, const uint8_t *in, size_t n, const uint8_t *tail, size_t tailn,
		 uint8_t *out, uint8_t *tag, size_t taglen)
{
	uint8_t full[AESGCM_TAG_MAX];

	BUG_ON(taglen < AESGCM_TAG_MIN || taglen > AESGCM_TAG_MAX);
	BUG_ON(tailn > AESGCM_TAIL_MAX);
	BUG_ON(n > AESGCM_TEXT_MAX - tailn);
	gcm_crypt(k, iv, aad, aadlen, in, n, tail, tailn, out, true, full);
	memcpy(tag, full, taglen); /* SP 800-38D 7.1 step 7: MSB_t */
}

int
aesgcm_open(const struct aesgcm_key *k, const uint8_t iv[AESGCM_IV_LEN], const uint8_t *aad,
	    size_t aadlen, const uint8_t *in, size_t n, uint8_t *out, const uint8_t *tag,
	    size_t taglen)
{
	uint8_t full[AESGCM_TAG_MAX];
	unsigned diff = 0;

	BUG_ON(taglen < AESGCM_TAG_MIN || taglen > AESGCM_TAG_MAX);
	BUG_ON(n > AESGCM_TEXT_MAX);
	gcm_crypt(k, iv, aad, aadlen, in, n, NULL, 0, out, false, full);
	/* every byte is compared whatever the first mismatch: no timing oracle */
	for (size_t i = 0; i < taglen; i++)
		diff |= (unsigned)(full[i] ^ tag[i]);
	memset(full, 0, sizeof(full)); /* the expected tag: a forger's oracle */
	__asm__ volatile("" : : "r"(full) : "memory");
	if (diff != 0) {
		if (n > 0)
			memset(out, 0, n); /* SP 800-38D 7.2: no plaintext on FAIL */
		return -EBADMSG;
	}
	return 0;
}
