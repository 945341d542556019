/* ringside-load's connections and the codecs (HTTP/1.1, HTTP/2) and TLS layer
 * they carry. Shared by engine.c, h1.c, h2.c and tls.c only. */
#ifndef RINGSIDE_LOADGEN_CONN_H
#define RINGSIDE_LOADGEN_CONN_H

#include <llhttp.h>
#include <nghttp2/nghttp2.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "load.h"

struct lg_engine;
struct lg_conn;

/* One request on the wire. */
struct lg_req {
	uint64_t due;  /* ns: when the schedule wanted it */
	uint64_t sent; /* ns: when it was handed to the socket layer */
	int status;
	int32_t stream_id;       /* HTTP/2 */
	struct lg_req *next_free; /* HTTP/2: free list */
};

/* Bytes waiting for the socket. One send is in flight at a time; what is
 * written meanwhile goes to `pend`, so that the buffer the kernel reads is
 * never moved by a realloc. */
struct lg_buf {
	uint8_t *p;
	size_t len, cap;
};

enum lg_conn_state {
	LG_CS_IDLE,       /* no socket */
	LG_CS_CONNECTING, /* connect submitted */
	LG_CS_HANDSHAKE,  /* TLS handshake */
	LG_CS_OPEN,       /* taking requests */
	LG_CS_CLOSING,    /* shut down, waiting for its operations to complete */
};

/* A protocol on a connection. Each returns 0; 1 when the connection is to be
 * closed without error (the server said so, or it is done); or a negative
 * lg_error to close the connection with that error. */
struct lg_codec {
	int (*open)(struct lg_conn *c);  /* connection ready: e.g. the preface */
	int (*submit)(struct lg_conn *c, struct lg_req *r);
	int (*input)(struct lg_conn *c, const uint8_t *p, size_t n);
	int (*flush)(struct lg_conn *c); /* write what the codec has queued */
	unsigned (*capacity)(const struct lg_conn *c); /* requests it can take now */
	int (*eof)(struct lg_conn *c);   /* the peer closed: e.g. a body ending with the connection */
	void (*close)(struct lg_conn *c, int err); /* fail what is outstanding */
};

extern const struct lg_codec lg_h1_codec;
extern const struct lg_codec lg_h2_codec;

struct lg_conn {
	struct lg_engine *e;
	unsigned idx;
	int fd;
	enum lg_conn_state state;
	unsigned ops;       /* operations the kernel still holds */
	bool sending;       /* a send is in flight (ops counts it too) */
	bool dirty;         /* on the engine's flush list */
	bool queued;        /* on the engine's ready queue */
	bool peer_closed;
	uint64_t served;    /* responses on this connection */
	uint64_t retry_at;  /* ns: reconnect not before (after a failed connect) */

	struct lg_buf out;  /* being sent */
	struct lg_buf pend; /* written since */
	size_t out_off;
	uint8_t *rbuf;      /* recv target */
	size_t roff, rlen;  /* TLS: ciphertext not yet handed to wolfSSL */

	WOLFSSL *ssl;

	/* HTTP/1.1 */
	llhttp_t parser;
	struct lg_req h1req;
	bool h1busy;
	/* HTTP/2 */
	nghttp2_session *h2;
	struct lg_req *reqs;      /* owns: opts->streams records */
	struct lg_req *free_reqs;
	unsigned h2active;
};

/* Called by codecs. */
int lg_conn_write(struct lg_conn *c, const void *p, size_t n); /* through TLS when on */
void lg_conn_done(struct lg_conn *c, struct lg_req *r, int status);
void lg_conn_fail(struct lg_conn *c, struct lg_req *r, enum lg_error err);
/* The server refused the request unprocessed (HTTP/2 REFUSED_STREAM, or a
 * stream above a GOAWAY's last id): it is sent again, keeping its due time. */
void lg_conn_refused(struct lg_conn *c, struct lg_req *r);
const struct lg_opts *lg_conn_opts(const struct lg_conn *c);
/* The request bytes for HTTP/1.1, built once. */
void lg_conn_h1_request(const struct lg_conn *c, const uint8_t **p, size_t *n);
/* The header list for HTTP/2, built once. */
void lg_conn_h2_headers(const struct lg_conn *c, const nghttp2_nv **nv, size_t *n);

int lg_buf_put(struct lg_buf *b, const void *p, size_t n);

/* TLS (tls.c). */
struct lg_tls;
struct lg_tls *lg_tls_new(const struct lg_opts *o);
void lg_tls_free(struct lg_tls *t);
/* Starts TLS on c; 0 or -1. */
int lg_tls_attach(struct lg_tls *t, struct lg_conn *c);
/* Advances the handshake: 1 done, 0 wants more input, negative lg_error. */
int lg_tls_handshake(struct lg_conn *c);
/* Decrypts what rbuf holds and feeds the codec; 0 or negative lg_error. */
int lg_tls_input(struct lg_conn *c, const struct lg_codec *codec);
int lg_tls_write(struct lg_conn *c, const void *p, size_t n);
const char *lg_tls_alpn(struct lg_conn *c);
void lg_tls_detach(struct lg_conn *c);

#endif
