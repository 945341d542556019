/* Session tickets of the inbound port that keep the peer's identity.
 *
 * A ticket is the server's own state, sealed for the client to hold and
 * hand back (RFC 8446 §4.6.1; RFC 5077 under TLS 1.2). wolfSSL's state
 * holds the session's secrets but not the client's certificate, and a
 * resumed handshake sends none: without more, a sidecar that resumed would
 * arrive with no SPIFFE ID for authorization and x-forwarded-client-cert.
 *
 * So ringside seals the state itself, with ChaCha20-Poly1305, and seals
 * with it the SHA-256 of the certificate the session was made with (in the
 * 32 bytes wolfSSL leaves for this). A table, shared by the shards (a
 * ticket one shard gave may come back to another), keeps each such
 * certificate's SPIFFE ID and expiry. A ticket resumes only when it opens
 * (nothing in it was altered, and it was sealed under the same key), its
 * certificate is still in the table and has not expired; otherwise the
 * handshake is a full one, with the certificate checked again. Nothing in
 * the clear part of a ticket tells which peer holds it (RFC 8446 §C.4).
 *
 * Keys: a random key per epoch of two hours (the tickets' lifetime) of
 * the machine's uptime (CLOCK_BOOTTIME: a wall clock set back or forward
 * moves no epoch), of which only the current and the previous one are kept,
 * so a ticket older than that can be opened by nobody (forward secrecy);
 * each server context mixes in the SHA-256 of its trust bundle, so any
 * change to the bundle's bytes ends the tickets sealed before it. The clear
 * key_name says the epoch. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "internal.h"

#define EPOCH_S RS_TLS_TICKET_LIFETIME
#define NONCE CHACHA20_POLY1305_AEAD_IV_SIZE  /* 12 */
#define TAG CHACHA20_POLY1305_AEAD_AUTHTAG_SIZE /* 16 */
#define HASH RS_TLS_TICKET_EXTRA /* the certificate's SHA-256, sealed after the state */
_Static_assert(sizeof ((struct rs_tls_peer *)0)->hash == HASH, "the peer's hash is what is sealed");

/* Peers with tickets: one entry per client certificate, not per ticket, so
 * a mesh of a few hundred workloads (each rotating daily) fits. An entry
 * lives in one of PROBE slots from its hash on; when all are taken, the
 * one used least recently there goes, and its tickets resume no more. */
#define PEERS 1024
#define PROBE 8

static struct entry {
	struct rs_tls_peer peer;
	uint64_t used; /* a clock of uses, for eviction; 0: free */
} peers[PEERS];
static uint64_t clock_;

static struct epoch_key {
	int64_t epoch; /* 0: none */
	uint8_t key[RS_TLS_TICKET_KEY];
} keys[2]; /* the current epoch's, and the one before */

/* One lock for both tables: taken once per ticket sealed or opened, that
 * is once per handshake, for a few microseconds. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Under lock: moves the keys on to the epoch of uptime (seconds), when it
 * is a newer one. Epochs count from 1. 0 or -EIO. */
static int advance(int64_t uptime)
{
	int64_t e = uptime / EPOCH_S + 1;

	if (keys[0].epoch >= e)
		return 0;
	/* The older key is forgotten; the current one stays as the previous
	 * only when it is the epoch just before. */
	keys[1] = keys[0].epoch == e - 1 ? keys[0] : (struct epoch_key){0};
	explicit_bzero(&keys[0], sizeof keys[0]);
	if (getrandom(keys[0].key, sizeof keys[0].key, 0) != (ssize_t)sizeof keys[0].key)
		return -EIO;
	keys[0].epoch = e;
	return 0;
}

/* Under lock: the key of epoch e for a context whose bundle hashes to
 * bundle. -ENOENT when e's key is not (or no longer) kept. */
static int derive(uint8_t out[RS_TLS_TICKET_KEY], int64_t e, const uint8_t bundle[RS_TLS_BUNDLE_HASH])
{
	const uint8_t *k = NULL;
	wc_Sha256 h;
	int ret;

	for (size_t i = 0; i < 2; i++)
		if (keys[i].epoch && keys[i].epoch == e)
			k = keys[i].key;
	if (!k || wc_InitSha256(&h) != 0)
		return -ENOENT;
	ret = wc_Sha256Update(&h, k, RS_TLS_TICKET_KEY) |
	      wc_Sha256Update(&h, bundle, RS_TLS_BUNDLE_HASH) | wc_Sha256Final(&h, out);
	wc_Sha256Free(&h);
	return ret == 0 ? 0 : -EIO;
}

static struct entry *slot(const uint8_t hash[HASH], bool for_insert)
{
	uint32_t h;
	struct entry *oldest = NULL;

	memcpy(&h, hash, sizeof h);
	for (uint32_t i = 0; i < PROBE; i++) {
		struct entry *e = &peers[(h + i) % PEERS];

		if (e->used && memcmp(e->peer.hash, hash, HASH) == 0)
			return e;
		if (!oldest || e->used < oldest->used)
			oldest = e;
	}
	return for_insert ? oldest : NULL;
}

int rs_tls__bundle_hash(uint8_t out[RS_TLS_BUNDLE_HASH], const void *bundle, size_t len)
{
	return wc_Sha256Hash(bundle, (word32)len, out) == 0 ? 0 : -EIO;
}

/* key_name: the epoch, little-endian, then zeros; with the IV, the
 * associated data. */
static void name_of(uint8_t name[RS_TLS_TICKET_NAME], int64_t e)
{
	memset(name, 0, RS_TLS_TICKET_NAME);
	for (int i = 0; i < 8; i++)
		name[i] = (uint8_t)((uint64_t)e >> (8 * i));
}

/* The epoch key_name says, or -1 when it is not one name_of writes. */
static int64_t epoch_of(const uint8_t name[RS_TLS_TICKET_NAME])
{
	static const uint8_t zeros[RS_TLS_TICKET_NAME - 8];
	uint64_t e = 0;

	if (memcmp(name + 8, zeros, sizeof zeros) != 0)
		return -1;
	for (int i = 7; i >= 0; i--)
		e = e << 8 | name[i];
	return e > INT64_MAX ? -1 : (int64_t)e;
}

static void aad_of(uint8_t aad[RS_TLS_TICKET_NAME + RS_TLS_TICKET_IV],
		   const uint8_t name[RS_TLS_TICKET_NAME], const uint8_t iv[RS_TLS_TICKET_IV])
{
	memcpy(aad, name, RS_TLS_TICKET_NAME);
	memcpy(aad + RS_TLS_TICKET_NAME, iv, RS_TLS_TICKET_IV);
}

int rs_tls__ticket_seal(const uint8_t bundle[RS_TLS_BUNDLE_HASH], const struct rs_tls_peer *peer,
			int64_t uptime, uint8_t name[RS_TLS_TICKET_NAME], uint8_t iv[RS_TLS_TICKET_IV],
			uint8_t mac[RS_TLS_TICKET_MAC], uint8_t *state, size_t len, size_t *out_len)
{
	uint8_t aad[RS_TLS_TICKET_NAME + RS_TLS_TICKET_IV], key[RS_TLS_TICKET_KEY];
	struct entry *slot_;
	int ret = -EIO;

	/* A random 96-bit nonce; the IV's last bytes and the MAC's second
	 * half are unused and must stay zero. */
	memset(iv, 0, RS_TLS_TICKET_IV);
	memset(mac, 0, RS_TLS_TICKET_MAC);
	if (getrandom(iv, NONCE, 0) != NONCE)
		return -EIO;
	memcpy(state + len, peer->hash, HASH);
	pthread_mutex_lock(&lock);
	/* The newest key seals. */
	if (advance(uptime) == 0 && derive(key, keys[0].epoch, bundle) == 0) {
		name_of(name, keys[0].epoch);
		aad_of(aad, name, iv);
		if (wc_ChaCha20Poly1305_Encrypt(key, iv, aad, sizeof aad, state, (word32)(len + HASH),
						state, mac) == 0) {
			slot_ = slot(peer->hash, true);
			slot_->peer = *peer;
			slot_->used = ++clock_;
			*out_len = len + HASH;
			ret = 0;
		}
	}
	pthread_mutex_unlock(&lock);
	explicit_bzero(key, sizeof key);
	return ret;
}

int rs_tls__ticket_open(const uint8_t bundle[RS_TLS_BUNDLE_HASH], const uint8_t name[RS_TLS_TICKET_NAME],
			const uint8_t iv[RS_TLS_TICKET_IV], const uint8_t mac[RS_TLS_TICKET_MAC],
			uint8_t *state, size_t len, int64_t now, int64_t uptime,
			struct rs_tls_peer *peer, size_t *out_len)
{
	uint8_t aad[RS_TLS_TICKET_NAME + RS_TLS_TICKET_IV], key[RS_TLS_TICKET_KEY];
	static const uint8_t zeros[RS_TLS_TICKET_MAC - TAG];
	int64_t e = epoch_of(name);
	struct entry *found;
	int ret;

	if (e < 0 || len < HASH || memcmp(iv + NONCE, zeros, RS_TLS_TICKET_IV - NONCE) != 0 ||
	    memcmp(mac + TAG, zeros, sizeof zeros) != 0)
		return -EBADMSG;
	aad_of(aad, name, iv);
	pthread_mutex_lock(&lock);
	ret = advance(uptime);
	if (ret == 0)
		ret = derive(key, e, bundle);
	/* A tag that does not match (an altered ticket, or one sealed under
	 * another bundle) refuses it. */
	if (ret == 0 && wc_ChaCha20Poly1305_Decrypt(key, iv, aad, sizeof aad, state, (word32)len, mac,
						    state) != 0) {
		/* Decrypted in place before the tag was checked: wiped, as
		 * wolfSSL wipes only a ticket it takes. */
		explicit_bzero(state, len);
		ret = -EBADMSG;
	}
	if (ret == 0) {
		found = slot(state + len - HASH, false);
		if (found && now < found->peer.not_after) {
			*peer = found->peer;
			found->used = ++clock_;
			*out_len = len - HASH;
		} else {
			ret = -ENOENT;
		}
	}
	pthread_mutex_unlock(&lock);
	explicit_bzero(key, sizeof key);
	return ret;
}
