#ifndef RINGSIDE_HTTP_H
#define RINGSIDE_HTTP_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "ringside/http-t.h"

/* --- messages (msg.c) --- */
void rs_msg_init(struct rs_msg *m);
void rs_msg_reset(struct rs_msg *m);
void rs_msg_free(struct rs_msg *m);
/* Appends bytes to the message buffer; returns their offset or -1 (ENOMEM). */
int64_t rs_msg_append(struct rs_msg *m, const char *p, size_t n);
/* Points f (a pseudo-field: method, path, authority) at a copy of v
 * appended to the buffer. 0 or -ENOMEM. */
int rs_msg_set_value(struct rs_msg *m, struct rs_hdr *f, const char *v, size_t len);
/* Appends an empty header entry whose offsets the caller fills. */
struct rs_hdr *rs_msg_new_hdr(struct rs_msg *m);
/* Adds a complete header field. Returns 0 or -ENOMEM. */
int rs_msg_add_header(struct rs_msg *m, const char *name, size_t nlen, const char *value,
		      size_t vlen);
static inline const char *rs_msg_str(const struct rs_msg *m, uint32_t off)
{
	return m->buf + off;
}
/* The first header named name (case-insensitive), or NULL. */
const struct rs_hdr *rs_msg_find(const struct rs_msg *m, const char *name);
/* Removes every header named name; returns how many. */
unsigned rs_msg_remove(struct rs_msg *m, const char *name, size_t nlen);
/* Removes the hop-by-hop fields of RFC 9110 §7.6.1: Connection, the fields it
 * names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade. Returns
 * true when Connection listed "close". */
bool rs_msg_strip_hop_by_hop(struct rs_msg *m);
/* True unless a Transfer-Encoding names a coding other than chunked (gzip,
 * deflate, ...): re-framing such a body would drop that coding. */
bool rs_msg_only_chunked(const struct rs_msg *m);
bool rs_hdr_name_is(const struct rs_msg *m, const struct rs_hdr *h, const char *name,
		    size_t nlen);
/* The value of parameter name (nlen bytes) in a query q (qlen bytes, after
 * the '?'), as written, into *len; NULL when it is absent. Inline: route
 * matching runs it per match block. */
static inline const char *rs_query_param(const char *q, size_t qlen, const char *name,
					 size_t nlen, size_t *len)
{
	const char *end = q + qlen;

	while (q < end) {
		const char *amp = (const char *)memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;
		const char *eq = (const char *)memchr(q, '=', (size_t)(stop - q));

		if ((size_t)((eq ? eq : stop) - q) == nlen && memcmp(q, name, nlen) == 0) {
			*len = eq ? (size_t)(stop - eq - 1) : 0;
			return eq ? eq + 1 : stop;
		}
		q = stop + 1;
	}
	return NULL;
}
/* True when a comma-separated header value holds token (case-insensitive). */
bool rs_value_has_token(const char *v, size_t vlen, const char *token);
const char *rs_status_reason(int status);
enum rs_method rs_method_from(const char *p, size_t n);


/* --- HTTP/1.1 (h1.c) --- */
struct rs_outq;
struct rs_chunk_cache;

/* True when every byte may appear in a field value (RFC 9110 §5.5): no NUL,
 * no CR or LF (so no obs-fold and no bare CR), no other control but HTAB. */
bool rs_h1_value_ok(const char *p, size_t n);
/* Writes the request line and fields, then the framing body requires. */
int rs_h1_encode_request_head(struct rs_outq *q, struct rs_chunk_cache *cc,
			      const struct rs_msg *m);
/* Writes the status line and fields. chunked: add Transfer-Encoding: chunked;
 * close: add Connection: close. */
int rs_h1_encode_response_head(struct rs_outq *q, struct rs_chunk_cache *cc,
			       const struct rs_msg *m, bool chunked, bool close);
int rs_h1_encode_chunk(struct rs_outq *q, struct rs_chunk_cache *cc, const char *p, size_t n);
int rs_h1_encode_last_chunk(struct rs_outq *q, struct rs_chunk_cache *cc);
/* A complete response with a text body, for answers the proxy gives itself. */
int rs_h1_encode_local_reply(struct rs_outq *q, struct rs_chunk_cache *cc, int status,
			     const char *body, bool close, const char *request_id);

/* --- HTTP/2 header translation (h2.c; RFC 9113 §8) --- */
/* A field of a request's header block as nghttp2 delivers it (validated):
 * pseudo-headers into the message's method, path and authority, the rest
 * as fields. header_bytes grows by the field's size. 0 or -ENOMEM. */
int rs_h2_request_field(struct rs_msg *m, const char *name, size_t nlen, const char *value,
			size_t vlen);
/* The same for a response: :status into status. */
int rs_h2_response_field(struct rs_msg *m, const char *name, size_t nlen, const char *value,
			 size_t vlen);
/* The request's header block is complete: Host from :authority (or the
 * authority from Host), cookie crumbs joined, the body's framing from
 * END_STREAM and content-length. 0; -EINVAL with *why for a malformed
 * request (§8.3.1); -ENOMEM. */
int rs_h2_request_done(struct rs_msg *m, bool end_stream, const char **why);
/* Name/value pairs a caller keeps on its stack; a message with more
 * fields gets an array from the heap. */
#define RS_H2_NV_STACK 256
/* Room for m's fields plus pseudo-headers and a few of the proxy's own:
 * stack (RS_H2_NV_STACK entries) when it is enough, else the heap; *cap is
 * the room given. NULL when out of memory. rs_h2_nv_free gives it back. */
nghttp2_nv *rs_h2_nv_for(const struct rs_msg *m, nghttp2_nv *stack, size_t *cap);
void rs_h2_nv_free(nghttp2_nv *nv, nghttp2_nv *stack);
/* Name/value pairs for nghttp2 pointing into m (whose field names are
 * lowered in place), connection-specific fields left out (§8.2.2); at most
 * cap. Returns how many. The response's :status text is written to status. */
size_t rs_h2_response_nv(struct rs_msg *m, nghttp2_nv *nv, size_t cap, char status[4]);
size_t rs_h2_trailers_nv(struct rs_msg *m, nghttp2_nv *nv, size_t cap);
/* A request's pseudo-headers (:method, :scheme, :authority, :path) then its
 * fields; te: trailers is kept (gRPC needs it). */
size_t rs_h2_request_nv(struct rs_msg *m, nghttp2_nv *nv, size_t cap, const char *scheme);

#endif
