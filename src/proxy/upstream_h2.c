/* Upstream HTTP/2 connections (RFC 9113): one connection per shard,
 * endpoint and TLS setting carries many streams, up to the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS and the cluster's http2MaxRequests; more
 * connections are opened only when those are full.
 *
 * A stream's request body waits in its own queue (st->up_body) until flow
 * control lets nghttp2 take it, and the client's side stops reading while
 * that queue is full. Response bytes are given back to the server's window
 * only as the client's side takes them, so a slow client holds at most a
 * window of its stream's response in the proxy.
 *
 * The rs_stream is nghttp2's stream user data while it rides the
 * connection; releasing it (the response ended, a retry, the client gone)
 * clears that, and resets the stream when it is still open. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Request bytes one stream holds before the client's side stops reading. */
#define STREAM_BUF_MAX (64u * 1024)
/* The server's limit assumed until its SETTINGS arrive (RFC 9113 §6.5.2
 * recommends no less than 100). */
#define ASSUMED_MAX_STREAMS 100

struct rs_h2u {
	nghttp2_session *s; /* owns */
	bool busy;       /* inside nghttp2: sending waits (send_again) */
	bool send_again;
	bool goaway;     /* the server said GOAWAY: no new streams */
	bool dead;       /* failed or closing: no new streams */
	bool wake;       /* some stream's request body drained */
};

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static struct rs_stream *st_of(struct rs_us *us, int32_t id)
{
	return nghttp2_session_get_stream_user_data(us->h2->s, id);
}

static void unlink_stream(struct rs_us *us, struct rs_stream *st)
{
	if (st->up_prev)
		st->up_prev->up_next = st->up_next;
	else if (us->streams == st)
		us->streams = st->up_next;
	else
		return; /* not on this connection's list */
	if (st->up_next)
		st->up_next->up_prev = st->up_prev;
	st->up_prev = st->up_next = NULL;
	us->nstreams--;
	if (!us->nstreams)
		us->idle_since = us->w->loop.now;
}

/* --- nghttp2 callbacks --- */

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *u)
{
	struct rs_us *us = u;

	(void)s;
	(void)flags;
	if (rs_conn_write(&us->c, data, len) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return (ssize_t)len;
}

static int send_data_cb(nghttp2_session *s, nghttp2_frame *frame, const uint8_t *hd,
			size_t length, nghttp2_data_source *src, void *u)
{
	struct rs_us *us = u;
	struct rs_stream *st = st_of(us, frame->hd.stream_id);

	(void)s;
	(void)src;
	if (!st || rs_conn_write(&us->c, hd, 9) < 0 ||
	    rs_outq_move(&us->c.out, &st->up_body, &us->c.loop->chunks, length) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (st->up_blocked && st->up_body.bytes < STREAM_BUF_MAX / 2) {
		st->up_blocked = false;
		st->up_wake = true;
		us->h2->wake = true;
	}
	return 0;
}

static ssize_t read_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
		       uint32_t *flags, nghttp2_data_source *src, void *u)
{
	struct rs_us *us = u;
	struct rs_stream *st = st_of(us, id);
	size_t n;

	(void)s;
	(void)buf;
	(void)src;
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = st->up_body.bytes < length ? st->up_body.bytes : length;
	if (n == 0 && !st->up_eof) {
		st->up_deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n)
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (st->up_eof && n == st->up_body.bytes)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	struct rs_us *us = u;
	struct rs_stream *st = st_of(us, f->hd.stream_id);

	(void)s;
	if (st && f->hd.type == NGHTTP2_HEADERS && !st->up_head_done)
		rs_msg_reset(&st->resp); /* a final response after a 1xx, too */
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *u)
{
	struct rs_us *us = u;
	struct rs_stream *st = st_of(us, f->hd.stream_id);
	const struct rs_proxy_opts *o = us->w->opts;
	struct rs_msg *m;

	(void)s;
	(void)flags;
	if (!st)
		return 0;
	m = st->up_head_done ? &st->trailers : &st->resp;
	/* The client side's limits, doubled as for HTTP/1.1 responses: past
	 * them the stream fails (502), the connection goes on. */
	if (m->header_bytes + nlen + vlen > o->max_header_bytes || m->nh >= 2 * o->max_headers)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (rs_h2_response_field(m, (const char *)name, nlen, (const char *)value, vlen) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static void response_end(struct rs_us *us, struct rs_stream *st)
{
	st->up_resp_done = true;
	us->got_bytes = true;
	rs_proxy__stream_response_end(st, true);
}

static void response_head(struct rs_us *us, struct rs_stream *st, bool end)
{
	struct rs_msg *m = &st->resp;
	const struct rs_hdr *cl = rs_msg_find(m, "content-length");

	if (m->status >= 100 && m->status < 200)
		return; /* interim: the final head follows */
	st->up_head_done = true;
	m->http_major = 2;
	if (end || st->req.method == RS_METHOD_HEAD || m->status == 204 || m->status == 304) {
		m->body = RS_BODY_NONE;
	} else if (cl) {
		m->content_length = strtoll(m->buf + cl->value_off, NULL, 10);
		m->body = RS_BODY_LENGTH;
	} else {
		m->body = RS_BODY_STREAM;
	}
	if (rs_proxy__stream_retry_response(st))
		return; /* another try; this stream was let go */
	rs_timer_cancel(&us->w->loop.timers, &st->timeout);
	rs_proxy__stream_response_head(st);
	if (end && st->us == us)
		response_end(us, st);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	struct rs_us *us = u;
	struct rs_stream *st;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	(void)s;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		/* Streams above its last id are refused (nghttp2 closes them
		 * with REFUSED_STREAM); the others finish. */
		us->h2->goaway = true;
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	st = st_of(us, f->hd.stream_id);
	if (!st || st->us != us)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !st->up_head_done) {
		response_head(us, st, end);
		return 0;
	}
	if (end && st->up_head_done && !st->up_resp_done)
		response_end(us, st);
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *u)
{
	struct rs_us *us = u;
	struct rs_stream *st = st_of(us, id);

	(void)flags;
	us->got_bytes = true;
	if (!st || st->us != us || !st->up_head_done) {
		nghttp2_session_consume(s, id, len);
		return 0;
	}
	rs_proxy__stream_response_data(st, (const char *)data, len);
	/* The server's window reopens as the client takes the bytes. */
	if (st->us == us && rs_proxy__ds_backlogged(st))
		st->up_unconsumed += (uint32_t)len;
	else
		nghttp2_session_consume(s, id, len);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *u)
{
	struct rs_us *us = u;
	struct rs_stream *st = st_of(us, id);
	char text[200];

	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(s, id, NULL);
	if (st->us != us || st->up_resp_done)
		return 0;
	/* RFC 9113 §8.7: REFUSED_STREAM (and streams above a GOAWAY's last
	 * id) were not processed: safe to send again, whatever the method. */
	st->up_refused = code == NGHTTP2_REFUSED_STREAM && !st->up_malformed;
	if (st->up_malformed) {
		rs_proxy__stream_upstream_failed(st, RS_RFLAG_UPE, 502,
						 "upstream connect error or disconnect/reset before "
						 "headers. reset reason: protocol error");
		return 0;
	}
	snprintf(text, sizeof text,
		 "upstream connect error or disconnect/reset before headers. reset reason: %s",
		 st->up_refused ? "remote refused stream reset" : "remote reset");
	rs_stat_inc(us->w->stats, RS_C_US_RQ_RESET);
	rs_proxy__stream_upstream_failed(st, RS_RFLAG_UC, 503, text);
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	struct rs_us *us = u;
	struct rs_stream *st;

	(void)s;
	/* An RST_STREAM on a stream still ours is nghttp2's answer to a
	 * malformed response (RFC 9113 §8.1.1): ours to a retry or a gone
	 * client goes after the stream was let go. */
	if (f->hd.type == NGHTTP2_RST_STREAM && (st = st_of(us, f->hd.stream_id)))
		st->up_malformed = true;
	if (f->hd.type == NGHTTP2_GOAWAY)
		rs_debug("upstream HTTP/2: GOAWAY sent: %s (last stream %d)",
			 nghttp2_http2_strerror(f->goaway.error_code), f->goaway.last_stream_id);
	return 0;
}

static void setup(void)
{
	nghttp2_session_callbacks *cb;

	if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&options) != 0)
		abort(); /* start-up */
	nghttp2_session_callbacks_set_send_callback(cb, send_cb);
	nghttp2_session_callbacks_set_send_data_callback(cb, send_data_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	callbacks = cb;
	nghttp2_option_set_no_auto_window_update(options, 1);
	nghttp2_option_set_peer_max_concurrent_streams(options, ASSUMED_MAX_STREAMS);
}

/* --- the connection --- */

int rs_proxy__h2u_start(struct rs_us *us)
{
	const struct rs_proxy_opts *o = us->w->opts;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->h2_stream_window},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 2 * o->max_header_bytes},
	};

	pthread_once(&once, setup);
	us->h2 = calloc(1, sizeof *us->h2);
	if (!us->h2)
		return -ENOMEM;
	if (nghttp2_session_client_new2(&us->h2->s, callbacks, us, options) != 0) {
		free(us->h2);
		us->h2 = NULL;
		return -ENOMEM;
	}
	/* The preface and SETTINGS wait in the queue for the connect (and the
	 * TLS handshake). */
	if (nghttp2_submit_settings(us->h2->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) ||
	    nghttp2_session_set_local_window_size(us->h2->s, NGHTTP2_FLAG_NONE, 0,
						  (int32_t)o->h2_conn_window))
		return -ENOMEM;
	return 0;
}

void rs_proxy__h2u_free(struct rs_us *us)
{
	if (!us->h2)
		return;
	nghttp2_session_del(us->h2->s);
	free(us->h2);
	us->h2 = NULL;
}

/* Whether another stream may start on us now. */
bool rs_proxy__h2u_has_room(const struct rs_us *us, uint32_t cluster_max)
{
	uint32_t max;

	if (us->h2->dead || us->h2->goaway || rs_conn_closing(&us->c) ||
	    (us->c.flags & RS_CONN_EOF) || (us->max_requests && us->nrequests >= us->max_requests))
		return false;
	max = nghttp2_session_get_remote_settings(us->h2->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	if (cluster_max && cluster_max < max)
		max = cluster_max;
	return us->nstreams < max;
}

void rs_proxy__h2u_attach(struct rs_us *us, struct rs_stream *st)
{
	st->up_id = 0;
	st->up_eof = st->up_deferred = st->up_blocked = st->up_refused = st->up_malformed = false;
	st->up_resp_done = st->up_head_done = false;
	st->up_unconsumed = 0;
	st->up_prev = NULL;
	st->up_next = us->streams;
	if (us->streams)
		us->streams->up_prev = st;
	us->streams = st;
	us->nstreams++;
	us->nrequests++;
}

/* Fails every stream: the connection is gone (or never came). */
void rs_proxy__h2u_fail_all(struct rs_us *us, enum rs_rflag flag, const char *text)
{
	struct rs_stream *st;

	if (us->h2)
		us->h2->dead = true;
	while ((st = us->streams)) {
		unlink_stream(us, st);
		if (us->h2 && st->up_id)
			nghttp2_session_set_stream_user_data(us->h2->s, st->up_id, NULL);
		if (st->us == us)
			rs_proxy__stream_upstream_failed(st, flag, 503, text);
	}
}

static bool closable(const struct rs_us *us)
{
	return !us->nstreams && (us->h2->dead || us->h2->goaway || us->w->draining ||
				 (us->max_requests && us->nrequests >= us->max_requests));
}

void rs_proxy__h2u_flush(struct rs_us *us)
{
	struct rs_h2u *h = us->h2;

	if (!h || rs_conn_closing(&us->c))
		return;
	if (h->busy) {
		h->send_again = true;
		return;
	}
	h->busy = true;
	do {
		int ret;

		h->send_again = false;
		ret = nghttp2_session_send(h->s);
		if (ret != 0) {
			h->dead = true;
			h->busy = false;
			rs_debug("upstream HTTP/2: %s", nghttp2_strerror(ret));
			rs_proxy__h2u_fail_all(us, RS_RFLAG_UPE,
					       "upstream connect error or disconnect/reset before "
					       "headers. reset reason: protocol error");
			rs_conn_close(&us->c);
			return;
		}
		/* Streams whose request bodies drained read their clients
		 * again; that may queue more, hence the loop. */
		while (h->wake) {
			struct rs_stream *st;

			h->wake = false;
			for (st = us->streams; st; st = st->up_next) {
				if (st->up_wake) {
					st->up_wake = false;
					h->wake = true;
					break;
				}
			}
			if (st)
				rs_proxy__ds_unblock(st->ds, st);
		}
	} while (h->send_again && !rs_conn_closing(&us->c));
	h->busy = false;
	if (rs_conn_closing(&us->c))
		return;
	if (us->connected)
		rs_conn_flush(&us->c);
	if (closable(us) && !nghttp2_session_want_write(h->s))
		rs_conn_close_graceful(&us->c);
}

void rs_proxy__h2u_recv(struct rs_us *us, const char *p, size_t n)
{
	struct rs_h2u *h = us->h2;
	ssize_t ret;

	h->busy = true;
	ret = nghttp2_session_mem_recv(h->s, (const uint8_t *)p, n);
	h->busy = false;
	if (ret < 0) {
		rs_debug("upstream HTTP/2: %s", nghttp2_strerror((int)ret));
		rs_proxy__h2u_fail_all(us, RS_RFLAG_UPE,
				       "upstream connect error or disconnect/reset before headers. "
				       "reset reason: protocol error");
		rs_conn_close(&us->c);
		return;
	}
	rs_proxy__h2u_flush(us);
	if (!nghttp2_session_want_read(h->s) && !rs_conn_closing(&us->c)) {
		/* The session is over: a connection error nghttp2 found in what
		 * the server sent (its GOAWAY is queued; RFC 9113 §5.4.1), or
		 * GOAWAY both ways with nothing left. Streams still on it will
		 * never end here. */
		rs_debug("upstream HTTP/2: the session ended");
		rs_proxy__h2u_fail_all(us, RS_RFLAG_UPE,
				       "upstream connect error or disconnect/reset before headers. "
				       "reset reason: protocol error");
		rs_conn_close_graceful(&us->c);
	}
}

/* The connection's queue went out: streams stopped by it read again. */
void rs_proxy__h2u_flushed(struct rs_us *us)
{
	for (struct rs_stream *st = us->streams; st; st = st->up_next)
		st->up_wake = true;
	us->h2->wake = true;
	rs_proxy__h2u_flush(us);
}

/* --- streams --- */

static void resume(struct rs_us *us, struct rs_stream *st)
{
	if (st->up_deferred && st->up_id) {
		st->up_deferred = false;
		nghttp2_session_resume_data(us->h2->s, st->up_id);
	}
}

int rs_proxy__h2u_request_head(struct rs_us *us, struct rs_stream *st)
{
	nghttp2_nv stack[RS_H2_NV_STACK], *nv;
	nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_cb};
	size_t cap, n;
	int32_t id;

	/* Pseudo-headers, the fields, and room left for te. */
	if (!(nv = rs_h2_nv_for(&st->req, stack, &cap)))
		return -ENOMEM;
	n = rs_h2_request_nv(&st->req, nv, cap - 1, us->pool->tls_key ? "https" : "http");

	/* gRPC servers look for te: trailers (a hop-by-hop field the
	 * client's side removed with the others). */
	if (st->te_trailers && !rs_msg_find(&st->req, "te"))
		nv[n++] = (nghttp2_nv){(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0};
	rs_outq_clear(&st->up_body, &us->c.loop->chunks);
	st->up_eof = st->req.body == RS_BODY_NONE;
	id = nghttp2_submit_request(us->h2->s, NULL, nv, n, st->up_eof ? NULL : &dp, st);
	rs_h2_nv_free(nv, stack);
	if (id < 0)
		return -ENOMEM;
	st->up_id = id;
	return 0;
}

int rs_proxy__h2u_request_data(struct rs_us *us, struct rs_stream *st, const char *p, size_t n)
{
	if (st->up_eof)
		return 0;
	if (rs_outq_append(&st->up_body, &us->c.loop->chunks, p, n) < 0)
		return -ENOMEM;
	if (st->up_body.bytes >= STREAM_BUF_MAX)
		st->up_blocked = true;
	resume(us, st);
	return 0;
}

int rs_proxy__h2u_request_end(struct rs_us *us, struct rs_stream *st)
{
	if (!st->up_eof) {
		st->up_eof = true;
		resume(us, st);
	}
	return 0;
}

bool rs_proxy__h2u_backlogged(const struct rs_stream *st)
{
	return st->up_blocked || rs_conn_queued(&st->us->c) > RS_HIGH_WATER;
}

void rs_proxy__h2u_unblock(struct rs_us *us, struct rs_stream *st)
{
	if (!st || st->us != us || !st->up_unconsumed || us->h2->dead ||
	    rs_proxy__ds_backlogged(st))
		return;
	nghttp2_session_consume(us->h2->s, st->up_id, st->up_unconsumed);
	st->up_unconsumed = 0;
	rs_proxy__h2u_flush(us);
}

void rs_proxy__h2u_release(struct rs_us *us, struct rs_stream *st)
{
	if (st->us == us)
		st->us = NULL;
	unlink_stream(us, st);
	rs_outq_clear(&st->up_body, &us->c.loop->chunks);
	/* Response bytes held back for a slow client go back to the server's
	 * window now: on a closed stream nghttp2 credits the connection's,
	 * which the other streams share. */
	if (us->h2 && st->up_id && st->up_unconsumed)
		nghttp2_session_consume(us->h2->s, st->up_id, st->up_unconsumed);
	st->up_unconsumed = 0;
	if (us->h2 && st->up_id && st_of(us, st->up_id) == st) {
		nghttp2_session_set_stream_user_data(us->h2->s, st->up_id, NULL);
		/* Still open: the server stops working on it (a retry, or the
		 * client went away). */
		if (!st->up_resp_done || !st->up_eof)
			nghttp2_submit_rst_stream(us->h2->s, NGHTTP2_FLAG_NONE, st->up_id,
						  NGHTTP2_CANCEL);
	}
	st->up_id = 0;
	if (us->h2)
		rs_proxy__h2u_flush(us);
	if (!us->nstreams)
		rs_proxy__stream_kick(us->w);
}
