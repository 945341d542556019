/* Downstream connections. The first bytes tell the protocol: the HTTP/2
 * connection preface (prior knowledge on a clear-text port, or after ALPN
 * h2 over TLS) hands the connection to downstream_h2.c; anything else is
 * HTTP/1.x, here: llhttp turns bytes into requests, one stream at a time;
 * pipelined requests wait, parsed, until the response before them is
 * complete (RFC 9112 §9.3.2). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "ringside/config.h"
#include "ringside/tls-session.h"

static const struct rs_conn_cbs ds_cbs;
static void idle_rearm(struct rs_ds *ds);

static struct rs_ds *ds_of(llhttp_t *p)
{
	return p->data;
}

int rs_proxy__pend_stash(struct rs_parse_buf *b, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *q;

		if (b->off) {
			memmove(b->p, b->p + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		while (cap < b->len + n)
			cap *= 2;
		if (cap > b->cap) {
			q = realloc(b->p, cap);
			if (!q)
				return -ENOMEM;
			b->p = q;
			b->cap = (uint32_t)cap;
		}
	}
	memcpy(b->p + b->len, p, n);
	b->len += (uint32_t)n;
	return 0;
}

int rs_proxy__hdr_field(struct rs_msg *m, bool *in_field, const char *p, size_t n)
{
	struct rs_hdr *h;

	if (!*in_field) {
		h = rs_msg_new_hdr(m);
		if (!h)
			return -ENOMEM;
		h->name_off = m->len;
		h->name_len = 0;
		h->value_off = m->len;
		h->value_len = 0;
		*in_field = true;
	}
	h = &m->h[m->nh - 1];
	if (rs_msg_append(m, p, n) < 0)
		return -ENOMEM;
	h->name_len += (uint32_t)n;
	m->header_bytes += (uint32_t)n;
	return 0;
}

int rs_proxy__hdr_field_check(const char *p, size_t n)
{
	static const char tchar_punct[] = "!#$%&'*+-.^_`|~";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr(tchar_punct, c))))
			return -EINVAL;
	}
	return 0;
}

int rs_proxy__hdr_value(struct rs_msg *m, bool *in_field, const char *p, size_t n,
			const char *base, char prev_last)
{
	struct rs_hdr *h = &m->h[m->nh - 1];

	if (!rs_h1_value_ok(p, n))
		return -EINVAL;
	/* llhttp joins an obs-fold line to the value it continues, skipping the
	 * line break: a second piece of one value that starts right after an LF
	 * is a fold, which a proxy must not forward (RFC 9112 §5.2). */
	if (!*in_field && n && (p > base ? p[-1] == '\n' : prev_last == '\n'))
		return -EINVAL;
	if (*in_field) {
		*in_field = false;
		h->value_off = m->len;
	}
	if (rs_msg_append(m, p, n) < 0)
		return -ENOMEM;
	h->value_len += (uint32_t)n;
	m->header_bytes += (uint32_t)n;
	return 0;
}

/* A request the proxy refuses to frame: answer, then close (RFC 9112 §6.3:
 * the connection cannot be trusted to find the next message). */
static int refuse(struct rs_ds *ds, int status, const char *text)
{
	if (!ds->err_status) {
		ds->err_status = status;
		ds->err_text = text;
	}
	return -1;
}

static int on_message_begin(llhttp_t *p)
{
	struct rs_ds *ds = ds_of(p);

	ds->st = rs_proxy__stream_new(ds);
	if (!ds->st)
		return refuse(ds, 503, "out of memory");
	ds->in_field = false;
	ds->last_active = ds->w->loop.now;
	idle_rearm(ds);
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
	struct rs_ds *ds = ds_of(p);
	struct rs_msg *m = &ds->st->req;

	if (m->path.value_len == 0)
		m->path.value_off = m->len;
	if (m->path.value_len + n > ds->w->opts->max_header_bytes)
		return refuse(ds, 431, "request line too long");
	if (rs_msg_append(m, at, n) < 0)
		return refuse(ds, 503, "out of memory");
	m->path.value_len += (uint32_t)n;
	m->header_bytes += (uint32_t)n;
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct rs_ds *ds = ds_of(p);
	struct rs_msg *m = &ds->st->req;

	if (!ds->in_field && m->nh >= ds->w->opts->max_headers)
		return refuse(ds, 431, "too many header fields");
	if (m->header_bytes + n > ds->w->opts->max_header_bytes)
		return refuse(ds, 431, "request headers too large");
	if (rs_proxy__hdr_field_check(at, n) < 0)
		return refuse(ds, 400, "invalid character in a header name");
	if (rs_proxy__hdr_field(m, &ds->in_field, at, n) < 0)
		return refuse(ds, 503, "out of memory");
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct rs_ds *ds = ds_of(p);
	struct rs_msg *m = &ds->st->req;
	int ret;

	if (m->header_bytes + n > ds->w->opts->max_header_bytes)
		return refuse(ds, 431, "request headers too large");
	ret = rs_proxy__hdr_value(m, &ds->in_field, at, n, ds->exec_base, ds->prev_last);
	if (ret == -EINVAL)
		return refuse(ds, 400, "invalid header value (control character or obs-fold)");
	if (ret < 0)
		return refuse(ds, 503, "out of memory");
	return 0;
}

/* RFC 9112 §3.2.2: a request in absolute form names its authority in the
 * target, which replaces Host; the path forwarded is the origin form. */
static int absolute_form(struct rs_msg *m)
{
	const char *t = m->buf + m->path.value_off;
	uint32_t len = m->path.value_len, skip;
	const char *slash;

	if (len >= 7 && strncasecmp(t, "http://", 7) == 0)
		skip = 7;
	else if (len >= 8 && strncasecmp(t, "https://", 8) == 0)
		skip = 8;
	else
		return 0;
	slash = memchr(t + skip, '/', len - skip);
	/* Offsets only from here: adding Host may move the buffer. */
	uint32_t slash_off = slash ? (uint32_t)(slash - m->buf) : 0;

	m->authority.value_off = m->path.value_off + skip;
	m->authority.value_len = slash ? (uint32_t)(slash - t) - skip : len - skip;
	if (m->authority.value_len == 0)
		return -1;
	rs_msg_remove(m, "host", 4);
	if (rs_msg_add_header(m, "host", 4, m->buf + m->authority.value_off,
			      m->authority.value_len) < 0)
		return -1;
	if (slash) {
		m->path.value_len = len - (slash_off - m->path.value_off);
		m->path.value_off = slash_off;
	} else {
		int64_t off = rs_msg_append(m, "/", 1);

		if (off < 0)
			return -1;
		m->path.value_off = (uint32_t)off;
		m->path.value_len = 1;
	}
	return 1;
}

static int on_headers_complete(llhttp_t *p)
{
	struct rs_ds *ds = ds_of(p);
	struct rs_stream *st = ds->st;
	struct rs_msg *m = &st->req;
	const char *method = llhttp_method_name((llhttp_method_t)p->method);
	const struct rs_hdr *host = NULL;
	unsigned nhost = 0;
	int64_t off;
	int abs;

	off = rs_msg_append(m, method, strlen(method));
	if (off < 0)
		return refuse(ds, 503, "out of memory");
	m->method_s.value_off = (uint32_t)off;
	m->method_s.value_len = (uint32_t)strlen(method);
	m->method = rs_method_from(method, strlen(method));
	m->http_major = p->http_major;
	m->http_minor = p->http_minor;
	/* Upgrade is hop-by-hop and not offered: the request goes on as a
	 * plain one, and llhttp must not stop after it (it reads the flag back
	 * after this callback). */
	p->upgrade = 0;
	if (m->method == RS_METHOD_CONNECT)
		return refuse(ds, 501, "CONNECT is not supported");
	for (uint32_t i = 0; i < m->nh; i++) {
		if (rs_hdr_name_is(m, &m->h[i], "host", 4)) {
			host = &m->h[i];
			nhost++;
		}
	}
	/* RFC 9112 §3.2: exactly one Host in HTTP/1.1, and a valid one. */
	if (nhost > 1)
		return refuse(ds, 400, "more than one Host header");
	abs = absolute_form(m);
	if (abs < 0)
		return refuse(ds, 400, "invalid request target");
	if (!abs) {
		if (!host) {
			if (m->http_minor >= 1 || m->http_major > 1)
				return refuse(ds, 400, "missing Host header");
		} else {
			m->authority = *host;
		}
	}
	/* RFC 9112 §6.3: a request whose Transfer-Encoding does not end in
	 * chunked cannot be framed. llhttp refuses it on a connection's first
	 * request only, so check every time. */
	if ((p->flags & F_TRANSFER_ENCODING) && !(p->flags & F_CHUNKED))
		return refuse(ds, 400, "Transfer-Encoding does not end in chunked");
	/* RFC 9112 §6.1: a transfer coding the proxy does not apply is 501;
	 * re-chunking the body would silently drop it. */
	if ((p->flags & F_CHUNKED) && !rs_msg_only_chunked(m))
		return refuse(ds, 501, "transfer codings other than chunked are not supported");
	if (p->flags & F_CHUNKED) {
		m->body = RS_BODY_STREAM;
	} else if (p->flags & F_CONTENT_LENGTH) {
		m->content_length = (int64_t)p->content_length;
		m->body = m->content_length ? RS_BODY_LENGTH : RS_BODY_NONE;
	} else {
		m->body = RS_BODY_NONE;
	}
	rs_proxy__stream_request_head(st);
	/* A local answer given before the body arrived ends this connection:
	 * stop parsing here rather than read a body nobody wants. */
	if (st->local && m->body != RS_BODY_NONE)
		return HPE_PAUSED;
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
	struct rs_ds *ds = ds_of(p);

	if (ds->st)
		rs_proxy__stream_request_data(ds->st, at, n);
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct rs_ds *ds = ds_of(p);
	struct rs_stream *st = ds->st;

	if (!st)
		return HPE_PAUSED;
	st->req_done = true;
	if (!llhttp_should_keep_alive(p))
		st->close_after = true;
	rs_proxy__stream_request_end(st);
	/* Hold the next pipelined request until this response is complete. */
	return HPE_PAUSED;
}

static const llhttp_settings_t ds_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static void parse_failed(struct rs_ds *ds, enum llhttp_errno e)
{
	int status = ds->err_status ? ds->err_status : 400;
	const char *text = ds->err_status ? ds->err_text : llhttp_get_error_reason(&ds->p);
	char body[256];

	rs_stat_inc(ds->w->stats, RS_C_DS_RQ_REJECTED);
	snprintf(body, sizeof body, "%s: %s",
		 status == 431 ? "request header fields too large" : "invalid HTTP request",
		 text ? text : "malformed");
	rs_debug("downstream %s: %d %s", ds->peer_ip, status, body);
	if (ds->st && ds->st->resp_started) {
		/* Mid-body: the response is already on its way; only a reset
		 * tells the client that its request was cut. */
		rs_proxy__ds_abort(ds);
		return;
	}
	if (!ds->st) {
		ds->st = rs_proxy__stream_new(ds);
		if (!ds->st) {
			rs_proxy__ds_abort(ds);
			return;
		}
	}
	ds->st->close_after = true;
	rs_proxy__stream_local_reply(ds->st, RS_RFLAG_NONE, status, body);
}

bool rs_proxy__ds_backlogged(const struct rs_stream *st)
{
	if (st->ds->h2)
		return rs_proxy__h2_backlogged(st);
	return rs_conn_queued(&st->ds->c) > RS_HIGH_WATER;
}

static bool upstream_backlogged(struct rs_ds *ds)
{
	return ds->st && ds->st->us && rs_proxy__us_backlogged(ds->st);
}

/* Responses the proxy writes itself (404s to pipelined requests) count too:
 * a client that sends and never reads must not grow our queue. */
static bool backlogged(struct rs_ds *ds)
{
	return upstream_backlogged(ds) || rs_conn_queued(&ds->c) > RS_HIGH_WATER;
}

static bool can_parse(struct rs_ds *ds)
{
	return !ds->paused && !rs_conn_closing(&ds->c) && !backlogged(ds);
}

static void stream_done(struct rs_ds *ds);

/* Parses p[0..n); what the parser does not take waits in pend. */
static void parse(struct rs_ds *ds, const char *p, size_t n, bool from_pend)
{
	enum llhttp_errno e;
	size_t used = n;

	ds->exec_base = p;
	e = llhttp_execute(&ds->p, p, n);
	if (e == HPE_PAUSED) {
		used = (size_t)(llhttp_get_error_pos(&ds->p) - p);
		ds->paused = true;
	} else if (e != HPE_OK) {
		used = n;
		parse_failed(ds, e);
	}
	if (used)
		ds->prev_last = p[used - 1];
	if (from_pend)
		ds->pend.off += (uint32_t)used;
	else if (!rs_conn_closing(&ds->c) &&
		 rs_proxy__pend_stash(&ds->pend, p + used, n - used) < 0)
		rs_proxy__ds_abort(ds);
	if (ds->done_pending) {
		/* The response ended inside a callback; finish outside llhttp. */
		ds->done_pending = false;
		stream_done(ds);
	}
}

/* Runs the parser over new bytes and then over what waited, as far as the
 * parser and backpressure allow. Never re-entered: a response that ends
 * inside a callback is finished after llhttp_execute returns. */
static void drive(struct rs_ds *ds, const char *p, size_t n)
{
	if (ds->driving) {
		if (rs_proxy__pend_stash(&ds->pend, p, n) < 0)
			rs_proxy__ds_abort(ds);
		return;
	}
	ds->driving = true;
	if (n) {
		if (can_parse(ds) && ds->pend.len == ds->pend.off)
			parse(ds, p, n, false);
		else if (rs_proxy__pend_stash(&ds->pend, p, n) < 0)
			rs_proxy__ds_abort(ds);
	}
	while (can_parse(ds) && ds->pend.len > ds->pend.off) {
		size_t m = ds->pend.len - ds->pend.off;

		if (m > 16384)
			m = 16384;
		parse(ds, ds->pend.p + ds->pend.off, m, true);
	}
	if (ds->pend.off == ds->pend.len)
		ds->pend.off = ds->pend.len = 0;
	ds->driving = false;
	if (rs_conn_closing(&ds->c))
		return;
	/* Read on while parsing can go on, and a little ahead while a
	 * response is pending (so a client's close is seen); stop under
	 * backpressure. */
	if (ds->eof && ds->pend.len == ds->pend.off) {
		/* The client half-closed and everything it sent is parsed: a
		 * request still incomplete never will be. */
		if (!ds->st) {
			rs_conn_close_graceful(&ds->c);
			return;
		}
		if (!ds->st->req_done) {
			ds->st->rflag = RS_RFLAG_DC;
			rs_proxy__ds_abort(ds);
			return;
		}
	}
	if (backlogged(ds) || ds->eof || ds->pend.len - ds->pend.off > RS_PIPELINE_READAHEAD)
		rs_conn_read_stop(&ds->c);
	else
		rs_conn_read_start(&ds->c);
	/* One send per side for everything this batch of bytes produced: a
	 * request head and the body that came with it leave together. */
	if (ds->st && ds->st->us)
		rs_proxy__us_flush(ds->st->us);
	rs_conn_flush(&ds->c);
}

/* RFC 9113 §3.4: the client connection preface. */
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof h2_preface - 1)

/* Decides the protocol from the first bytes, keeping them in pend until
 * they do: 1 HTTP/2, 0 HTTP/1.x, -1 not yet (a prefix of the preface). */
static int sniff(struct rs_ds *ds, const char *p, size_t n)
{
	size_t have = ds->pend.len - ds->pend.off;

	for (size_t i = 0; i < n && have + i < H2_PREFACE_LEN; i++)
		if (p[i] != h2_preface[have + i])
			return 0;
	if (have + n >= H2_PREFACE_LEN)
		return 1;
	if (rs_proxy__pend_stash(&ds->pend, p, n) < 0)
		rs_proxy__ds_abort(ds);
	return -1;
}

static void ds_on_data(struct rs_conn *c, const char *p, size_t n)
{
	struct rs_ds *ds = (struct rs_ds *)c;

	ds->last_active = ds->w->loop.now;
	if (ds->h2) {
		rs_proxy__h2_recv(ds, p, n);
		return;
	}
	if (!ds->sniffed) {
		int proto = sniff(ds, p, n);

		if (proto < 0)
			return;
		ds->sniffed = true;
		if (proto == 1) {
			if (rs_proxy__h2_start(ds) < 0) {
				rs_proxy__ds_abort(ds);
				return;
			}
			if (ds->pend.len > ds->pend.off)
				rs_proxy__h2_recv(ds, ds->pend.p + ds->pend.off,
						  ds->pend.len - ds->pend.off);
			free(ds->pend.p);
			memset(&ds->pend, 0, sizeof ds->pend);
			if (!rs_conn_closing(&ds->c))
				rs_proxy__h2_recv(ds, p, n);
			return;
		}
	}
	drive(ds, p, n);
}

void rs_proxy__ds_unblock(struct rs_ds *ds, struct rs_stream *st)
{
	if (rs_conn_closing(&ds->c))
		return;
	if (ds->h2)
		rs_proxy__h2_unblock(ds, st);
	else
		drive(ds, NULL, 0);
}

static void ds_on_eof(struct rs_conn *c, int err)
{
	struct rs_ds *ds = (struct rs_ds *)c;

	ds->eof = true;
	if (ds->h2) {
		/* Streams cannot go on without their connection (RFC 9113 has
		 * no half-close of a connection). */
		rs_proxy__ds_abort(ds);
		return;
	}
	if (err == 0) {
		/* A half-close: requests already sent (pipelined, or a body
		 * waiting behind backpressure) are still answered; drive()
		 * closes once nothing is left. */
		rs_proxy__ds_unblock(ds, ds->st);
		return;
	}
	if (ds->st)
		ds->st->rflag = RS_RFLAG_DC;
	rs_proxy__ds_abort(ds);
}

static void ds_on_flushed(struct rs_conn *c)
{
	struct rs_ds *ds = (struct rs_ds *)c;

	if (ds->h2)
		rs_proxy__h2_flushed(ds);
	else if (ds->st && ds->st->us)
		rs_proxy__us_unblock(ds->st->us, ds->st);
	else
		rs_proxy__ds_unblock(ds, ds->st);
}

static void ds_on_closed(struct rs_conn *c)
{
	struct rs_ds *ds = (struct rs_ds *)c;
	struct rs_worker *w = ds->w;

	if (ds->st)
		rs_proxy__stream_free(ds->st);
	rs_proxy__h2_free(ds);
	rs_timer_cancel(&w->loop.timers, &ds->idle);
	if (ds->prev)
		ds->prev->next = ds->next;
	else
		w->ds_list = ds->next;
	if (ds->next)
		ds->next->prev = ds->prev;
	rs_stat_dec(w->stats, RS_C_DS_CX_ACTIVE);
	free(ds->pend.p);
	free(ds);
}

static const struct rs_conn_cbs ds_cbs = {
	.on_data = ds_on_data,
	.on_eof = ds_on_eof,
	.on_flushed = ds_on_flushed,
	.on_closed = ds_on_closed,
};

/* The idle limit that applies now: a request in progress (or a connection
 * finishing its last response) has the stream idle timeout, a connection
 * between requests the connection idle timeout. 0: none. */
static uint64_t idle_limit(const struct rs_ds *ds)
{
	const struct rs_proxy_opts *o = ds->w->opts;

	bool busy = ds->st || (ds->h2 && rs_proxy__h2_streams(ds));

	return busy || rs_conn_closing(&ds->c) ? o->stream_idle_timeout_ns : o->idle_timeout_ns;
}

static uint64_t last_activity(const struct rs_ds *ds)
{
	return ds->last_active > ds->c.last_io ? ds->last_active : ds->c.last_io;
}

/* Brings the lazy timer forward when the limit that applies got shorter
 * (a request began or ended); a later deadline waits for the timer to fire. */
static void idle_rearm(struct rs_ds *ds)
{
	uint64_t limit = idle_limit(ds);
	uint64_t at = last_activity(ds) + limit;

	if (limit == 0)
		return;
	if (!rs_timer_armed(&ds->idle) || at < ds->idle.at_ns)
		rs_timer_arm(&ds->w->loop.timers, &ds->idle, at);
}

/* One lazy timer per connection: activity only records a time; the timer
 * checks it when it fires and goes back to sleep until the new deadline. */
static void on_idle_timer(struct rs_timer *t)
{
	struct rs_ds *ds = (struct rs_ds *)((char *)t - offsetof(struct rs_ds, idle));
	uint64_t now = ds->w->loop.now;
	uint64_t last = last_activity(ds);
	uint64_t limit = idle_limit(ds);

	if (limit == 0)
		return;
	if (now - last < limit) {
		rs_timer_arm(&ds->w->loop.timers, &ds->idle, last + limit); /* in the future */
		return;
	}
	if (rs_conn_closing(&ds->c)) {
		/* A peer that stopped reading its last response. */
		rs_conn_close(&ds->c);
	} else if (ds->h2) {
		/* Idle with no stream: GOAWAY, then close. Idle with streams
		 * (none moved for the stream idle timeout): they all go. */
		if (rs_proxy__h2_streams(ds))
			rs_proxy__ds_abort(ds);
		else
			rs_proxy__h2_drain(ds);
	} else if (!ds->st) {
		rs_conn_close_graceful(&ds->c);
	} else if (!ds->st->resp_started) {
		/* Envoy's stream idle timeout: 408 while the request is still
		 * arriving, 504 once it is waiting on the upstream. */
		ds->st->close_after = true;
		if (ds->st->us)
			rs_proxy__us_release(ds->st->us, ds->st, false);
		rs_proxy__stream_local_reply(ds->st, RS_RFLAG_NONE, ds->st->req_done ? 504 : 408,
					     "stream timeout");
	} else {
		rs_proxy__ds_abort(ds);
	}
}

/* The inbound port's mutual TLS, by the PeerAuthentication in force for the
 * port the connection was sent to (known with capture; without, the
 * workload's mode applies): STRICT takes TLS only, PERMISSIVE either (the
 * first bytes tell), DISABLE clear text only. false: the connection is
 * refused. */
static bool inbound_tls(struct rs_ds *ds)
{
	struct rs_worker *w = ds->w;
	const struct rs_tls_ctx *ctx = w->snap->inbound_tls;
	uint32_t port = 0;
	enum rs_mtls_mode mode;

	/* Read once here; the request's route reads it again from ds. */
	ds->orig_dst_len = sizeof ds->orig_dst;
	ds->orig_dst_state =
	    rs_sock_original_dst(ds->c.fd, &ds->orig_dst, &ds->orig_dst_len) == 0 ? 1 : -1;
	if (ds->orig_dst_state > 0)
		port = rs_proxy__orig_dst_port(ds);
	mode = rs_mtls_mode_for(&w->snap->selected, w->opts->ns, port);
	if (mode == RS_MTLS_DISABLE || (mode == RS_MTLS_PERMISSIVE && !ctx))
		return true;
	if (!ctx) {
		static _Thread_local bool warned;

		if (!warned)
			rs_warn("inbound connections refused: PeerAuthentication is STRICT, and "
				"there is no --cert, --key and --ca to serve mutual TLS with");
		warned = true;
		return false;
	}
	return rs_tls_server_attach(&ds->c, ctx, mode == RS_MTLS_PERMISSIVE) == 0;
}

void rs_proxy__ds_accept(struct rs_worker *w, int fd, bool inbound)
{
	struct rs_ds *ds;
	unsigned per_shard = 0;

	if (w->opts->max_connections)
		per_shard = (w->opts->max_connections + w->opts->concurrency - 1) /
			    w->opts->concurrency;
	if (per_shard && w->stats->c[RS_C_DS_CX_ACTIVE] >= per_shard) {
		rs_stat_inc(w->stats, RS_C_DS_CX_OVERFLOW);
		close(fd);
		return;
	}
	ds = calloc(1, sizeof *ds);
	if (!ds || rs_conn_init(&ds->c, &w->loop, fd, &ds_cbs) < 0) {
		free(ds);
		close(fd);
		return;
	}
	ds->w = w;
	ds->c.rx_bytes = &w->stats->c[RS_C_DS_RX_BYTES];
	ds->c.tx_bytes = &w->stats->c[RS_C_DS_TX_BYTES];
	ds->c.peer_len = sizeof ds->c.peer;
	if (getpeername(fd, (struct sockaddr *)&ds->c.peer, &ds->c.peer_len) == 0)
		rs_sockaddr_ip(&ds->c.peer, ds->peer_ip, sizeof ds->peer_ip);
	else
		strcpy(ds->peer_ip, "unknown");
	ds->inbound = inbound;
	llhttp_init(&ds->p, HTTP_REQUEST, &ds_settings);
	ds->p.data = ds;
	ds->next = w->ds_list;
	if (w->ds_list)
		w->ds_list->prev = ds;
	w->ds_list = ds;
	ds->idle.fn = on_idle_timer;
	ds->last_active = w->loop.now;
	idle_rearm(ds);
	rs_stat_inc(w->stats, RS_C_DS_CX_TOTAL);
	rs_stat_inc(w->stats, RS_C_DS_CX_ACTIVE);
	if (inbound && !inbound_tls(ds)) {
		rs_conn_abort(&ds->c);
		return;
	}
	rs_conn_read_start(&ds->c);
}

/* --- writing responses: HTTP/1.1 framing (RFC 9112 §6, §7) --- */

int rs_proxy__ds_response_head(struct rs_ds *ds, struct rs_stream *st)
{
	const struct rs_msg *r = &st->resp;

	if (ds->h2)
		return rs_proxy__h2_response_head(ds, st);
	if (r->body == RS_BODY_STREAM) {
		if (st->req.http_major == 1 && st->req.http_minor == 0)
			st->close_after = true; /* an HTTP/1.0 client: delimit by close */
		else
			st->resp_chunked = true;
	}
	/* A client that half-closed gets "close" on its last response only;
	 * pipelined requests it sent before still follow. */
	if (ds->w->draining || (ds->eof && ds->pend.len == ds->pend.off))
		st->close_after = true;
	/* No flush here: the body parsed from the same bytes joins the head in
	 * one send (one segment for a small response). */
	return rs_h1_encode_response_head(&ds->c.out, &ds->w->loop.chunks, r, st->resp_chunked,
					  st->close_after);
}

int rs_proxy__ds_response_data(struct rs_ds *ds, struct rs_stream *st, const char *p, size_t n)
{
	if (ds->h2)
		return rs_proxy__h2_response_data(ds, st, p, n);
	if (st->resp_chunked)
		return rs_h1_encode_chunk(&ds->c.out, &ds->w->loop.chunks, p, n);
	return rs_conn_write(&ds->c, p, n);
}

int rs_proxy__ds_response_end(struct rs_ds *ds, struct rs_stream *st)
{
	if (ds->h2)
		return rs_proxy__h2_response_end(ds, st);
	if (st->resp_chunked)
		return rs_h1_encode_last_chunk(&ds->c.out, &ds->w->loop.chunks);
	return 0;
}

int rs_proxy__ds_local_reply(struct rs_ds *ds, struct rs_stream *st, int status,
			     const char *text)
{
	if (ds->h2)
		return rs_proxy__h2_local_reply(ds, st, status, text);
	return rs_h1_encode_local_reply(&ds->c.out, &ds->w->loop.chunks, status, text,
					st->close_after || ds->w->draining,
					st->request_id[0] ? st->request_id : NULL);
}

void rs_proxy__ds_continue(struct rs_ds *ds, struct rs_stream *st)
{
	if (ds->h2) {
		rs_proxy__h2_continue(ds, st);
		return;
	}
	/* HTTP/1.0 clients do not know 100 (RFC 9110 §15.2). */
	if (st->req.http_major == 1 && st->req.http_minor == 0)
		return;
	if (rs_conn_write(&ds->c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
		rs_proxy__ds_abort(ds);
}

void rs_proxy__ds_flush(struct rs_ds *ds)
{
	if (ds->h2)
		rs_proxy__h2_flush(ds);
	else
		rs_conn_flush(&ds->c);
}

static void stream_done(struct rs_ds *ds)
{
	struct rs_stream *st = ds->st;
	bool close = st->close_after || ds->w->draining ||
		     (ds->eof && ds->pend.len == ds->pend.off);

	ds->st = NULL;
	rs_proxy__stream_free(st);
	ds->last_active = ds->w->loop.now;
	if (close) {
		rs_conn_close_graceful(&ds->c);
		return;
	}
	idle_rearm(ds);
	rs_conn_flush(&ds->c);
	if (ds->paused) {
		ds->paused = false;
		llhttp_resume(&ds->p);
	}
}

void rs_proxy__ds_stream_done(struct rs_ds *ds, struct rs_stream *st)
{
	if (ds->h2) {
		rs_proxy__h2_stream_done(ds, st);
		return;
	}
	if (ds->driving) {
		ds->done_pending = true;
		return;
	}
	stream_done(ds);
	rs_proxy__ds_unblock(ds, NULL);
}

void rs_proxy__ds_reset(struct rs_ds *ds, struct rs_stream *st)
{
	if (ds->h2)
		rs_proxy__h2_reset(ds, st);
	else
		rs_proxy__ds_abort(ds);
}

void rs_proxy__ds_abort(struct rs_ds *ds)
{
	if (ds->st && ds->st->us)
		rs_proxy__us_release(ds->st->us, ds->st, false);
	/* A reset, not a FIN: a client must not take a cut response for a
	 * complete one (a body delimited by the close would look whole). */
	rs_conn_abort(&ds->c);
}

void rs_proxy__ds_drain(struct rs_ds *ds)
{
	if (ds->h2) {
		rs_proxy__h2_drain(ds);
		return;
	}
	if (ds->st)
		ds->st->close_after = true;
	else
		rs_conn_close_graceful(&ds->c);
}
