/*
 * test_aesgcm.c -- core/aesgcm: the GCM specification's test cases, and
 * differential tests against wolfSSL's own AES-GCM (wc_AesGcm* with
 * INVALID_DEVID: its AES-NI code, no device callback) over every length
 * 0..600, larger lengths, several AAD lengths, unaligned and in-place
 * buffers, and the three key sizes.
 *
 * The vectors are test cases 1-4 (AES-128) and 13-16 (AES-256) of McGrew
 * and Viega, "The Galois/Counter Mode of Operation (GCM)", the ones with
 * 96-bit IVs; each is also run through wolfSSL, so a typo here shows up as a
 * wolfSSL failure rather than as ours. Random inputs come from a seeded
 * splitmix64, so every run sees the same cases.
 *
 * On a CPU without VAES/VPCLMULQDQ every test is reported as skipped.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>

#include "core/aesgcm.h"
#include "core/check.h"

#define RNG_SEED 0x5eed0a35c0ffee11ull
#define MAX_HEX	 64 /* bytes decoded from one vector field */

static void
need_vaes(void)
{
	if (!aesgcm_available())
		cr_skip_test("this CPU lacks AVX2, VAES or VPCLMULQDQ: aesgcm is not used here");
}

/* --- inputs --- */

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
rng_fill(uint64_t *s, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng_next(s);
}

/* Random key (keylen bytes), IV, aad[0..aadlen) and text pt[0..n): one message's inputs. */
static void
rng_message(uint64_t *s, uint8_t *key, size_t keylen, uint8_t iv[AESGCM_IV_LEN], uint8_t *aad,
	    size_t aadlen, uint8_t *pt, size_t n)
{
	rng_fill(s, key, keylen);
	rng_fill(s, iv, AESGCM_IV_LEN);
	rng_fill(s, aad, aadlen);
	rng_fill(s, pt, n);
}

/* Decode hex into out[MAX_HEX]; returns the byte count. */
static size_t
unhex(const char *hex, uint8_t *out)
{
	size_t n = strlen(hex) / 2;

	BUG_ON(n > MAX_HEX);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		BUG_ON(sscanf(hex + 2 * i, "%2x", &v) != 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* --- wolfSSL, the reference --- */

static void
wolf_seal(const uint8_t *key, size_t keylen, const uint8_t *iv, const uint8_t *aad, size_t aadlen,
	  const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag, size_t taglen)
{
	Aes aes;

	cr_assert_eq(wc_AesInit(&aes, NULL, INVALID_DEVID), 0);
	cr_assert_eq(wc_AesGcmSetKey(&aes, key, (word32)keylen), 0);
	cr_assert_eq(wc_AesGcmEncrypt(&aes, out, in, (word32)n, iv, AESGCM_IV_LEN, tag,
				      (word32)taglen, aad, (word32)aadlen),
		     0);
	wc_AesFree(&aes);
}

static int
wolf_open(const uint8_t *key, size_t keylen, const uint8_t *iv, const uint8_t *aad, size_t aadlen,
	  const uint8_t *in, size_t n, uint8_t *out, const uint8_t *tag, size_t taglen)
{
	Aes aes;
	int rc;

	cr_assert_eq(wc_AesInit(&aes, NULL, INVALID_DEVID), 0);
	cr_assert_eq(wc_AesGcmSetKey(&aes, key, (word32)keylen), 0);
	rc = wc_AesGcmDecrypt(&aes, out, in, (word32)n, iv, AESGCM_IV_LEN, tag, (word32)taglen, aad,
			      (word32)aadlen);
	wc_AesFree(&aes);
	return rc;
}

/* --- the specification's test cases --- */

static const struct {
	const char *name, *key, *iv, *aad, *pt, *ct, *tag;
} spec[] = {
    {"case 1", "00000000000000000000000000000000", "000000000000000000000000", "", "", "",
     "58e2fccefa7e3061367f1d57a4e7455a"},
    {"case 2", "00000000000000000000000000000000", "000000000000000000000000", "",
     "00000000000000000000000000000000", "0388dace60b6a392f328c2b971b2fe78",
     "ab6e47d42cec13bdf53a67b21257bddf"},
    {"case 3", "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"case 4", "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"case 13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"case 14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"case 15", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"case 16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

Test(aesgcm, seals_and_opens_the_gcm_spec_test_cases)
{
	need_vaes();
	for (size_t c = 0; c < ARRAY_SIZE(spec); c++) {
		uint8_t key[MAX_HEX], iv[MAX_HEX], aad[MAX_HEX], pt[MAX_HEX], ct[MAX_HEX],
		    tag[MAX_HEX], out[MAX_HEX], back[MAX_HEX], otag[16];
		size_t keylen = unhex(spec[c].key, key), aadlen = unhex(spec[c].aad, aad);
		size_t n = unhex(spec[c].pt, pt);
		struct aesgcm_key k;

		cr_assert_eq(unhex(spec[c].iv, iv), AESGCM_IV_LEN);
		cr_assert_eq(unhex(spec[c].ct, ct), n);
		cr_assert_eq(unhex(spec[c].tag, tag), 16);

		/* the vector itself, through wolfSSL */
		wolf_seal(key, keylen, iv, aad, aadlen, pt, n, out, otag, 16);
		cr_assert_arr_eq(out, ct, n, "%s: wolfSSL disagrees with the vector", spec[c].name);
		cr_assert_arr_eq(otag, tag, 16, "%s: wolfSSL's tag", spec[c].name);

		cr_assert_eq(aesgcm_key_init(&k, key, keylen), 0);
		memset(out, 0, sizeof(out));
		aesgcm_seal(&k, iv, aad, aadlen, pt, n, out, otag, 16);
		cr_expect_arr_eq(out, ct, n, "%s: ciphertext", spec[c].name);
		cr_expect_arr_eq(otag, tag, 16, "%s: tag", spec[c].name);
		cr_expect_eq(aesgcm_open(&k, iv, aad, aadlen, ct, n, back, tag, 16), 0, "%s: open",
			     spec[c].name);
		cr_expect_arr_eq(back, pt, n, "%s: plaintext", spec[c].name);
		aesgcm_key_fini(&k);
	}
}

/* --- differential --- */

static const size_t key_sizes[] = {16, 24, 32};
static const size_t aad_sizes[] = {0, 5, 13, 17, 100};

/*
 * One case: random key, IV, AAD and text of n bytes; our seal against
 * wolfSSL's, then our open of it. Buffers start at odd offsets chosen by the
 * PRNG; with in_place the text is sealed and opened where it lies.
 */
static void
check_against_wolfssl(uint64_t *rng, size_t keylen, size_t aadlen, size_t n, bool in_place)
{
	uint8_t key[32], iv[AESGCM_IV_LEN], aad[128], tag[16], wtag[16];
	uint8_t *pt = malloc(n + 64), *ct = malloc(n + 64), *wct = malloc(n + 64);
	uint8_t *out = malloc(n + 64), *back = malloc(n + 64);
	size_t off_pt = rng_next(rng) % 32, off_out = rng_next(rng) % 32;
	uint8_t *p = pt + off_pt, *o = in_place ? p : out + off_out;
	struct aesgcm_key k;

	cr_assert(pt && ct && wct && out && back);
	rng_fill(rng, key, sizeof(key));
	rng_fill(rng, iv, sizeof(iv));
	rng_fill(rng, aad, sizeof(aad));
	rng_fill(rng, p, n);
	wolf_seal(key, keylen, iv, aad, aadlen, p, n, wct, wtag, 16);

	cr_assert_eq(aesgcm_key_init(&k, key, keylen), 0);
	memcpy(ct, p, n); /* the plaintext, kept for the comparison after opening */
	aesgcm_seal(&k, iv, aad, aadlen, p, n, o, tag, 16);
	cr_assert_arr_eq(o, wct, n, "seal: key %zu aad %zu n %zu in_place %d", keylen, aadlen, n,
			 in_place);
	cr_assert_arr_eq(tag, wtag, 16, "tag: key %zu aad %zu n %zu in_place %d", keylen, aadlen, n,
			 in_place);

	uint8_t *dst = in_place ? o : back + (off_out ^ 7);
	cr_assert_eq(aesgcm_open(&k, iv, aad, aadlen, o, n, dst, tag, 16), 0,
		     "open: key %zu aad %zu n %zu in_place %d", keylen, aadlen, n, in_place);
	cr_assert_arr_eq(dst, ct, n, "opened: key %zu aad %zu n %zu in_place %d", keylen, aadlen, n,
			 in_place);
	aesgcm_key_fini(&k);
	free(pt);
	free(ct);
	free(wct);
	free(out);
	free(back);
}

Test(aesgcm, seals_like_wolfssl_at_every_length_up_to_600)
{
	uint64_t rng = RNG_SEED;

	need_vaes();
	for (size_t ki = 0; ki < ARRAY_SIZE(key_sizes); ki++)
		for (size_t ai = 0; ai < ARRAY_SIZE(aad_sizes); ai++)
			for (size_t n = 0; n <= 600; n++)
				check_against_wolfssl(&rng, key_sizes[ki], aad_sizes[ai], n,
						      n % 3 == 0);
}

Test(aesgcm, seals_like_wolfssl_at_record_sizes_and_beyond)
{
	static const size_t lens[] = {1000, 4096, 16384, 16384 + 17, 70000};
	uint64_t rng = RNG_SEED + 1;

	need_vaes();
	for (size_t ki = 0; ki < ARRAY_SIZE(key_sizes); ki++)
		for (size_t ai = 0; ai < ARRAY_SIZE(aad_sizes); ai++)
			for (size_t li = 0; li < ARRAY_SIZE(lens); li++) {
				check_against_wolfssl(&rng, key_sizes[ki], aad_sizes[ai], lens[li],
						      false);
				check_against_wolfssl(&rng, key_sizes[ki], aad_sizes[ai], lens[li],
						      true);
			}
}

/*
 * aesgcm_seal_tail() of text || tail, the text unaligned and exactly sized
 * (ASan sees any overrun), against wolfSSL sealing the two joined.
 */
static void
check_tail_against_wolfssl(uint64_t *rng, size_t keylen, size_t n, size_t tailn)
{
	uint8_t key[32], iv[AESGCM_IV_LEN], aad[5], tail[AESGCM_TAIL_MAX], tag[16], wtag[16];
	uint8_t *joined = malloc(n + tailn + 1), *wct = malloc(n + tailn + 1);
	uint8_t *text = malloc(n + 1), *out = malloc(n + tailn);
	struct aesgcm_key k;

	cr_assert(joined && wct && text && out);
	rng_message(rng, key, keylen, iv, aad, sizeof(aad), joined, n + tailn);
	memcpy(tail, joined + n, tailn);
	memcpy(text + 1, joined, n);
	wolf_seal(key, keylen, iv, aad, sizeof(aad), joined, n + tailn, wct, wtag, 16);

	cr_assert_eq(aesgcm_key_init(&k, key, keylen), 0);
	aesgcm_seal_tail(&k, iv, aad, sizeof(aad), text + 1, n, tail, tailn, out, tag, 16);
	cr_assert_arr_eq(out, wct, n + tailn, "seal_tail: key %zu n %zu tail %zu", keylen, n,
			 tailn);
	cr_assert_arr_eq(tag, wtag, 16, "tag: key %zu n %zu tail %zu", keylen, n, tailn);
	aesgcm_key_fini(&k);
	free(joined);
	free(wct);
	free(text);
	free(out);
}

Test(aesgcm, seal_tail_seals_text_and_tail_as_one_message)
{
	static const size_t tails[] = {0, 1, 2, 15, AESGCM_TAIL_MAX};
	uint64_t rng = RNG_SEED + 7;

	need_vaes();
	for (size_t ti = 0; ti < ARRAY_SIZE(tails); ti++) {
		/* every split of the short path, the chunk loop and the final part */
		for (size_t n = 0; n <= 800; n++)
			check_tail_against_wolfssl(&rng, 16, n, tails[ti]);
		for (size_t n = 16384 - 40; n <= 16384 + 40; n++)
			check_tail_against_wolfssl(&rng, key_sizes[n % ARRAY_SIZE(key_sizes)], n,
						   tails[ti]);
	}
}

Test(aesgcm, hashes_long_aad_like_wolfssl)
{
	uint64_t rng = RNG_SEED + 2;
	uint8_t key[16], iv[AESGCM_IV_LEN], aad[700], pt[40], ct[40], wct[40], tag[16], wtag[16];
	struct aesgcm_key k;

	need_vaes();
	rng_message(&rng, key, sizeof(key), iv, aad, sizeof(aad), pt, sizeof(pt));
	cr_assert_eq(aesgcm_key_init(&k, key, sizeof(key)), 0);
	for (size_t aadlen = 0; aadlen <= sizeof(aad); aadlen++) {
		wolf_seal(key, sizeof(key), iv, aad, aadlen, pt, sizeof(pt), wct, wtag, 16);
		aesgcm_seal(&k, iv, aad, aadlen, pt, sizeof(pt), ct, tag, 16);
		cr_assert_arr_eq(ct, wct, sizeof(ct), "aad %zu", aadlen);
		cr_assert_arr_eq(tag, wtag, 16, "aad %zu", aadlen);
	}
}

Test(aesgcm, opens_what_wolfssl_seals)
{
	uint64_t rng = RNG_SEED + 3;
	enum { N = 16384 + 33 };
	uint8_t key[32], iv[AESGCM_IV_LEN], aad[13], tag[16];
	uint8_t *pt = malloc(N), *ct = malloc(N + 1), *out = malloc(N + 1);
	struct aesgcm_key k;

	need_vaes();
	cr_assert(pt && ct && out);
	for (size_t ki = 0; ki < ARRAY_SIZE(key_sizes); ki++)
		for (size_t n = 0; n <= N; n += n < 300 ? 1 : 997) {
			rng_message(&rng, key, sizeof(key), iv, aad, sizeof(aad), pt, n);
			wolf_seal(key, key_sizes[ki], iv, aad, sizeof(aad), pt, n, ct + 1, tag, 16);
			cr_assert_eq(aesgcm_key_init(&k, key, key_sizes[ki]), 0);
			cr_assert_eq(
			    aesgcm_open(&k, iv, aad, sizeof(aad), ct + 1, n, out + 1, tag, 16), 0,
			    "key %zu n %zu", key_sizes[ki], n);
			cr_assert_arr_eq(out + 1, pt, n, "key %zu n %zu", key_sizes[ki], n);
		}
	free(pt);
	free(ct);
	free(out);
}

/* wolfSSL also opens what we seal, with every tag length we offer. */
Test(aesgcm, truncated_tags_are_prefixes_and_open_both_ways)
{
	uint64_t rng = RNG_SEED + 4;
	uint8_t key[16], iv[AESGCM_IV_LEN], aad[5], pt[77], ct[77], back[77], full[16], tag[16];
	struct aesgcm_key k;

	need_vaes();
	rng_message(&rng, key, sizeof(key), iv, aad, sizeof(aad), pt, sizeof(pt));
	cr_assert_eq(aesgcm_key_init(&k, key, sizeof(key)), 0);
	aesgcm_seal(&k, iv, aad, sizeof(aad), pt, sizeof(pt), ct, full, 16);
	for (size_t t = AESGCM_TAG_MIN; t <= AESGCM_TAG_MAX; t++) {
		memset(tag, 0xee, sizeof(tag));
		aesgcm_seal(&k, iv, aad, sizeof(aad), pt, sizeof(pt), ct, tag, t);
		cr_expect_arr_eq(tag, full, t, "taglen %zu", t);
		for (size_t i = t; i < sizeof(tag); i++)
			cr_expect_eq(tag[i], 0xee, "taglen %zu wrote byte %zu", t, i);
		cr_expect_eq(aesgcm_open(&k, iv, aad, sizeof(aad), ct, sizeof(ct), back, tag, t), 0,
			     "taglen %zu", t);
		cr_expect_arr_eq(back, pt, sizeof(pt));
		cr_expect_eq(
		    wolf_open(key, sizeof(key), iv, aad, sizeof(aad), ct, sizeof(ct), back, tag, t),
		    0, "wolfSSL, taglen %zu", t);
	}
}

/* --- forgeries --- */

enum flip { FLIP_CT, FLIP_TAG, FLIP_AAD };

/*
 * Seal a message, flip one bit of what flip says, and open it, both into
 * another buffer and in place: -EBADMSG, and the output all zeros.
 */
static void
check_flip(enum flip what, size_t n, size_t pos, unsigned bit)
{
	uint64_t rng = RNG_SEED + 5 + n;
	uint8_t key[32], iv[AESGCM_IV_LEN], aad[13], tag[16];
	uint8_t *pt = malloc(n + 1), *ct = malloc(n + 1), *out = malloc(n + 1);
	struct aesgcm_key k;

	cr_assert(pt && ct && out);
	rng_message(&rng, key, sizeof(key), iv, aad, sizeof(aad), pt, n);
	cr_assert_eq(aesgcm_key_init(&k, key, sizeof(key)), 0);
	aesgcm_seal(&k, iv, aad, sizeof(aad), pt, n, ct, tag, 16);
	uint8_t *p = what == FLIP_CT ? ct : what == FLIP_TAG ? tag : aad;
	p[pos] ^= (uint8_t)(1u << bit);

	memset(out, 0xaa, n + 1);
	cr_assert_eq(aesgcm_open(&k, iv, aad, sizeof(aad), ct, n, out, tag, 16), -EBADMSG,
		     "flip %d n %zu pos %zu bit %u", what, n, pos, bit);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(out[i], 0, "flip %d n %zu: out[%zu] not zeroed", what, n, i);
	cr_assert_eq(out[n], 0xaa, "wrote past the end");

	cr_assert_eq(aesgcm_open(&k, iv, aad, sizeof(aad), ct, n, ct, tag, 16), -EBADMSG);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ct[i], 0, "flip %d n %zu in place: ct[%zu] not zeroed", what, n, i);
	free(pt);
	free(ct);
	free(out);
}

Test(aesgcm, open_rejects_a_flipped_ciphertext_bit_and_zeroes_the_output)
{
	static const size_t lens[] = {1, 16, 300, 16384 + 5};

	need_vaes();
	for (size_t li = 0; li < ARRAY_SIZE(lens); li++)
		for (size_t pos = 0; pos < lens[li]; pos += 1 + lens[li] / 7)
			for (unsigned bit = 0; bit < 8; bit += 3)
				check_flip(FLIP_CT, lens[li], pos, bit);
	check_flip(FLIP_CT, 16384 + 5, 16384 + 4, 7); /* the partial last block */
}

Test(aesgcm, open_rejects_a_flipped_tag_bit_and_zeroes_the_output)
{
	need_vaes();
	for (size_t pos = 0; pos < 16; pos++)
		for (unsigned bit = 0; bit < 8; bit++)
			check_flip(FLIP_TAG, 200, pos, bit);
}

Test(aesgcm, open_rejects_a_flipped_aad_bit_and_zeroes_the_output)
{
	need_vaes();
	for (size_t pos = 0; pos < 13; pos++)
		check_flip(FLIP_AAD, 200, pos, (unsigned)pos % 8);
	check_flip(FLIP_AAD, 0, 12, 0); /* GMAC only: nothing to zero, still refused */
}

/* --- edges --- */

Test(aesgcm, empty_text_and_aad_need_no_buffers)
{
	static const uint8_t key[16], iv[AESGCM_IV_LEN];
	uint8_t tag[16], wtag[16];
	struct aesgcm_key k;

	need_vaes();
	cr_assert_eq(aesgcm_key_init(&k, key, sizeof(key)), 0);
	aesgcm_seal(&k, iv, NULL, 0, NULL, 0, NULL, tag, 16);
	wolf_seal(key, sizeof(key), iv, NULL, 0, NULL, 0, NULL, wtag, 16);
	cr_expect_arr_eq(tag, wtag, 16);
	cr_expect_eq(aesgcm_open(&k, iv, NULL, 0, NULL, 0, NULL, tag, 16), 0);
}

Test(aesgcm, key_init_refuses_other_key_lengths)
{
	static const size_t bad[] = {0, 1, 8, 15, 17, 23, 25, 31, 33, 64};
	uint8_t key[64] = {0};
	struct aesgcm_key k;

	need_vaes();
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_expect_eq(aesgcm_key_init(&k, key, bad[i]), -EINVAL, "keylen %zu", bad[i]);
	for (size_t i = 0; i < ARRAY_SIZE(key_sizes); i++)
		cr_expect_eq(aesgcm_key_init(&k, key, key_sizes[i]), 0, "keylen %zu", key_sizes[i]);
}

Test(aesgcm, one_key_serves_many_messages)
{
	uint64_t rng = RNG_SEED + 6;
	uint8_t key[32], iv[AESGCM_IV_LEN], pt[1500], ct[1500], wct[1500], tag[16], wtag[16];
	struct aesgcm_key k;

	need_vaes();
	rng_fill(&rng, key, sizeof(key));
	cr_assert_eq(aesgcm_key_init(&k, key, sizeof(key)), 0);
	for (int i = 0; i < 200; i++) {
		size_t n = rng_next(&rng) % sizeof(pt);

		rng_fill(&rng, iv, sizeof(iv));
		rng_fill(&rng, pt, n);
		aesgcm_seal(&k, iv, iv, 5, pt, n, ct, tag, 16);
		wolf_seal(key, sizeof(key), iv, iv, 5, pt, n, wct, wtag, 16);
		cr_assert_arr_eq(ct, wct, n, "message %d", i);
		cr_assert_arr_eq(tag, wtag, 16, "message %d", i);
	}
}
