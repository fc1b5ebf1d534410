/*
 * tls_gcm.c -- wolfSSL's AES-GCM on core/aesgcm, through wolfSSL's crypto
 * device interface (see tls_gcm.h).
 *
 * What wolfSSL gives the callback (wolfcrypt/src/aes.c, cryptocb.c, 5.5):
 * wc_AesGcmEncrypt()/wc_AesGcmDecrypt() call it first whenever the Aes
 * object carries a device id, with the Aes object, the buffers, the IV, the
 * tag and the additional data. wc_AesGcmSetKey() has by then copied the raw
 * key into aes->devKey (aes->keylen bytes) and still set up its own
 * software state, so answering CRYPTOCB_UNAVAILABLE at any point makes
 * wolfSSL do the work itself: that is the answer for every other algorithm,
 * for IVs other than 96 bits and for tags shorter than 12 bytes.
 */
#include "core/tls_gcm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/cryptocb.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "core/aesgcm.h"
#include "core/check.h"

#define TLS_GCM_DEV_ID 0x534c4743 /* "SLGC": any id other than INVALID_DEVID */
#define TLS_GCM_SLOTS  256	  /* keys cached per thread (2 per connection) */

/* One cached key: wolfSSL's Aes object and the raw key it held when expanded. */
struct tls_gcm_slot {
	struct aesgcm_key key; /* first: aligned as aesgcm needs */
	const Aes *aes;	       /* NULL: empty */
	int keylen;
	word32 raw[AES_MAX_KEY_SIZE / 32];
};

static __thread struct tls_gcm_slot *tls_gcm_cache; /* TLS_GCM_SLOTS, or NULL */
static __thread unsigned long tls_gcm_nrecords;

/* The expanded key of aes, from this thread's cache or made now; NULL when out of
 * memory or the key length is not AES's (wolfSSL then does the record itself). */
static const struct aesgcm_key *
tls_gcm_key(const Aes *aes)
{
	struct tls_gcm_slot *s;
	size_t keylen;

	if (aes == NULL)
		return NULL;
	keylen = (size_t)aes->keylen;
	if (keylen > sizeof(s->raw))
		return NULL;
	if (tls_gcm_cache == NULL) {
		tls_gcm_cache = aligned_alloc(64, TLS_GCM_SLOTS * sizeof(*s));
		if (tls_gcm_cache == NULL)
			return NULL;
		memset(tls_gcm_cache, 0, TLS_GCM_SLOTS * sizeof(*s));
	}
	/* Aes objects live inside wolfSSL's per-connection allocations: drop the
	 * alignment bits, mix the rest */
	s = &tls_gcm_cache[(((uintptr_t)aes >> 4) * UINT64_C(0x9e3779b97f4a7c15)) >> 56 &
			   (TLS_GCM_SLOTS - 1)];
	if (s->aes == aes && s->keylen == aes->keylen && memcmp(s->raw, aes->devKey, keylen) == 0)
		return &s->key;
	/* a new key for this slot: a new connection, or TLS 1.3's next traffic key */
	s->aes = NULL;
	aesgcm_key_fini(&s->key);
	if (aesgcm_key_init(&s->key, (const uint8_t *)aes->devKey, keylen) != 0)
		return NULL;
	s->aes = aes;
	s->keylen = aes->keylen;
	memcpy(s->raw, aes->devKey, keylen);
	return &s->key;
}

/* The key for one record of aes, or NULL to leave the record to wolfSSL: an IV other
 * than 96 bits or a tag shorter than 12 bytes (both legal in wolfCrypt, neither in
 * TLS), or no key (see tls_gcm_key). */
static const struct aesgcm_key *
tls_gcm_record_key(const Aes *aes, word32 ivlen, word32 taglen)
{
	if (ivlen != AESGCM_IV_LEN || taglen < AESGCM_TAG_MIN || taglen > AESGCM_TAG_MAX)
		return NULL;
	return tls_gcm_key(aes);
}

static int
tls_gcm_seal(wc_CryptoInfo *info)
{
	__typeof__(info->cipher.aesgcm_enc) *e = &info->cipher.aesgcm_enc;
	const struct aesgcm_key *k = tls_gcm_record_key(e->aes, e->ivSz, e->authTagSz);

	if (k == NULL)
		return CRYPTOCB_UNAVAILABLE;
	aesgcm_seal(k, e->iv, e->authIn, e->authInSz, e->in, e->sz, e->out, e->authTag,
		    e->authTagSz);
	tls_gcm_nrecords++;
	return 0;
}

static int
tls_gcm_open(wc_CryptoInfo *info)
{
	__typeof__(info->cipher.aesgcm_dec) *d = &info->cipher.aesgcm_dec;
	const struct aesgcm_key *k = tls_gcm_record_key(d->aes, d->ivSz, d->authTagSz);

	if (k == NULL)
		return CRYPTOCB_UNAVAILABLE;
	tls_gcm_nrecords++;
	if (aesgcm_open(k, d->iv, d->authIn, d->authInSz, d->in, d->sz, d->out, d->authTag,
			d->authTagSz) != 0)
		return AES_GCM_AUTH_E; /* what wolfSSL's own decryption answers */
	return 0;
}

/* The device: AES-GCM here, anything else back to wolfSSL. */
static int
tls_gcm_device(int devid, wc_CryptoInfo *info, void *arg)
{
	(void)devid;
	(void)arg;
	if (info->algo_type != WC_ALGO_TYPE_CIPHER || info->cipher.type != WC_CIPHER_AES_GCM)
		return CRYPTOCB_UNAVAILABLE;
	return info->cipher.enc ? tls_gcm_seal(info) : tls_gcm_open(info);
}

int
tls_gcm_dev_id(void)
{
	const char *env = getenv("SLUICE_AESGCM");

	if (!aesgcm_available() || (env != NULL && strcmp(env, "wolfssl") == 0))
		return INVALID_DEVID;
	/* registering again only rewrites the same entry */
	if (wc_CryptoCb_RegisterDevice(TLS_GCM_DEV_ID, tls_gcm_device, NULL) != 0)
		return INVALID_DEVID;
	return TLS_GCM_DEV_ID;
}

unsigned long
tls_gcm_records(void)
{
	return tls_gcm_nrecords;
}

void
tls_gcm_thread_done(void)
{
	if (tls_gcm_cache == NULL)
		return;
	for (size_t i = 0; i < TLS_GCM_SLOTS; i++)
		aesgcm_key_fini(&tls_gcm_cache[i].key);
	explicit_bzero(tls_gcm_cache, TLS_GCM_SLOTS * sizeof(*tls_gcm_cache));
	free(tls_gcm_cache);
	tls_gcm_cache = NULL;
}
