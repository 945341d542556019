/* Calls between the files of proxy/: the stream in the middle, the HTTP/1.1
 * connections on each side. */
#ifndef RINGSIDE_PROXY_INTERNAL_H
#define RINGSIDE_PROXY_INTERNAL_H

#include <netinet/in.h>
#include "ringside/core.h"
#include "ringside/http.h"
#include "ringside/net.h"
#include "ringside/proxy.h"
#include "ringside/telemetry.h"
#include "ringside/upstream.h"

/* Above this many queued output bytes the producing side stops reading: the
 * bound on what one stream buffers in each direction. */
#define RS_HIGH_WATER (256u * 1024)
/* Bytes of pipelined requests read ahead while a response is pending. */
#define RS_PIPELINE_READAHEAD (64u * 1024)

/* downstream.c */
/* The port of the connection's original destination (read already). */
static inline uint32_t rs_proxy__orig_dst_port(const struct rs_ds *ds)
{
	return ntohs(ds->orig_dst.ss_family == AF_INET6
			     ? ((const struct sockaddr_in6 *)&ds->orig_dst)->sin6_port
			     : ((const struct sockaddr_in *)&ds->orig_dst)->sin_port);
}

/* A connection accepted on the outbound port, or the inbound one. */
void rs_proxy__ds_accept(struct rs_worker *w, int fd, bool inbound);
/* Writing the response, framed for the client's protocol; each returns 0
 * or -ENOMEM. response_head may set st->close_after (HTTP/1.0 clients,
 * drain, half-close). */
int rs_proxy__ds_response_head(struct rs_ds *ds, struct rs_stream *st);
int rs_proxy__ds_response_data(struct rs_ds *ds, struct rs_stream *st, const char *p, size_t n);
int rs_proxy__ds_response_end(struct rs_ds *ds, struct rs_stream *st);
int rs_proxy__ds_local_reply(struct rs_ds *ds, struct rs_stream *st, int status,
			     const char *text);
/* 100 Continue, to clients that understand it. */
void rs_proxy__ds_continue(struct rs_ds *ds, struct rs_stream *st);
void rs_proxy__ds_flush(struct rs_ds *ds);
/* The response is complete (and queued): free the stream; HTTP/1.x then
 * serves the next request or closes. */
void rs_proxy__ds_stream_done(struct rs_ds *ds, struct rs_stream *st);
/* Drops the connection and its streams at once. */
void rs_proxy__ds_abort(struct rs_ds *ds);
/* Ends a stream that cannot go on (its response cut): HTTP/2 resets the
 * stream (the stream is freed later, never inside the caller); HTTP/1.x
 * resets the connection, the only way to tell the client. */
void rs_proxy__ds_reset(struct rs_ds *ds, struct rs_stream *st);
/* The upstream of st drained: read (HTTP/2: accept) the request body again. */
void rs_proxy__ds_unblock(struct rs_ds *ds, struct rs_stream *st);
/* Whether the client's side of st holds as much response as it may: its
 * upstream stops reading until ds_unblock's counterpart, us_unblock. */
bool rs_proxy__ds_backlogged(const struct rs_stream *st);
void rs_proxy__ds_drain(struct rs_ds *ds);

/* downstream_h2.c: the same calls for an HTTP/2 connection (ds->h2). */
/* Takes the connection over as HTTP/2 (its preface came). 0 or -ENOMEM. */
int rs_proxy__h2_start(struct rs_ds *ds);
void rs_proxy__h2_recv(struct rs_ds *ds, const char *p, size_t n);
void rs_proxy__h2_free(struct rs_ds *ds);
unsigned rs_proxy__h2_streams(const struct rs_ds *ds);
int rs_proxy__h2_response_head(struct rs_ds *ds, struct rs_stream *st);
int rs_proxy__h2_response_data(struct rs_ds *ds, struct rs_stream *st, const char *p, size_t n);
int rs_proxy__h2_response_end(struct rs_ds *ds, struct rs_stream *st);
int rs_proxy__h2_local_reply(struct rs_ds *ds, struct rs_stream *st, int status,
			     const char *text);
void rs_proxy__h2_continue(struct rs_ds *ds, struct rs_stream *st);
void rs_proxy__h2_flush(struct rs_ds *ds);
/* The connection's queue went out: DATA that waited for room, then the
 * upstreams stopped because of it. */
void rs_proxy__h2_flushed(struct rs_ds *ds);
void rs_proxy__h2_stream_done(struct rs_ds *ds, struct rs_stream *st);
void rs_proxy__h2_reset(struct rs_ds *ds, struct rs_stream *st);
bool rs_proxy__h2_backlogged(const struct rs_stream *st);
void rs_proxy__h2_unblock(struct rs_ds *ds, struct rs_stream *st);
void rs_proxy__h2_drain(struct rs_ds *ds);

/* upstream.c */
/* A pooled connection to ep, started for st, or NULL when none is idle. */
struct rs_us *rs_proxy__us_take_idle(struct rs_worker *w, const struct rs_endpoint *ep,
				     struct rs_stream *st);
/* A new connection to ep for st; cb: the cluster whose connection budget it
 * took a token of (given back when it closes), or NULL. */
struct rs_us *rs_proxy__us_open(struct rs_worker *w, const struct rs_endpoint *ep,
				struct rs_stream *st, struct rs_cluster_state *cb);
/* Sends a copy of req with its whole body (blen bytes) to ep on a
 * connection of its own, and drops what comes back (VirtualService mirror).
 * 0, -EBUSY (too many in flight on this shard) or another negative errno. */
int rs_proxy__us_mirror(struct rs_worker *w, const struct rs_endpoint *ep,
			const struct rs_msg *req, const char *body, size_t blen);
/* Closes idle connections of clusters that have requests waiting. */
void rs_proxy__us_shed_idle(struct rs_worker *w);
/* Detaches st; an HTTP/1.1 connection that can carry another request goes
 * back to the pool, any other is closed; on HTTP/2 the stream is reset if
 * it is still open, and the connection stays. */
void rs_proxy__us_release(struct rs_us *us, struct rs_stream *st, bool reusable);
/* Sends what was written for the connection's streams. */
void rs_proxy__us_flush(struct rs_us *us);
/* Whether the upstream side of st holds as much request body as it may. */
bool rs_proxy__us_backlogged(const struct rs_stream *st);
/* Writing the request, framed for the upstream's protocol; 0 or -ENOMEM. */
int rs_proxy__us_request_head(struct rs_us *us, struct rs_stream *st);
int rs_proxy__us_request_data(struct rs_us *us, struct rs_stream *st, const char *p, size_t n);
int rs_proxy__us_request_end(struct rs_us *us, struct rs_stream *st);
/* The client's side of st drained: read (HTTP/2: accept) its response again. */
void rs_proxy__us_unblock(struct rs_us *us, struct rs_stream *st);
void rs_proxy__us_sweep(struct rs_worker *w);
void rs_proxy__us_close_idle(struct rs_worker *w);

/* upstream_h2.c: the same for an HTTP/2 connection (us->h2). */
int rs_proxy__h2u_start(struct rs_us *us);
void rs_proxy__h2u_free(struct rs_us *us);
bool rs_proxy__h2u_has_room(const struct rs_us *us, uint32_t cluster_max);
void rs_proxy__h2u_attach(struct rs_us *us, struct rs_stream *st);
void rs_proxy__h2u_fail_all(struct rs_us *us, enum rs_rflag flag, const char *text);
void rs_proxy__h2u_flush(struct rs_us *us);
void rs_proxy__h2u_flushed(struct rs_us *us);
void rs_proxy__h2u_recv(struct rs_us *us, const char *p, size_t n);
int rs_proxy__h2u_request_head(struct rs_us *us, struct rs_stream *st);
int rs_proxy__h2u_request_data(struct rs_us *us, struct rs_stream *st, const char *p, size_t n);
int rs_proxy__h2u_request_end(struct rs_us *us, struct rs_stream *st);
bool rs_proxy__h2u_backlogged(const struct rs_stream *st);
void rs_proxy__h2u_unblock(struct rs_us *us, struct rs_stream *st);
void rs_proxy__h2u_release(struct rs_us *us, struct rs_stream *st);

/* stream.c */
struct rs_stream *rs_proxy__stream_new(struct rs_ds *ds);
void rs_proxy__stream_free(struct rs_stream *st);
void rs_proxy__stream_request_head(struct rs_stream *st);
void rs_proxy__stream_request_data(struct rs_stream *st, const char *p, size_t n);
void rs_proxy__stream_request_end(struct rs_stream *st);
void rs_proxy__stream_response_head(struct rs_stream *st);
/* A response head arrived: true when the retry policy sends the request
 * again instead (the upstream connection is then let go). */
bool rs_proxy__stream_retry_response(struct rs_stream *st);
/* A connection went idle or closed: requests waiting for one may go (soon,
 * from a timer, never inside the caller). */
void rs_proxy__stream_kick(struct rs_worker *w);
/* Whether a request of this shard waits for a connection of cluster cb: a
 * connection released here then stays for it rather than closing. */
bool rs_proxy__stream_waits_here(const struct rs_worker *w, const struct rs_cluster_state *cb);
void rs_proxy__stream_response_data(struct rs_stream *st, const char *p, size_t n);
void rs_proxy__stream_response_end(struct rs_stream *st, bool keep_alive);
/* Envoy's text for a connection that could not be made (UF). */
extern const char rs_proxy__connect_failure_text[];
void rs_proxy__stream_upstream_failed(struct rs_stream *st, enum rs_rflag flag, int status,
				      const char *text);
void rs_proxy__stream_local_reply(struct rs_stream *st, enum rs_rflag flag, int status,
				  const char *text);

/* Header-block accumulation shared by both sides' llhttp callbacks. */
int rs_proxy__hdr_field(struct rs_msg *m, bool *in_field, const char *p, size_t n);
/* -EINVAL for a byte not allowed in a field name (RFC 9110 §5.6.2 tchar). */
int rs_proxy__hdr_field_check(const char *p, size_t n);
/* -EINVAL for a control byte in the value, or for obs-fold: a continuation
 * of the value that llhttp found after a line break (RFC 9112 §5.2). base is
 * where the current execute began, prev_last the byte before it. */
int rs_proxy__hdr_value(struct rs_msg *m, bool *in_field, const char *p, size_t n,
			const char *base, char prev_last);
/* Keeps unparsed bytes; -ENOMEM fails the connection, not the process. */
int rs_proxy__pend_stash(struct rs_parse_buf *b, const char *p, size_t n);

#endif
