/* HTTP/2 on a load-generator connection (nghttp2's client session): up to
 * --streams requests in flight, fewer if the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS says so (RFC 9113 §6.5.2). */
#include <stdlib.h>
#include <string.h>

#include "conn.h"

/* Large receive windows, so that the client's flow control never paces what
 * is measured (RFC 9113 §6.9). */
#define LG_H2_WINDOW (16u << 20)

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user_data)
{
	struct lg_req *r;

	if (f->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7) != 0)
		return 0;
	r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (r && valuelen == 3)
		r->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user_data)
{
	struct lg_conn *c = user_data;
	struct lg_req *r = nghttp2_session_get_stream_user_data(s, id);

	if (!r)
		return 0;
	if (error_code == NGHTTP2_NO_ERROR && r->status > 0)
		lg_conn_done(c, r, r->status);
	else if (error_code == NGHTTP2_REFUSED_STREAM)
		lg_conn_refused(c, r); /* RFC 9113 §8.7: safe to send again */
	else
		lg_conn_fail(c, r, LG_E_PROTOCOL);
	r->next_free = c->free_reqs;
	c->free_reqs = r;
	c->h2active--;
	return 0;
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *user_data)
{
	size_t left = (size_t)src->ptr;

	if (length > left)
		length = left;
	memset(buf, 'x', length);
	src->ptr = (void *)(left - length);
	if (left == length)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)length;
}

static int h2_open(struct lg_conn *c)
{
	const struct lg_opts *o = lg_conn_opts(c);
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, LG_H2_WINDOW},
	};
	int rc;

	if (!c->reqs) {
		c->reqs = calloc(o->streams, sizeof(*c->reqs));
		if (!c->reqs)
			return -LG_E_PROTOCOL;
	}
	c->free_reqs = NULL;
	for (unsigned i = 0; i < o->streams; i++) {
		c->reqs[i].next_free = c->free_reqs;
		c->free_reqs = &c->reqs[i];
	}
	c->h2active = 0;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		return -LG_E_PROTOCOL;
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	rc = nghttp2_session_client_new(&c->h2, cb, c);
	nghttp2_session_callbacks_del(cb);
	if (rc != 0)
		return -LG_E_PROTOCOL;
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
	    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, LG_H2_WINDOW) != 0)
		return -LG_E_PROTOCOL;
	return 0;
}

static int h2_submit(struct lg_conn *c, struct lg_req *tmpl)
{
	const struct lg_opts *o = lg_conn_opts(c);
	struct lg_req *r = c->free_reqs;
	nghttp2_data_provider body = {.source.ptr = (void *)o->body_size, .read_callback = body_read};
	const nghttp2_nv *nv;
	size_t nnv;
	int32_t id;

	if (!r)
		return -LG_E_PROTOCOL;
	lg_conn_h2_headers(c, &nv, &nnv);
	c->free_reqs = r->next_free;
	*r = *tmpl;
	r->status = 0;
	id = nghttp2_submit_request(c->h2, NULL, nv, nnv, o->body_size ? &body : NULL, r);
	if (id < 0) {
		r->next_free = c->free_reqs;
		c->free_reqs = r;
		return -LG_E_PROTOCOL;
	}
	r->stream_id = id;
	c->h2active++;
	return 0;
}

static int h2_flush(struct lg_conn *c)
{
	for (;;) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(c->h2, &p);
		int rc;

		if (n < 0)
			return -LG_E_PROTOCOL;
		if (n == 0)
			break;
		rc = lg_conn_write(c, p, (size_t)n);
		if (rc < 0)
			return rc;
	}
	/* The server sent GOAWAY and every stream is done, or the session failed. */
	if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
		return 1;
	return 0;
}

static int h2_input(struct lg_conn *c, const uint8_t *p, size_t n)
{
	ssize_t used = nghttp2_session_mem_recv(c->h2, p, n);

	if (used < 0)
		return -LG_E_PROTOCOL;
	/* SETTINGS and PING acknowledgements, WINDOW_UPDATEs. */
	return h2_flush(c);
}

static int h2_eof(struct lg_conn *c)
{
	return c->h2active ? -LG_E_CLOSED : 1;
}

static unsigned h2_capacity(const struct lg_conn *c)
{
	const struct lg_opts *o = lg_conn_opts(c);
	uint32_t peer = nghttp2_session_get_remote_settings(c->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	unsigned lim = o->streams < peer ? o->streams : peer;

	if (nghttp2_session_get_next_stream_id(c->h2) > INT32_MAX - 2 ||
	    !nghttp2_session_check_request_allowed(c->h2))
		return 0;
	return c->h2active < lim ? lim - c->h2active : 0;
}

static void h2_close(struct lg_conn *c, int err)
{
	if (!c->h2)
		return;
	for (unsigned i = 0; i < lg_conn_opts(c)->streams; i++) {
		struct lg_req *r = &c->reqs[i];

		if (nghttp2_session_get_stream_user_data(c->h2, r->stream_id) == r)
			lg_conn_fail(c, r, (enum lg_error)err);
	}
	nghttp2_session_del(c->h2);
	c->h2 = NULL;
	c->h2active = 0;
}

const struct lg_codec lg_h2_codec = {
	.open = h2_open,
	.submit = h2_submit,
	.input = h2_input,
	.flush = h2_flush,
	.eof = h2_eof,
	.capacity = h2_capacity,
	.close = h2_close,
};
