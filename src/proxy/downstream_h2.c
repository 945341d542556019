/* Downstream HTTP/2 connections (RFC 9113): nghttp2 turns frames into
 * streams, each a protocol-neutral request for the stream in the middle.
 *
 * Bytes: what the client sends goes to nghttp2_session_mem_recv; what
 * nghttp2 writes (through send_cb and, for DATA, send_data_cb) goes into
 * the connection's output queue, so no frame touches the socket directly.
 * A response body waits in its stream's own queue until flow control lets
 * nghttp2 take it: the stream's queue is the bound on what one stream
 * buffers, and the upstream stops reading while it is full.
 *
 * Lifetimes: an rs_h2s lives as long as nghttp2's stream (freed when it
 * closes); its rs_stream lives until the response is complete (freed by
 * stream_done) or the stream is reset, whichever is first. A stream reset
 * inside a call chain (by the client, by a failure) is freed from a timer,
 * never under the caller's feet. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Response bytes one stream may hold before its upstream stops reading:
 * the stream's window, as much again in flight. */
#define STREAM_BUF_MAX (64u * 1024)
/* Envoy's max_consecutive_inbound_frames_with_empty_payload. */
#define EMPTY_FRAMES_MAX 1
/* Streams reset (by the client, or by us because of what the client sent)
 * that a connection may cost: a bucket of RESET_BURST refilled RESET_RATE a
 * second. Past it the connection is closed: the rapid-reset attack
 * (CVE-2023-44487) and its server-provoked variant. */
#define RESET_BURST 1000
#define RESET_RATE 100

struct rs_h2s {
	struct rs_stream *st; /* owns, until the response is done or reset */
	int32_t id;
	bool eof;          /* the response body is all in body */
	bool deferred;     /* nghttp2 waits for body bytes: resume when they come */
	bool head_sent;    /* a response head was submitted */
	bool reset;        /* reset: writes are dropped, st goes to the reaper */
	bool closed;       /* nghttp2 closed the stream: free once st is gone */
	bool ours;         /* reset by the proxy for its own reasons (an upstream failed) */
	bool req_open;     /* the client may still send DATA */
	bool blocked;      /* body passed STREAM_BUF_MAX: its upstream was stopped */
	uint32_t unconsumed; /* request bytes received and not yet given back */
	struct rs_outq body; /* response bytes nghttp2 has not taken yet */
	/* The response's trailers, moved from the stream at its end: the
	 * stream may be freed while the body still waits for the window. */
	struct rs_msg trailers;
	struct rs_h2s *reap_next;
	struct rs_h2s *prev, *next; /* every stream of the connection */
};

struct rs_h2 {
	struct rs_ds *ds;
	nghttp2_session *s; /* owns */
	struct rs_h2s *streams; /* owns the list */
	unsigned nstreams;
	struct rs_h2s *reap; /* reset streams whose rs_stream is to be freed */
	struct rs_timer reap_timer;
	bool busy;        /* inside nghttp2 (receiving or sending): no send now */
	bool send_again;  /* asked to send while busy */
	bool goaway;      /* a GOAWAY was queued or sent (drain, an error, nghttp2's) */
	uint32_t fail_code; /* close with GOAWAY(fail_code) unless one went out */
	bool unblock;     /* some stream's body drained below its bound */
	bool dead;        /* the connection is being freed: nothing more is sent */
	uint32_t empty_frames;
	double reset_tokens;
	uint64_t reset_at;
};

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static struct rs_h2s *h2s_of(struct rs_h2 *h2, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h2->s, id);
}

static void h2s_free(struct rs_h2 *h2, struct rs_h2s *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		h2->streams = x->next;
	if (x->next)
		x->next->prev = x->prev;
	h2->nstreams--;
	rs_outq_clear(&x->body, &h2->ds->w->loop.chunks);
	rs_msg_free(&x->trailers);
	free(x);
}

/* Closes the connection with GOAWAY (code), whatever its streams are
 * doing: for an offender, once nghttp2 found it or a limit of ours did. */
static void fail_session(struct rs_h2 *h2, uint32_t code, const char *why)
{
	rs_debug("downstream %s: HTTP/2 connection closed: %s", h2->ds->peer_ip, why);
	rs_stat_inc(h2->ds->w->stats, RS_C_DS_RQ_REJECTED);
	/* Sent after what nghttp2 has queued: it may have a GOAWAY of its own
	 * there (its limits), and a second would name a later last stream
	 * (RFC 9113 §6.8 forbids); see rs_proxy__h2_flush. */
	if (!h2->fail_code)
		h2->fail_code = code;
}

/* --- nghttp2 callbacks --- */

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *u)
{
	struct rs_h2 *h2 = u;

	(void)s;
	(void)flags;
	if (rs_conn_write(&h2->ds->c, data, len) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return (ssize_t)len;
}

/* DATA without a copy into nghttp2: the frame header, then the bytes moved
 * from the stream's queue to the connection's. */
static int send_data_cb(nghttp2_session *s, nghttp2_frame *frame, const uint8_t *hd,
			size_t length, nghttp2_data_source *src, void *u)
{
	struct rs_h2 *h2 = u;
	struct rs_h2s *x = src->ptr;
	struct rs_conn *c = &h2->ds->c;

	(void)s;
	(void)frame;
	if (rs_conn_write(c, hd, 9) < 0 || rs_outq_move(&c->out, &x->body, &c->loop->chunks, length) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (x->blocked && x->body.bytes < STREAM_BUF_MAX / 2) {
		x->blocked = false;
		h2->unblock = true;
	}
	return 0;
}

/* Request bytes not yet given back to the client's window, given back now
 * that nobody will take them (the stream ended, or was reset): on a closed
 * stream nghttp2 credits the connection's window. */
static void give_back(struct rs_h2 *h2, struct rs_h2s *x)
{
	if (x->unconsumed) {
		nghttp2_session_consume(h2->s, x->id, x->unconsumed);
		x->unconsumed = 0;
	}
}

static int submit_trailers(struct rs_h2 *h2, struct rs_h2s *x)
{
	nghttp2_nv stack[RS_H2_NV_STACK], *nv;
	size_t cap, n;
	int ret;

	if (!(nv = rs_h2_nv_for(&x->trailers, stack, &cap)))
		return -ENOMEM;
	n = rs_h2_trailers_nv(&x->trailers, nv, cap);
	ret = nghttp2_submit_trailer(h2->s, x->id, nv, n);
	rs_h2_nv_free(nv, stack);
	return ret;
}

static ssize_t read_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
		       uint32_t *flags, nghttp2_data_source *src, void *u)
{
	struct rs_h2 *h2 = u;
	struct rs_h2s *x = src->ptr;
	size_t n = x->body.bytes < length ? x->body.bytes : length;

	(void)s;
	(void)id;
	(void)buf;
	if (n == 0 && !x->eof) {
		x->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n)
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (x->eof && n == x->body.bytes) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		/* gRPC's status travels in trailers (a HEADERS frame ending the
		 * stream after the DATA). */
		if (x->trailers.nh) {
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (submit_trailers(h2, x) != 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
	}
	return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	struct rs_h2 *h2 = u;
	struct rs_h2s *x;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	x = calloc(1, sizeof *x);
	if (!x)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM, not the process */
	x->st = rs_proxy__stream_new(h2->ds);
	if (!x->st) {
		free(x);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	x->st->h2s = x;
	rs_msg_init(&x->trailers);
	x->id = f->hd.stream_id;
	x->req_open = true;
	x->next = h2->streams;
	if (h2->streams)
		h2->streams->prev = x;
	h2->streams = x;
	h2->nstreams++;
	nghttp2_session_set_stream_user_data(s, x->id, x);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *u)
{
	struct rs_h2 *h2 = u;
	struct rs_h2s *x = h2s_of(h2, f->hd.stream_id);
	const struct rs_proxy_opts *o = h2->ds->w->opts;
	struct rs_msg *m;

	(void)s;
	(void)flags;
	if (!x || !x->st)
		return 0;
	m = &x->st->req;
	/* The limits of HTTP/1.1 (Envoy's max_request_headers_kb and
	 * max_headers_count): past them the stream is reset at once. nghttp2
	 * then skips the rest of the block (keeping HPACK's state) instead of
	 * handing over every field: a block that decompresses to megabytes (an
	 * HPACK bomb) costs neither memory nor the CPU of copying it, and the
	 * reset counts against the connection's reset budget. */
	if (m->header_bytes + nlen + vlen > o->max_header_bytes || m->nh >= o->max_headers) {
		rs_stat_inc(h2->ds->w->stats, RS_C_DS_RQ_REJECTED);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	if (f->headers.cat != NGHTTP2_HCAT_REQUEST) {
		/* Request trailers are not forwarded, but count as fields do. */
		m->header_bytes += (uint32_t)(nlen + vlen);
		return 0;
	}
	if (rs_h2_request_field(m, (const char *)name, nlen, (const char *)value, vlen) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static void flush_upstream(struct rs_h2s *x)
{
	if (x->st && x->st->us)
		rs_proxy__us_flush(x->st->us);
}

static void request_end(struct rs_h2s *x)
{
	x->req_open = false;
	if (!x->st || x->st->local || x->reset)
		return;
	x->st->req_done = true;
	rs_proxy__stream_request_end(x->st);
	flush_upstream(x);
}

static void reap_later(struct rs_h2 *h2, struct rs_h2s *x);
static bool reset_allowed(struct rs_h2 *h2);

/* Ends a stream that cannot go on with RST_STREAM (code); nghttp2 closes
 * it once the frame is out, and the rs_stream goes from the reaper. */
static void reset_stream(struct rs_h2 *h2, struct rs_h2s *x, uint32_t code)
{
	struct rs_stream *st = x->st;

	if (x->reset || h2->dead)
		return;
	x->reset = true;
	if (st && st->us)
		rs_proxy__us_release(st->us, st, false);
	give_back(h2, x);
	if (!x->closed)
		nghttp2_submit_rst_stream(h2->s, NGHTTP2_FLAG_NONE, x->id, code);
	reap_later(h2, x);
}

static void request_head(struct rs_h2 *h2, struct rs_h2s *x, bool end_stream)
{
	struct rs_stream *st = x->st;
	const char *why = NULL;
	int ret;

	ret = rs_h2_request_done(&st->req, end_stream, &why);
	if (ret == -EINVAL || (ret == 0 && st->req.method == RS_METHOD_CONNECT)) {
		/* RFC 9113 §8.1.1: malformed, a stream error. CONNECT (§8.5)
		 * is not offered. */
		rs_stat_inc(h2->ds->w->stats, RS_C_DS_RQ_REJECTED);
		rs_debug("downstream %s: stream %d refused: %s", h2->ds->peer_ip, x->id,
			 why ? why : "CONNECT");
		reset_stream(h2, x, NGHTTP2_PROTOCOL_ERROR);
		return;
	}
	if (ret < 0) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_NONE, 503, "out of memory");
		return;
	}
	rs_proxy__stream_request_head(st);
	flush_upstream(x);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	struct rs_h2 *h2 = u;
	struct rs_h2s *x;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	(void)s;
	if (f->hd.type == NGHTTP2_RST_STREAM && !reset_allowed(h2))
		fail_session(h2, NGHTTP2_ENHANCE_YOUR_CALM, "too many streams reset");
	if (f->hd.type == NGHTTP2_DATA && f->hd.length == 0 && !end) {
		if (++h2->empty_frames > EMPTY_FRAMES_MAX) {
			fail_session(h2, NGHTTP2_ENHANCE_YOUR_CALM, "empty DATA frames");
			return 0;
		}
	} else if (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) {
		h2->empty_frames = 0;
	}
	if (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS)
		return 0;
	x = h2s_of(h2, f->hd.stream_id);
	if (!x)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST && x->st &&
	    !x->reset)
		request_head(h2, x, end);
	/* The head may have been answered, or reset, already: x->st says. */
	if (end && x->req_open)
		request_end(x);
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *u)
{
	struct rs_h2 *h2 = u;
	struct rs_h2s *x = h2s_of(h2, id);

	(void)flags;
	if (!x || !x->st || x->st->local || x->reset) {
		/* Nobody reads it: give the window back at once. */
		nghttp2_session_consume(s, id, len);
		return 0;
	}
	rs_proxy__stream_request_data(x->st, (const char *)data, len);
	/* The window reopens only as the upstream takes the bytes: a client
	 * can have no more in flight than the stream's window. */
	if (x->st && x->st->us && rs_proxy__us_backlogged(x->st))
		x->unconsumed += (uint32_t)len;
	else
		nghttp2_session_consume(s, id, len);
	flush_upstream(x);
	return 0;
}

/* A bucket of reset streams: false once the connection has spent it. */
static bool reset_allowed(struct rs_h2 *h2)
{
	uint64_t now = h2->ds->w->loop.now;

	h2->reset_tokens += (double)(now - h2->reset_at) * 1e-9 * RESET_RATE;
	if (h2->reset_tokens > RESET_BURST)
		h2->reset_tokens = RESET_BURST;
	h2->reset_at = now;
	if (h2->reset_tokens < 1)
		return false;
	h2->reset_tokens -= 1;
	return true;
}

static void reap_later(struct rs_h2 *h2, struct rs_h2s *x)
{
	x->reap_next = h2->reap;
	h2->reap = x;
	if (!rs_timer_armed(&h2->reap_timer))
		rs_timer_arm(&h2->ds->w->loop.timers, &h2->reap_timer, h2->ds->w->loop.now);
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *u)
{
	struct rs_h2 *h2 = u;
	struct rs_h2s *x = h2s_of(h2, id);

	(void)s;
	(void)code;
	if (!x)
		return 0;
	nghttp2_session_set_stream_user_data(h2->s, id, NULL);
	x->closed = true;
	give_back(h2, x);
	if (x->st) {
		/* The response's last frame went out inside the caller that is
		 * about to finish the stream: stream_done frees both. */
		if (!x->reset && x->eof && !x->body.bytes && x->head_sent)
			return 0;
		/* Closed before its response was done: the client reset it, or
		 * the connection failed. The stream is freed from a timer (once:
		 * a stream we reset is queued already). */
		if (!x->reset) {
			x->st->rflag = RS_RFLAG_DC;
			x->reset = true;
			reap_later(h2, x);
		}
		return 0;
	}
	h2s_free(h2, x);
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	struct rs_h2 *h2 = u;

	if (f->hd.type == NGHTTP2_GOAWAY)
		h2->goaway = true;
	/* A stream error nghttp2 found in the client's frames (or a malformed
	 * request of ours to refuse): the "server-provoked" resets a client
	 * can make cost the proxy, counted with its own. Resets of streams
	 * whose upstream failed are not the client's doing. */
	if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code != NGHTTP2_NO_ERROR) {
		struct rs_h2s *x = h2s_of(h2, f->hd.stream_id);

		if ((!x || !x->ours) && !reset_allowed(h2))
			fail_session(h2, NGHTTP2_ENHANCE_YOUR_CALM, "too many streams reset");
	}

	/* RFC 9113 §8.1: a response complete before its request tells the
	 * client to stop sending with RST_STREAM NO_ERROR, after the
	 * response's last frame. */
	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    !nghttp2_session_get_stream_remote_close(s, f->hd.stream_id)) {
		struct rs_h2s *x = h2s_of(h2, f->hd.stream_id);

		if (x && x->req_open)
			nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
						  NGHTTP2_NO_ERROR);
	}
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
	/* The window is given back as the upstream takes the bytes. */
	nghttp2_option_set_no_auto_window_update(options, 1);
	/* nghttp2's own flood limits stay on at their defaults: at most 1000
	 * SETTINGS/PING acknowledgements queued, 32 entries in a SETTINGS,
	 * 8 CONTINUATION frames in a header block (CVE-2024-27316), and
	 * its reset-stream rate limit. */
}

/* --- the connection --- */

static void on_reap(struct rs_timer *t)
{
	struct rs_h2 *h2 = (struct rs_h2 *)((char *)t - offsetof(struct rs_h2, reap_timer));

	while (h2->reap) {
		struct rs_h2s *x = h2->reap;
		struct rs_stream *st = x->st;

		h2->reap = x->reap_next;
		x->st = NULL;
		if (st) {
			st->h2s = NULL;
			rs_proxy__stream_free(st);
		}
		/* A stream nghttp2 still knows is freed when it closes. */
		if (x->closed)
			h2s_free(h2, x);
	}
	rs_proxy__h2_flush(h2->ds);
}

int rs_proxy__h2_start(struct rs_ds *ds)
{
	const struct rs_proxy_opts *o = ds->w->opts;
	struct rs_h2 *h2;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->h2_max_streams},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->h2_stream_window},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, o->max_header_bytes},
	};

	pthread_once(&once, setup);
	h2 = calloc(1, sizeof *h2);
	if (!h2)
		return -ENOMEM;
	h2->ds = ds;
	h2->reap_timer.fn = on_reap;
	h2->reset_tokens = RESET_BURST;
	h2->reset_at = ds->w->loop.now;
	if (nghttp2_session_server_new2(&h2->s, callbacks, h2, options) != 0) {
		free(h2);
		return -ENOMEM;
	}
	ds->h2 = h2;
	rs_stat_inc(ds->w->stats, RS_C_DS_CX_HTTP2);
	if (nghttp2_submit_settings(h2->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
	    nghttp2_session_set_local_window_size(h2->s, NGHTTP2_FLAG_NONE, 0,
						  (int32_t)o->h2_conn_window) != 0)
		return -ENOMEM;
	return 0;
}

void rs_proxy__h2_free(struct rs_ds *ds)
{
	struct rs_h2 *h2 = ds->h2;

	if (!h2)
		return;
	/* Streams first: freeing one lets its upstream go, which may reach a
	 * sibling stream (a reset, a reply), so the session must still exist;
	 * dead keeps anything from being sent or freed meanwhile. */
	h2->dead = true;
	rs_timer_cancel(&ds->w->loop.timers, &h2->reap_timer);
	while (h2->streams) {
		struct rs_h2s *x = h2->streams;
		struct rs_stream *st = x->st;

		x->st = NULL;
		if (st) {
			st->h2s = NULL;
			rs_proxy__stream_free(st);
		}
		h2s_free(h2, x);
	}
	nghttp2_session_del(h2->s);
	free(h2);
	ds->h2 = NULL;
}

unsigned rs_proxy__h2_streams(const struct rs_ds *ds)
{
	return ds->h2->nstreams;
}

/* Gives back the window of request bytes the upstream has taken since. */
void rs_proxy__h2_unblock(struct rs_ds *ds, struct rs_stream *st)
{
	struct rs_h2s *x = st ? st->h2s : NULL;

	if (!x || !x->unconsumed || (st->us && rs_proxy__us_backlogged(st)))
		return;
	nghttp2_session_consume(ds->h2->s, x->id, x->unconsumed);
	x->unconsumed = 0;
	rs_proxy__h2_flush(ds);
}

/* Sends what nghttp2 has to send, unless the client is not reading: then
 * nothing more is serialized, so acknowledgements of a PING or SETTINGS
 * flood pile up inside nghttp2 and hit its limit, and the connection's
 * queue stays bounded. */
void rs_proxy__h2_flush(struct rs_ds *ds)
{
	struct rs_h2 *h2 = ds->h2;

	if (rs_conn_closing(&ds->c) || h2->dead)
		return;
	if (h2->busy) {
		h2->send_again = true;
		return;
	}
	h2->busy = true;
	do {
		int ret = 0;

		h2->send_again = false;
		if (rs_conn_queued(&ds->c) < RS_HIGH_WATER)
			ret = nghttp2_session_send(h2->s);
		if (ret == 0 && h2->fail_code) {
			if (!h2->goaway)
				ret = nghttp2_session_terminate_session(h2->s, h2->fail_code);
			h2->fail_code = 0;
			h2->goaway = true;
			h2->send_again = true;
		}
		if (ret != 0) {
			rs_debug("downstream %s: HTTP/2: %s", ds->peer_ip, nghttp2_strerror(ret));
			h2->busy = false;
			rs_proxy__ds_abort(ds);
			return;
		}
		/* Streams whose bodies drained may read their upstreams again;
		 * that may queue more, hence the loop. */
		if (h2->unblock) {
			h2->unblock = false;
			/* Still busy: a stream that ends in here asks for a send
			 * (send_again) instead of freeing streams under the loop. */
			for (struct rs_h2s *x = h2->streams; x; x = x->next)
				if (!x->blocked && x->st && x->st->us && !x->reset)
					rs_proxy__us_unblock(x->st->us, x->st);
		}
	} while (h2->send_again && !rs_conn_closing(&ds->c));
	h2->busy = false;
	if (rs_conn_closing(&ds->c))
		return;
	rs_conn_flush(&ds->c);
	if (!nghttp2_session_want_read(h2->s) && !nghttp2_session_want_write(h2->s) &&
	    !rs_conn_closing(&ds->c))
		rs_conn_close_graceful(&ds->c); /* GOAWAY both ways, nothing left */
	else if (ds->w->draining && h2->goaway && !h2->nstreams)
		rs_conn_close_graceful(&ds->c);
}

void rs_proxy__h2_flushed(struct rs_ds *ds)
{
	ds->h2->unblock = true;
	rs_proxy__h2_flush(ds);
}

void rs_proxy__h2_recv(struct rs_ds *ds, const char *p, size_t n)
{
	struct rs_h2 *h2 = ds->h2;
	ssize_t ret;

	/* Callbacks may ask to send; nghttp2 must not be re-entered, so that
	 * waits until it returns (send_again). */
	h2->busy = true;
	ret = nghttp2_session_mem_recv(h2->s, (const uint8_t *)p, n);
	h2->busy = false;
	if (ret == NGHTTP2_ERR_FLOODED) {
		/* Acknowledgements the client does not read (PING or SETTINGS
		 * flood): nothing more is owed to it. */
		rs_debug("downstream %s: HTTP/2: %s", ds->peer_ip, nghttp2_strerror((int)ret));
		rs_stat_inc(ds->w->stats, RS_C_DS_RQ_REJECTED);
		rs_proxy__ds_abort(ds);
		return;
	}
	if (ret < 0)
		fail_session(h2, NGHTTP2_PROTOCOL_ERROR, nghttp2_strerror((int)ret));
	rs_proxy__h2_flush(ds);
}

static struct rs_h2s *live(struct rs_stream *st)
{
	struct rs_h2s *x = st->h2s;

	return x && !x->reset && !x->closed ? x : NULL;
}

static void resume(struct rs_h2 *h2, struct rs_h2s *x)
{
	if (x->deferred) {
		x->deferred = false;
		nghttp2_session_resume_data(h2->s, x->id);
	}
}

int rs_proxy__h2_response_head(struct rs_ds *ds, struct rs_stream *st)
{
	struct rs_h2s *x = live(st);
	nghttp2_nv stack[RS_H2_NV_STACK], *nv;
	nghttp2_data_provider dp = {.source.ptr = x, .read_callback = read_cb};
	char status[4];
	size_t n, cap;
	bool body;
	int ret;

	if (!x)
		return 0;
	if (!(nv = rs_h2_nv_for(&st->resp, stack, &cap)))
		return -ENOMEM;
	n = rs_h2_response_nv(&st->resp, nv, cap, status);
	/* A body-less response ends the stream with its HEADERS, unless
	 * trailers come after it (gRPC's trailers-only form is one HEADERS). */
	body = st->resp.body != RS_BODY_NONE && st->req.method != RS_METHOD_HEAD;
	x->head_sent = true;
	if (!body)
		x->eof = true;
	ret = nghttp2_submit_response(ds->h2->s, x->id, nv, n, body ? &dp : NULL);
	rs_h2_nv_free(nv, stack);
	return ret == 0 ? 0 : -ENOMEM;
}

int rs_proxy__h2_response_data(struct rs_ds *ds, struct rs_stream *st, const char *p, size_t n)
{
	struct rs_h2s *x = live(st);

	if (!x || x->eof)
		return 0;
	if (rs_outq_append(&x->body, &ds->w->loop.chunks, p, n) < 0)
		return -ENOMEM;
	if (x->body.bytes >= STREAM_BUF_MAX)
		x->blocked = true;
	resume(ds->h2, x);
	return 0;
}

int rs_proxy__h2_response_end(struct rs_ds *ds, struct rs_stream *st)
{
	struct rs_h2s *x = live(st);

	if (!x)
		return 0;
	if (st->trailers.nh) {
		x->trailers = st->trailers;
		rs_msg_init(&st->trailers);
	}
	/* A response whose HEADERS ended the stream (HEAD, 204) has no room
	 * for trailers; any other ends through read_cb, trailers last. */
	if (!x->eof) {
		x->eof = true;
		resume(ds->h2, x);
	}
	return 0;
}

bool rs_proxy__h2_backlogged(const struct rs_stream *st)
{
	const struct rs_h2s *x = st->h2s;

	return (x && x->blocked) || rs_conn_queued(&st->ds->c) > RS_HIGH_WATER;
}

/* grpc-message is percent-encoded (PROTOCOL-HTTP2.md). */
static void percent_encode(char *out, size_t cap, const char *in)
{
	size_t k = 0;

	for (; *in && k + 4 < cap; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 0x20 || c > 0x7e || c == '%')
			k += (size_t)snprintf(out + k, cap - k, "%%%02X", c);
		else
			out[k++] = (char)c;
	}
	out[k] = '\0';
}

/* A gRPC call answered by the proxy: a trailers-only response (HTTP 200,
 * the status in grpc-status), which is what gRPC clients read. */
static int grpc_local_reply(struct rs_ds *ds, struct rs_h2s *x, struct rs_stream *st, int status,
			    const char *text)
{
	char code[8], msg[512];
	nghttp2_nv nv[6];
	size_t n = 0;

	snprintf(code, sizeof code, "%d", rs_proxy__grpc_status_for(st, status));
	percent_encode(msg, sizeof msg, text);
#define NV(k, v) nv[n++] = (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), sizeof(k) - 1, strlen(v), 0}
	NV(":status", "200");
	NV("content-type", "application/grpc");
	NV("grpc-status", code);
	NV("grpc-message", msg);
	NV("server", "ringside");
	if (st->request_id[0])
		NV("x-request-id", st->request_id);
#undef NV
	x->eof = true;
	x->head_sent = true;
	return nghttp2_submit_response(ds->h2->s, x->id, nv, n, NULL) == 0 ? 0 : -ENOMEM;
}

int rs_proxy__h2_local_reply(struct rs_ds *ds, struct rs_stream *st, int status,
			     const char *text)
{
	struct rs_h2s *x = live(st);
	char cl[24], sts[4];
	size_t tlen = strlen(text);
	nghttp2_nv nv[5];
	size_t n = 0;
	nghttp2_data_provider dp = {.source.ptr = x, .read_callback = read_cb};

	if (!x)
		return 0;
	if (x->head_sent) {
		rs_proxy__h2_reset(ds, st);
		return 0;
	}
	if (st->grpc)
		return grpc_local_reply(ds, x, st, status, text);
	snprintf(sts, sizeof sts, "%03d", status < 100 || status > 999 ? 500 : status);
	snprintf(cl, sizeof cl, "%zu", tlen + 1);
#define NV(k, v) nv[n++] = (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), sizeof(k) - 1, strlen(v), 0}
	NV(":status", sts);
	NV("content-length", cl);
	NV("content-type", "text/plain");
	NV("server", "ringside");
	if (st->request_id[0])
		NV("x-request-id", st->request_id);
#undef NV
	if (rs_outq_append(&x->body, &ds->w->loop.chunks, text, tlen) < 0 ||
	    rs_outq_append(&x->body, &ds->w->loop.chunks, "\n", 1) < 0)
		return -ENOMEM;
	x->eof = true;
	x->head_sent = true;
	return nghttp2_submit_response(ds->h2->s, x->id, nv, n, &dp) == 0 ? 0 : -ENOMEM;
}

void rs_proxy__h2_continue(struct rs_ds *ds, struct rs_stream *st)
{
	struct rs_h2s *x = live(st);
	nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)"100", 7, 3, 0};

	if (x && !x->head_sent)
		nghttp2_submit_headers(ds->h2->s, NGHTTP2_FLAG_NONE, x->id, NULL, &nv, 1, NULL);
}

void rs_proxy__h2_stream_done(struct rs_ds *ds, struct rs_stream *st)
{
	struct rs_h2s *x = st->h2s;

	if (!x || x->reset)
		return; /* the reaper frees it */
	x->st = NULL;
	st->h2s = NULL;
	rs_proxy__stream_free(st);
	give_back(ds->h2, x);
	/* Not under a loop over the streams (h2_flush's): the reaper frees it. */
	if (x->closed && ds->h2->busy)
		reap_later(ds->h2, x);
	else if (x->closed)
		h2s_free(ds->h2, x);
	rs_proxy__h2_flush(ds);
}

void rs_proxy__h2_reset(struct rs_ds *ds, struct rs_stream *st)
{
	struct rs_h2s *x = st->h2s;

	if (x && !x->reset) {
		x->ours = true;
		reset_stream(ds->h2, x, NGHTTP2_INTERNAL_ERROR);
	}
}

/* Graceful shutdown (RFC 9113 §6.8): GOAWAY naming the last stream taken,
 * whose streams finish; the connection closes when none is left. */
void rs_proxy__h2_drain(struct rs_ds *ds)
{
	struct rs_h2 *h2 = ds->h2;

	if (!h2->goaway) {
		h2->goaway = true;
		nghttp2_submit_goaway(h2->s, NGHTTP2_FLAG_NONE,
				      nghttp2_session_get_last_proc_stream_id(h2->s), NGHTTP2_NO_ERROR,
				      NULL, 0);
	}
	rs_proxy__h2_flush(ds);
}
