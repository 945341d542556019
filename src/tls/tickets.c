/* Session tickets of the inbound port that keep the peer's identity.
 *
 * A ticket is the server's own state, sealed for the client to hold and
 * hand back (RFC 8446 §4.6.1; RFC 5077 under TLS 1.2). wolfSSL's state
 * holds the session's secrets but not the client's certificate, and a
 * resumed handshake sends none: without more, a sidecar that resumed would
 * arrive with no SPIFFE ID for authorization and x-forwarded-client-cert.
 *
 * So ringside seals the state itself (ChaCha20-Poly1305 under a key of the
 * server context) and ties it to the certificate the session was made
 * with: the ticket's key_name is the first half of that certificate's
 * SHA-256, and a table, shared by the shards (a ticket one shard gave may
 * come back to another), keeps each such certificate's identity and expiry.
 * key_name and the IV are the sealing's associated data, so a client cannot
 * point its ticket at another peer. A ticket resumes only while its peer is
 * in the table and its certificate has not expired; otherwise the handshake
 * is a full one, with the certificate checked again.
 *
 * The key is derived from a secret of the process and the trust bundle's
 * bytes: a reload under the same roots keeps the tickets good, and a bundle
 * without the root a session was verified under ends them. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "internal.h"

/* Peers with tickets: one entry per client certificate, not per ticket, so
 * a mesh of a few hundred workloads (each rotating daily) fits. When full,
 * the entry used least recently goes, and its tickets resume no more. */
#define PEERS 1024

static struct entry {
	struct rs_tls_peer peer;
	uint64_t used; /* a clock of uses, for eviction; 0: free */
} peers[PEERS];
static uint64_t clock_;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint8_t secret[32];
static bool have_secret;
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static void make_secret(void)
{
	have_secret = getrandom(secret, sizeof secret, 0) == (ssize_t)sizeof secret;
}

int rs_tls__ticket_key(uint8_t key[RS_TLS_TICKET_KEY], const void *bundle, size_t len)
{
	wc_Sha256 h;
	int ret;

	pthread_once(&secret_once, make_secret);
	if (!have_secret)
		return -EIO;
	if (wc_InitSha256(&h) != 0)
		return -EIO;
	ret = wc_Sha256Update(&h, secret, sizeof secret) | wc_Sha256Update(&h, bundle, (word32)len) |
	      wc_Sha256Final(&h, key);
	wc_Sha256Free(&h);
	return ret == 0 ? 0 : -EIO;
}

static struct entry *find(const uint8_t name[RS_TLS_TICKET_NAME])
{
	for (size_t i = 0; i < PEERS; i++)
		if (peers[i].used && memcmp(peers[i].peer.hash, name, RS_TLS_TICKET_NAME) == 0)
			return &peers[i];
	return NULL;
}

static void remember(const struct rs_tls_peer *p)
{
	struct entry *e;

	pthread_mutex_lock(&lock);
	e = find(p->hash);
	if (!e) {
		e = &peers[0];
		for (size_t i = 1; i < PEERS && e->used; i++)
			if (peers[i].used < e->used)
				e = &peers[i];
	}
	e->peer = *p;
	e->used = ++clock_;
	pthread_mutex_unlock(&lock);
}

static bool recall(const uint8_t name[RS_TLS_TICKET_NAME], int64_t now, struct rs_tls_peer *out)
{
	struct entry *e;
	bool ok = false;

	pthread_mutex_lock(&lock);
	e = find(name);
	if (e && now < e->peer.not_after) {
		*out = e->peer;
		e->used = ++clock_;
		ok = true;
	}
	pthread_mutex_unlock(&lock);
	return ok;
}

/* The associated data: key_name and the IV, as they travel. */
static void aad_of(uint8_t aad[RS_TLS_TICKET_NAME + RS_TLS_TICKET_IV],
		   const uint8_t name[RS_TLS_TICKET_NAME], const uint8_t iv[RS_TLS_TICKET_IV])
{
	memcpy(aad, name, RS_TLS_TICKET_NAME);
	memcpy(aad + RS_TLS_TICKET_NAME, iv, RS_TLS_TICKET_IV);
}

int rs_tls__ticket_seal(const uint8_t key[RS_TLS_TICKET_KEY], const struct rs_tls_peer *peer,
			uint8_t name[RS_TLS_TICKET_NAME], uint8_t iv[RS_TLS_TICKET_IV],
			uint8_t mac[RS_TLS_TICKET_MAC], uint8_t *state, size_t len)
{
	uint8_t aad[RS_TLS_TICKET_NAME + RS_TLS_TICKET_IV];

	memcpy(name, peer->hash, RS_TLS_TICKET_NAME);
	/* A random 96-bit nonce per ticket; the IV's last bytes and the MAC's
	 * second half are unused and zero. */
	memset(iv, 0, RS_TLS_TICKET_IV);
	memset(mac, 0, RS_TLS_TICKET_MAC);
	if (getrandom(iv, CHACHA20_POLY1305_AEAD_IV_SIZE, 0) != CHACHA20_POLY1305_AEAD_IV_SIZE)
		return -EIO;
	aad_of(aad, name, iv);
	if (wc_ChaCha20Poly1305_Encrypt(key, iv, aad, sizeof aad, state, (word32)len, state, mac) != 0)
		return -EIO;
	remember(peer);
	return 0;
}

int rs_tls__ticket_open(const uint8_t key[RS_TLS_TICKET_KEY], const uint8_t name[RS_TLS_TICKET_NAME],
			const uint8_t iv[RS_TLS_TICKET_IV], const uint8_t mac[RS_TLS_TICKET_MAC],
			uint8_t *state, size_t len, int64_t now, struct rs_tls_peer *peer)
{
	uint8_t aad[RS_TLS_TICKET_NAME + RS_TLS_TICKET_IV];
	struct rs_tls_peer p;

	if (!recall(name, now, &p))
		return -ENOENT;
	aad_of(aad, name, iv);
	/* A tag that does not match (a forged ticket, or one sealed under
	 * other roots) refuses it; what state then holds is never used. */
	if (wc_ChaCha20Poly1305_Decrypt(key, iv, aad, sizeof aad, state, (word32)len, mac, state) != 0)
		return -EBADMSG;
	*peer = p;
	return 0;
}
