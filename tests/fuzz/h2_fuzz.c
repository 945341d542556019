/* libFuzzer target: bytes a client sends on an HTTP/2 connection, through a
 * real nghttp2 server session (the HTTP/2 parser and HPACK decoder), into
 * ringside's header translation (src/http/h2.c): every request's fields go
 * through rs_h2_request_field and rs_h2_request_done, then back out as
 * name/value pairs (rs_h2_request_nv, rs_h2_response_nv on a response made
 * from them), the way a request crosses the proxy. The first input byte
 * picks the side: odd inputs are fed to a client session instead, so the
 * response path (rs_h2_response_field, trailers) gets the bytes. Limits as
 * the proxy's: 60 KiB of fields, 100 of them. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BYTES (60 * 1024)
#define MAX_FIELDS 100

struct fuzz_stream {
	struct rs_msg m;
	bool over;
	struct fuzz_stream *next, *prev; /* every one alive, for the end of the input */
};

static struct fuzz_stream *alive;

static struct fuzz_stream *stream_new(void)
{
	struct fuzz_stream *x = calloc(1, sizeof *x);

	if (!x)
		return NULL;
	rs_msg_init(&x->m);
	x->next = alive;
	if (alive)
		alive->prev = x;
	alive = x;
	return x;
}

static void stream_free(struct fuzz_stream *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		alive = x->next;
	if (x->next)
		x->next->prev = x->prev;
	rs_msg_free(&x->m);
	free(x);
}

static struct fuzz_stream *stream_of(nghttp2_session *s, int32_t id)
{
	return nghttp2_session_get_stream_user_data(s, id);
}

static ssize_t send_cb(nghttp2_session *s, const uint8_t *d, size_t n, int f, void *u)
{
	(void)s;
	(void)d;
	(void)f;
	(void)u;
	return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	struct fuzz_stream *x;

	(void)u;
	if (f->hd.type != NGHTTP2_HEADERS || stream_of(s, f->hd.stream_id))
		return 0;
	x = stream_new();
	if (!x)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, x);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *u)
{
	struct fuzz_stream *x = stream_of(s, f->hd.stream_id);
	bool server = u != NULL;

	(void)flags;
	if (!x || x->over)
		return 0;
	if (x->m.header_bytes + nlen + vlen > MAX_BYTES || x->m.nh >= MAX_FIELDS) {
		x->over = true;
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	if (server ? rs_h2_request_field(&x->m, (const char *)name, nlen, (const char *)value, vlen)
		   : rs_h2_response_field(&x->m, (const char *)name, nlen, (const char *)value, vlen))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	struct fuzz_stream *x;
	nghttp2_nv nv[2 * MAX_FIELDS + 8];
	const char *why = NULL;
	char status[4];

	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	x = stream_of(s, f->hd.stream_id);
	if (!x || x->over)
		return 0;
	if (u) { /* a request, as the downstream side takes it */
		if (rs_h2_request_done(&x->m, f->hd.flags & NGHTTP2_FLAG_END_STREAM, &why) == 0) {
			size_t n = rs_h2_request_nv(&x->m, nv, sizeof nv / sizeof nv[0], "http");

			for (size_t i = 0; i < n; i++)
				if (nv[i].namelen && !nv[i].name)
					__builtin_trap();
			x->m.status = 200;
			rs_h2_response_nv(&x->m, nv, sizeof nv / sizeof nv[0], status);
		}
	} else {
		rs_h2_response_nv(&x->m, nv, sizeof nv / sizeof nv[0], status);
		rs_h2_trailers_nv(&x->m, nv, sizeof nv / sizeof nv[0]);
	}
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *u)
{
	struct fuzz_stream *x = stream_of(s, id);

	(void)code;
	(void)u;
	if (x) {
		stream_free(x);
		nghttp2_session_set_stream_user_data(s, id, NULL);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	nghttp2_session_callbacks *cb;
	nghttp2_session *s;
	bool server = size == 0 || !(data[0] & 1);
	static int token;

	if (nghttp2_session_callbacks_new(&cb))
		return 0;
	nghttp2_session_callbacks_set_send_callback(cb, send_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	/* user data: non-NULL on the server side */
	if ((server ? nghttp2_session_server_new(&s, cb, &token)
		    : nghttp2_session_client_new(&s, cb, NULL)) != 0) {
		nghttp2_session_callbacks_del(cb);
		return 0;
	}
	if (size)
		data++, size--;
	if (server) {
		nghttp2_session_mem_recv(s, (const uint8_t *)preface, sizeof preface - 1);
	} else {
		/* A request on stream 1 so that responses have a stream to land on. */
		nghttp2_nv nv[] = {
		    {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
		    {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
		    {(uint8_t *)":authority", (uint8_t *)"a", 10, 1, 0},
		    {(uint8_t *)":path", (uint8_t *)"/", 5, 1, 0},
		};
		struct fuzz_stream *x = stream_new();

		if (x && nghttp2_submit_request(s, NULL, nv, 4, NULL, x) < 0)
			stream_free(x);
		nghttp2_session_send(s);
	}
	nghttp2_session_mem_recv(s, data, size);
	nghttp2_session_send(s);
	nghttp2_session_del(s);
	/* What nghttp2 did not close (it calls no callback on delete). */
	while (alive)
		stream_free(alive);
	nghttp2_session_callbacks_del(cb);
	return 0;
}
