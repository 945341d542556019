/* TLS on shard connections (src/tls/session.c): wolfSSL as a layer of
 * rs_conn, so that no TLS call touches the socket or blocks. */
#ifndef RINGSIDE_TLS_SESSION_H
#define RINGSIDE_TLS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringside/config-networking-t.h"
#include "ringside/net-t.h"

struct rs_tls_ctx;
struct rs_tls_resume; /* a session to resume: what a server's ticket lets a client skip */

/* A client context for ClientTLSSettings (SIMPLE or MUTUAL; ISTIO_MUTUAL is
 * MUTUAL with the workload's files): the CA to verify the destination with
 * (unless insecureSkipVerify), the client certificate and key (MUTUAL), the
 * names the destination's certificate must carry one of (subjectAltNames,
 * and more_sans) and the SNI. Built on the main thread, used by every
 * shard. NULL with a message in err when a file cannot be read. */
/* TLS 1.2 allowed between sidecars (default: 1.3 only). Start-up only. */
void rs_tls_set_mesh_min_version(bool tls12);
struct rs_tls_ctx *rs_tls_client_ctx_new(const struct rs_client_tls *cfg,
					 const char *const *more_sans, size_t nmore, char *err,
					 size_t errlen);
/* Contexts are shared by reference: the builder's, and one per connection
 * made from it. _free drops one; the last frees the context. */
struct rs_tls_ctx *rs_tls_ctx_ref(const struct rs_tls_ctx *t);
void rs_tls_ctx_free(struct rs_tls_ctx *t);
/* A hash of the settings: connections made under equal settings may be
 * pooled together; 0 for no context (plaintext). */
uint64_t rs_tls_ctx_key(const struct rs_tls_ctx *t);
/* Starts TLS as a client on a connected c: the ClientHello goes with the
 * next flush, and what the owner queues is sent once the handshake is done.
 * host is the SNI when the context has none; resume (may be NULL) a session
 * of an earlier connection to the same server; h2: offer HTTP/2 by ALPN
 * (Istio's istio-h2 first between sidecars). 0 or a negative errno. */
int rs_tls_client_attach(struct rs_conn *c, const struct rs_tls_ctx *t, const char *host,
			 struct rs_tls_resume *resume, bool h2);
/* The session of c's handshake, with the server's ticket when one came: a
 * copy the caller owns (NULL when there is none), for a later
 * rs_tls_client_attach to the same server. */
struct rs_tls_resume *rs_tls_resume_take(const struct rs_conn *c);
void rs_tls_resume_free(struct rs_tls_resume *r);
/* Whether c's handshake resumed an earlier session. */
bool rs_tls_resumed(const struct rs_conn *c);
/* The inbound context: the workload's certificate chain and key, and the
 * mesh's roots, which a peer's certificate must chain to (mutual TLS). NULL
 * with a message in err when a file cannot be read. */
struct rs_tls_ctx *rs_tls_server_ctx_new(const char *cert, const char *key, const char *ca,
					 char *err, size_t errlen);
/* Starts TLS as a server on an accepted c. sniff (PERMISSIVE): if the first
 * bytes are not a TLS handshake record, the layer steps aside and they are
 * read in clear. 0 or a negative errno. */
int rs_tls_server_attach(struct rs_conn *c, const struct rs_tls_ctx *t, bool sniff);
/* The peer's SPIFFE ID from its certificate, once the handshake is done;
 * NULL without TLS or without one. */
const char *rs_tls_peer_id(const struct rs_conn *c);
/* On a server: the SHA-256 of the peer's certificate (DER) in hex, or NULL. */
const char *rs_tls_peer_hash(const struct rs_conn *c);
/* Whether c is carried over TLS. */
bool rs_tls_on(const struct rs_conn *c);
/* Frees what wolfSSL keeps per thread: called by each thread that did TLS,
 * before it ends. */
void rs_tls_thread_done(void);
/* Why TLS failed on c, in Envoy's words (`TLS_error:...`); NULL if it did not. */
const char *rs_tls_error(const struct rs_conn *c);

#endif
