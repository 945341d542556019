/* TLS on a shard's connections: wolfSSL as a layer of rs_conn (net.h).
 *
 * wolfSSL never touches the socket. Its receive callback reads the
 * ciphertext the ring delivered, which the layer hands it for the duration
 * of one rx call; its send callback appends to the connection's wire queue,
 * which the ring sends. So no TLS call blocks, and handshakes interleave with
 * everything else on the shard. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "internal.h"
#include "ringside/net.h"
#include "ringside/tls-session.h"
#include "ringside/tls.h"

struct rs_tls_ctx {
	_Atomic unsigned refs; /* the owner's, and one per session made from it */
	WOLFSSL_CTX *ctx;
	char **sans; /* owns: names the peer's certificate must have one of */
	size_t nsans;
	char *sni;   /* owns; NULL: the caller's */
	const char *alpn; /* what is offered, comma-separated */
	const char *alpn_h2; /* a client's offer for HTTP/2 */
	uint64_t key;
	bool server;
	uint8_t bundle_hash[RS_TLS_BUNDLE_HASH]; /* a server's: its tickets' (tickets.c) */
};

struct session {
	WOLFSSL *ssl;
	const struct rs_tls_ctx *ctx;
	const char *rx; /* ciphertext of the current rx call */
	size_t rx_len;
	bool established;
	bool shut; /* close_notify went: what the owner queues after is dropped */
	bool sniffing; /* PERMISSIVE: the first bytes decide between TLS and clear */
	bool peer_read; /* peer holds the peer of this handshake */
	bool from_ticket; /* peer came from the ticket the client offered */
	bool names_ok; /* a client's: the server's certificate has a wanted name */
	char error[160]; /* why the handshake failed, for the owner's message */
	struct rs_tls_peer peer; /* its id: the peer certificate's spiffe:// URI SAN, or "" */
	char peer_hash[65]; /* a server's: peer.hash in hex, or "" */
};

static struct session *session_of(const struct rs_conn *c)
{
	return c->layer_data;
}

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct session *s = arg;
	size_t n = s->rx_len;

	if (n == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ; /* the ring brings more */
	if (n > (size_t)sz)
		n = (size_t)sz;
	memcpy(buf, s->rx, n);
	s->rx += n;
	s->rx_len -= n;
	return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct rs_conn *c = wolfSSL_GetIOWriteCtx(ssl);

	return rs_outq_append(&c->wire, &c->loop->chunks, buf, (size_t)sz) == 0
		       ? sz
		       : WOLFSSL_CBIO_ERR_GENERAL;
}

static void set_error(struct session *s, int err, const char *what)
{
	char reason[WOLFSSL_MAX_ERROR_SZ];

	wolfSSL_ERR_error_string_n((unsigned long)err, reason, sizeof reason);
	snprintf(s->error, sizeof s->error, "TLS_error:%s%s%s", what ? what : "",
		 what ? ": " : "", reason);
}

/* One pass over the peer certificate's names: keeps its first spiffe:// URI
 * (the peer's SPIFFE ID), and says whether it carries one of Istio's
 * subjectAltNames (as a DNS or URI name), when the context asks for any. A
 * server keeps the certificate's SHA-256 (Envoy's x-forwarded-client-cert
 * Hash) and expiry too, for the tickets it gives. */
static int read_cert(struct session *s)
{
	WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(s->ssl);
	const unsigned char *der, *after;
	char *name;
	int len = 0;

	memset(&s->peer, 0, sizeof s->peer);
	s->names_ok = s->ctx->nsans == 0;
	if (!x)
		return -ENOENT;
	der = wolfSSL_X509_get_der(x, &len);
	if (s->ctx->server) {
		if (!der || len <= 0 || wc_Sha256Hash(der, (word32)len, s->peer.hash) != 0) {
			wolfSSL_X509_free(x);
			return -EPROTO;
		}
		/* notAfter as wolfSSL decoded it in the handshake: tag, length,
		 * date. One that does not read leaves 0: tickets that never
		 * resume. */
		after = wolfSSL_X509_notAfter(x);
		if (after && rs_cert__date_seconds(after, 2 + after[1], &s->peer.not_after) < 0)
			s->peer.not_after = 0;
	}
	while ((name = wolfSSL_X509_get_next_altname(x))) {
		if (!s->peer.id[0] && strncmp(name, "spiffe://", 9) == 0)
			snprintf(s->peer.id, sizeof s->peer.id, "%s", name);
		for (size_t i = 0; i < s->ctx->nsans && !s->names_ok; i++)
			s->names_ok = strcmp(name, s->ctx->sans[i]) == 0;
	}
	wolfSSL_X509_free(x);
	return 0;
}

/* The peer of this handshake, once: from its certificate, or, when a
 * server resumed, from the ticket the client offered. 0 or -ENOENT. */
static int read_peer(struct session *s)
{
	if (s->peer_read)
		return 0;
	if (wolfSSL_session_reused(s->ssl) == 1) {
		if (s->ctx->server && !s->from_ticket)
			return -ENOENT;
	} else if (read_cert(s) < 0 && s->ctx->server) {
		return -ENOENT;
	}
	if (s->ctx->server)
		for (size_t i = 0; i < sizeof s->peer.hash; i++)
			snprintf(s->peer_hash + 2 * i, 3, "%02x", s->peer.hash[i]);
	s->peer_read = true;
	return 0;
}

/* Whether the peer is one to talk to. A client's resumed session has no
 * certificate: it was checked, names included, when it was first made under
 * this same context (pools are keyed by it). A server's resumed session
 * has the peer its ticket was sealed for. */
static bool check_peer(struct session *s)
{
	if (read_peer(s) < 0)
		return false;
	return s->ctx->server || wolfSSL_session_reused(s->ssl) == 1 || s->names_ok;
}

/* Seals (enc) or opens a ticket of the inbound port: tickets.c. wolfSSL
 * gives the state's size, and its buffer has room for 32 bytes more
 * (WOLFSSL_TICKET_EXTRA_PADDING_SZ, an internal setting: a build that
 * lowers it says so in options.h), the certificate's hash. */
#if defined(WOLFSSL_TICKET_EXTRA_PADDING_SZ) && WOLFSSL_TICKET_EXTRA_PADDING_SZ < RS_TLS_TICKET_EXTRA
#error "wolfSSL leaves less room in a ticket than the certificate's hash takes"
#endif
_Static_assert(RS_TLS_TICKET_NAME == WOLFSSL_TICKET_NAME_SZ && RS_TLS_TICKET_IV == WOLFSSL_TICKET_IV_SZ &&
		       RS_TLS_TICKET_MAC == WOLFSSL_TICKET_MAC_SZ,
	       "tickets.c's sizes are wolfSSL's");
static int ticket_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
		     unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
		     int enc, unsigned char *state, int len, int *out_len, void *arg)
{
	const struct rs_tls_ctx *t = arg;
	struct session *s = wolfSSL_GetIOReadCtx(ssl);
	struct timespec up;
	size_t n;

	clock_gettime(CLOCK_BOOTTIME, &up);
	if (enc) {
		if (read_peer(s) < 0 || rs_tls__ticket_seal(t->bundle_hash, &s->peer, up.tv_sec, name,
							       iv, mac, state, (size_t)len, &n) < 0)
			return WOLFSSL_TICKET_RET_FATAL;
	} else {
		if (rs_tls__ticket_open(t->bundle_hash, name, iv, mac, state, (size_t)len,
					(int64_t)time(NULL), up.tv_sec, &s->peer, &n) < 0)
			return WOLFSSL_TICKET_RET_REJECT;
		s->from_ticket = true;
	}
	*out_len = (int)n;
	return WOLFSSL_TICKET_RET_OK;
}

static int handshake(struct rs_conn *c, struct session *s)
{
	int rc = s->ctx->server ? wolfSSL_accept(s->ssl) : wolfSSL_connect(s->ssl);

	if (rc != WOLFSSL_SUCCESS) {
		rc = wolfSSL_get_error(s->ssl, rc);
		if (rc == WOLFSSL_ERROR_WANT_READ || rc == WOLFSSL_ERROR_WANT_WRITE)
			return 0;
		set_error(s, rc, NULL);
		return -EPROTO;
	}
	if (!check_peer(s)) {
		snprintf(s->error, sizeof s->error, "TLS_error:%s",
			 s->ctx->server ? "no peer identity"
					: "the peer's certificate has none of the subjectAltNames");
		return -EPROTO;
	}
	s->established = true;
	return 1;
}

static void layer_free_session(struct session *s);

static int tx(struct rs_conn *c)
{
	struct session *s = session_of(c);
	struct iovec iov[RS_CONN_IOV];
	int n, rc;
	size_t done = 0;

	if (!s->established)
		return 0; /* the owner's bytes wait for the handshake */
	if (s->shut) {
		rs_outq_consume(&c->out, &c->loop->chunks, c->out.bytes);
		return 0;
	}
	n = rs_outq_iov(&c->out, iov, RS_CONN_IOV);
	for (int i = 0; i < n; i++) {
		rc = wolfSSL_write(s->ssl, iov[i].iov_base, (int)iov[i].iov_len);
		if (rc != (int)iov[i].iov_len) {
			set_error(s, wolfSSL_get_error(s->ssl, rc), "write");
			return -EPROTO;
		}
		done += iov[i].iov_len;
	}
	rs_outq_consume(&c->out, &c->loop->chunks, done);
	return 0;
}

static int rx(struct rs_conn *c, const char *p, size_t n)
{
	struct session *s = session_of(c);
	char plain[16384];
	int rc;

	if (s->sniffing) {
		/* RFC 8446 §5.1: a TLS connection opens with a handshake record
		 * (content type 22); anything else is taken as clear text and the
		 * layer steps aside. */
		s->sniffing = false;
		if ((unsigned char)p[0] != 22) {
			rs_conn_set_layer(c, NULL, NULL);
			layer_free_session(s);
			rs_conn_deliver(c, p, n);
			return 0;
		}
	}
	s->rx = p;
	s->rx_len = n;
	if (!s->established) {
		rc = handshake(c, s);
		if (rc <= 0)
			return rc;
		/* What the owner queued meanwhile goes now. */
		if ((rc = tx(c)) < 0)
			return rc;
	}
	while (!rs_conn_closing(c)) {
		rc = wolfSSL_read(s->ssl, plain, sizeof plain);
		if (rc <= 0) {
			rc = wolfSSL_get_error(s->ssl, rc);
			if (rc == WOLFSSL_ERROR_WANT_READ || rc == WOLFSSL_ERROR_WANT_WRITE)
				break;
			if (rc == WOLFSSL_ERROR_ZERO_RETURN) /* close_notify */
				break;
			set_error(s, rc, "read");
			return -EPROTO;
		}
		rs_conn_deliver(c, plain, (size_t)rc);
	}
	s->rx_len = 0;
	return 0;
}

static int eof(struct rs_conn *c)
{
	struct session *s = session_of(c);

	/* A close before the handshake ended is the handshake failing. */
	if (!s->established) {
		snprintf(s->error, sizeof s->error, "TLS_error:connection closed during handshake");
		return -ECONNRESET;
	}
	return 0;
}

/* RFC 8446 §6.1: close_notify before the write side closes, after what the
 * owner queued; so the peer knows the response was not cut. A connection
 * still in its handshake just closes. */
static void shut(struct rs_conn *c)
{
	struct session *s = session_of(c);

	if (!s->established || s->shut)
		return;
	while (c->out.bytes) /* tx encodes RS_CONN_IOV chunks at a time */
		if (tx(c) < 0)
			return;
	wolfSSL_shutdown(s->ssl); /* queues the alert; the peer's is not awaited */
	s->shut = true;
}

static void layer_free_session(struct session *s)
{
	wolfSSL_free(s->ssl);
	rs_tls_ctx_free((struct rs_tls_ctx *)s->ctx);
	free(s);
}

static void layer_free(struct rs_conn *c)
{
	layer_free_session(session_of(c));
}

static const struct rs_conn_layer_ops tls_ops = {
	.rx = rx,
	.tx = tx,
	.eof = eof,
	.close = shut,
	.free = layer_free,
};

/* Chains s into h (NULL as ""): each string seeds the next one's hash, so
 * "ab","c" and "a","bc" differ. xxHash, as the rest of the project hashes. */
static uint64_t chain(uint64_t h, const char *s)
{
	return XXH3_64bits_withSeed(s ? s : "", s ? strlen(s) : 0, h);
}

static int add_san(struct rs_tls_ctx *t, const char *name)
{
	char *d = strdup(name);

	if (!d)
		return -ENOMEM;
	t->sans[t->nsans++] = d;
	return 0;
}

/* Forward-secret AEAD suites only: TLS 1.3's, and for TLS 1.2 ECDHE with
 * AES-GCM or ChaCha20-Poly1305 (the set; Istio's mesh default has
 * no CBC either). No CBC (LUCKY13), no static RSA, no pre-RFC ChaCha. */
static const char aead_suites[] =
	"TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";

/* The lowest TLS version between sidecars (the inbound port, and
 * ISTIO_MUTUAL origination): 1.3 unless --tls-min-version 1.2 (Istio's
 * meshMTLS.minProtocolVersion). Set once at start-up, before any shard. */
static int mesh_min_version = WOLFSSL_TLSV1_3;

void rs_tls_set_mesh_min_version(bool tls12)
{
	mesh_min_version = tls12 ? WOLFSSL_TLSV1_2 : WOLFSSL_TLSV1_3;
}

struct rs_tls_ctx *rs_tls_client_ctx_new(const struct rs_client_tls *cfg,
					 const char *const *more_sans, size_t nmore, char *err,
					 size_t errlen)
{
	struct rs_tls_ctx *t = calloc(1, sizeof *t);
	const char *what = "out of memory";

	if (!t)
		goto fail;
	t->refs = 1;
	t->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	/* To another sidecar, the mesh's floor; to other servers (SIMPLE,
	 * MUTUAL) TLS 1.2 and up, as Envoy's client default. */
	if (!t->ctx || wolfSSL_CTX_set_cipher_list(t->ctx, aead_suites) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_SetMinVersion(t->ctx, cfg->mode == RS_TLS_ISTIO_MUTUAL
						 ? mesh_min_version
						 : WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS)
		goto fail;
	/* The destination's certificate is verified unless told not to
	 * (insecureSkipVerify); with OpenSSL compatibility built in, wolfSSL's
	 * own default is not to, so it is said outright. */
	if (cfg->insecure_skip_verify) {
		wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_NONE, NULL);
	} else {
		what = "caCertificates: not a readable PEM bundle";
		if (!cfg->ca_certificates ||
		    wolfSSL_CTX_load_verify_locations(t->ctx, cfg->ca_certificates, NULL) !=
			    WOLFSSL_SUCCESS)
			goto fail;
		wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_PEER, NULL);
	}
	if (cfg->mode == RS_TLS_MUTUAL || cfg->mode == RS_TLS_ISTIO_MUTUAL) {
		what = "clientCertificate: not a readable PEM certificate chain";
		if (!cfg->client_certificate ||
		    wolfSSL_CTX_use_certificate_chain_file(t->ctx, cfg->client_certificate) !=
			    WOLFSSL_SUCCESS)
			goto fail;
		what = "privateKey: not a readable PEM key for clientCertificate";
		if (!cfg->private_key ||
		    wolfSSL_CTX_use_PrivateKey_file(t->ctx, cfg->private_key, WOLFSSL_FILETYPE_PEM) !=
			    WOLFSSL_SUCCESS)
			goto fail;
	}
	wolfSSL_CTX_SetIORecv(t->ctx, io_recv);
	wolfSSL_CTX_SetIOSend(t->ctx, io_send);
	/* Ask for tickets (RFC 5077 under TLS 1.2; TLS 1.3 sends them anyway):
	 * a shard's next connection to the server resumes. */
	wolfSSL_CTX_UseSessionTicket(t->ctx);
	/* Between sidecars, Istio's own value first: an Envoy sidecar's
	 * inbound listener picks its HTTP chain by it. */
	t->alpn = cfg->mode == RS_TLS_ISTIO_MUTUAL ? "istio-http/1.1,http/1.1" : "http/1.1";
	t->alpn_h2 = cfg->mode == RS_TLS_ISTIO_MUTUAL ? "istio-h2,h2" : "h2";
	what = "out of memory";
	if (cfg->nsubject_alt_names + nmore) {
		t->sans = calloc(cfg->nsubject_alt_names + nmore, sizeof *t->sans);
		if (!t->sans)
			goto fail;
		for (size_t i = 0; i < cfg->nsubject_alt_names; i++)
			if (add_san(t, cfg->subject_alt_names[i]) < 0)
				goto fail;
		for (size_t i = 0; i < nmore; i++)
			if (add_san(t, more_sans[i]) < 0)
				goto fail;
	}
	if (cfg->sni && !(t->sni = strdup(cfg->sni)))
		goto fail;
	t->key = chain(chain(chain(chain(chain((uint64_t)cfg->mode, cfg->ca_certificates),
					 cfg->client_certificate),
				   cfg->private_key),
			     cfg->sni),
		       cfg->insecure_skip_verify ? "insecure" : "verify");
	for (size_t i = 0; i < t->nsans; i++)
		t->key = chain(t->key, t->sans[i]);
	return t;
fail:
	snprintf(err, errlen, "%s", what);
	rs_tls_ctx_free(t);
	return NULL;
}

void rs_tls_ctx_free(struct rs_tls_ctx *t)
{
	/* Sessions hold references: a context replaced by a reload (a new
	 * snapshot, rotated certificates) lives on with the connections made
	 * from it. */
	if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (t->ctx)
		wolfSSL_CTX_free(t->ctx);
	for (size_t i = 0; i < t->nsans; i++)
		free(t->sans[i]);
	free(t->sans);
	free(t->sni);
	free(t);
}

struct rs_tls_ctx *rs_tls_server_ctx_new(const char *cert, const char *key, const char *ca,
					 char *err, size_t errlen)
{
	struct rs_tls_ctx *t = calloc(1, sizeof *t);
	const char *what = "out of memory";
	char *bundle = NULL;
	size_t bundle_len = 0;

	if (!t)
		goto fail;
	t->refs = 1;
	t->server = true;
	t->ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	if (!t->ctx || wolfSSL_CTX_set_cipher_list(t->ctx, aead_suites) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_SetMinVersion(t->ctx, mesh_min_version) != WOLFSSL_SUCCESS)
		goto fail;
	what = "--cert: not a readable PEM certificate chain";
	if (wolfSSL_CTX_use_certificate_chain_file(t->ctx, cert) != WOLFSSL_SUCCESS)
		goto fail;
	what = "--key: not a readable PEM key for --cert";
	if (wolfSSL_CTX_use_PrivateKey_file(t->ctx, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		goto fail;
	/* The bundle is read once: what wolfSSL trusts is what the ticket
	 * key is derived from. */
	what = "--ca: not a readable PEM bundle";
	if (rs_tls_read_file(ca, 1u << 24, &bundle, &bundle_len) < 0 ||
	    wolfSSL_CTX_load_verify_buffer(t->ctx, (const unsigned char *)bundle, (long)bundle_len,
					   WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		goto fail;
	/* Mutual TLS: a peer without a certificate from the mesh's roots is
	 * refused in the handshake. */
	wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			       NULL);
	wolfSSL_CTX_SetIORecv(t->ctx, io_recv);
	wolfSSL_CTX_SetIOSend(t->ctx, io_send);
	/* Tickets that keep the peer's identity (tickets.c), good for two
	 * hours and no longer than the peer's certificate. No session cache:
	 * a TLS 1.2 client resuming by session ID would come back without its
	 * certificate. (wolfSSL_CTX_set_timeout returns the old timeout when
	 * built for OpenSSL's error codes, as Debian's is: not checked.) */
	what = "out of memory";
	if (rs_tls__bundle_hash(t->bundle_hash, bundle, bundle_len) < 0 ||
	    wolfSSL_CTX_set_TicketEncCb(t->ctx, ticket_cb) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_TicketEncCtx(t->ctx, t) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_TicketHint(t->ctx, RS_TLS_TICKET_LIFETIME) != WOLFSSL_SUCCESS)
		goto fail;
	wolfSSL_CTX_set_timeout(t->ctx, RS_TLS_TICKET_LIFETIME);
	wolfSSL_CTX_set_session_cache_mode(t->ctx, WOLFSSL_SESS_CACHE_OFF);
	/* HTTP/2 and HTTP/1.1 on the same port, and Istio's names for each
	 * (a sidecar's offer): the connection's first bytes tell which one
	 * the client speaks (its preface, RFC 9113 §3.4), so the choice here
	 * only has to be one the client offered. */
	t->alpn = "h2,http/1.1,istio-h2,istio-http/1.1";
	rs_tls_free_secret(bundle, bundle_len);
	return t;
fail:
	snprintf(err, errlen, "%s", what);
	rs_tls_free_secret(bundle, bundle_len);
	rs_tls_ctx_free(t);
	return NULL;
}

/* A session of t for c, with t's ALPN offer and, for a client, the SNI;
 * NULL when out of memory. */
static struct session *session_new(struct rs_conn *c, const struct rs_tls_ctx *t, const char *sni,
				   bool h2)
{
	struct session *s = calloc(1, sizeof *s);
	char alpn[64];

	if (!s)
		return NULL;
	s->ctx = rs_tls_ctx_ref(t);
	s->ssl = wolfSSL_new(t->ctx);
	if (!s->ssl)
		goto fail;
	snprintf(alpn, sizeof alpn, "%s", h2 && t->alpn_h2 ? t->alpn_h2 : t->alpn);
	wolfSSL_SetIOReadCtx(s->ssl, s);
	wolfSSL_SetIOWriteCtx(s->ssl, c);
	if ((sni && *sni &&
	     wolfSSL_UseSNI(s->ssl, WOLFSSL_SNI_HOST_NAME, sni, (unsigned short)strlen(sni)) !=
		     WOLFSSL_SUCCESS) ||
	    wolfSSL_UseALPN(s->ssl, alpn, (unsigned)strlen(alpn), WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) !=
		    WOLFSSL_SUCCESS)
		goto fail;
	return s;
fail:
	layer_free_session(s);
	return NULL;
}

int rs_tls_server_attach(struct rs_conn *c, const struct rs_tls_ctx *t, bool sniff)
{
	struct session *s = session_new(c, t, NULL, false);

	if (!s)
		return -ENOMEM;
	s->sniffing = sniff;
	rs_conn_set_layer(c, &tls_ops, s);
	return 0;
}

const char *rs_tls_peer_id(const struct rs_conn *c)
{
	return c->layer == &tls_ops && session_of(c)->peer.id[0] ? session_of(c)->peer.id : NULL;
}

const char *rs_tls_peer_hash(const struct rs_conn *c)
{
	return c->layer == &tls_ops && session_of(c)->peer_hash[0] ? session_of(c)->peer_hash : NULL;
}

bool rs_tls_on(const struct rs_conn *c)
{
	return c->layer == &tls_ops;
}

struct rs_tls_ctx *rs_tls_ctx_ref(const struct rs_tls_ctx *t)
{
	struct rs_tls_ctx *m = (struct rs_tls_ctx *)t;

	if (m)
		atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

uint64_t rs_tls_ctx_key(const struct rs_tls_ctx *t)
{
	return t ? t->key : 0;
}

int rs_tls_client_attach(struct rs_conn *c, const struct rs_tls_ctx *t, const char *host,
			 struct rs_tls_resume *resume, bool h2)
{
	struct session *s = session_new(c, t, t->sni ? t->sni : host, h2);

	if (!s)
		return -ENOMEM;
	/* A ticket from an earlier connection to the same endpoint: the
	 * server may resume instead of a full handshake (RFC 8446 §2.2). */
	if (resume)
		wolfSSL_set_session(s->ssl, (WOLFSSL_SESSION *)resume);
	rs_conn_set_layer(c, &tls_ops, s);
	/* The ClientHello goes out with the first flush. */
	return handshake(c, s) < 0 ? -EPROTO : 0;
}

struct rs_tls_resume *rs_tls_resume_take(const struct rs_conn *c)
{
	if (c->layer != &tls_ops || !session_of(c)->established)
		return NULL;
	return (struct rs_tls_resume *)wolfSSL_get1_session(session_of(c)->ssl);
}

void rs_tls_resume_free(struct rs_tls_resume *r)
{
	if (r)
		wolfSSL_SESSION_free((WOLFSSL_SESSION *)r);
}

bool rs_tls_resumed(const struct rs_conn *c)
{
	return c->layer == &tls_ops && wolfSSL_session_reused(session_of(c)->ssl) == 1;
}

void rs_tls_thread_done(void)
{
#ifdef FP_ECC
	/* wolfSSL caches ECC fixed points per thread; each thread frees its own. */
	wc_ecc_fp_free();
#endif
}

const char *rs_tls_error(const struct rs_conn *c)
{
	return c->layer == &tls_ops && session_of(c)->error[0] ? session_of(c)->error : NULL;
}
