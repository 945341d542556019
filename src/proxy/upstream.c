/* Upstream connections, pooled per shard and endpoint. HTTP/1.1 here: a
 * request takes an idle keep-alive connection when there is one, else opens
 * one. HTTP/2 (upstream_h2.c, when the cluster's protocol says so): a
 * request joins a connection with room for another stream, else opens one. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "ringside/tls-session.h"

/* Idle connections kept per endpoint and shard. */
#define POOL_MAX_IDLE 256

static struct rs_us *us_of(llhttp_t *p)
{
	return p->data;
}

static int fail(struct rs_us *us, enum rs_rflag flag, int status, const char *text)
{
	struct rs_stream *st = us->st;

	if (st)
		rs_proxy__stream_upstream_failed(st, flag, status, text);
	return -1;
}

static int on_message_begin(llhttp_t *p)
{
	struct rs_us *us = us_of(p);

	if (!us->st)
		return -1; /* bytes nobody asked for */
	rs_msg_reset(&us->st->resp);
	return 0;
}

static int too_large(struct rs_us *us)
{
	return fail(us, RS_RFLAG_UPE, 502,
		    "upstream connect error or disconnect/reset before headers. reset reason: "
		    "protocol error (response headers too large)");
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct rs_us *us = us_of(p);
	struct rs_msg *m;

	if (!us->st)
		return -1;
	m = &us->st->resp;
	if (m->header_bytes + n > us->w->opts->max_header_bytes ||
	    m->nh >= 2 * us->w->opts->max_headers)
		return too_large(us);
	if (rs_proxy__hdr_field_check(at, n) < 0)
		return fail(us, RS_RFLAG_UPE, 502,
			    "upstream connect error or disconnect/reset before headers. reset "
			    "reason: protocol error (invalid header name)");
	return rs_proxy__hdr_field(m, &us->in_field, at, n) < 0 ? -1 : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct rs_us *us = us_of(p);

	if (!us->st)
		return -1;
	if (us->st->resp.header_bytes + n > us->w->opts->max_header_bytes)
		return too_large(us);
	if (rs_proxy__hdr_value(&us->st->resp, &us->in_field, at, n, us->exec_base,
				us->prev_last) < 0)
		return fail(us, RS_RFLAG_UPE, 502,
			    "upstream connect error or disconnect/reset before headers. reset "
			    "reason: protocol error (invalid header value)");
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct rs_us *us = us_of(p);
	struct rs_stream *st = us->st;
	struct rs_msg *m = &st->resp;

	m->status = p->status_code;
	m->http_major = p->http_major;
	m->http_minor = p->http_minor;
	if (m->status >= 100 && m->status < 200) {
		/* Interim responses end here (the 100 we already gave, 102, 103);
		 * 101 would need the upgrade we do not offer. */
		if (m->status == 101)
			return fail(us, RS_RFLAG_UPE, 502,
				    "upstream connect error or disconnect/reset before headers. "
				    "reset reason: protocol error (unexpected 101)");
		us->skip_interim = true;
		return 0;
	}
	if (us->head_req || m->status == 204 || m->status == 304) {
		m->body = RS_BODY_NONE;
	} else if (p->flags & F_CHUNKED) {
		if (!rs_msg_only_chunked(m))
			return fail(us, RS_RFLAG_UPE, 502,
				    "upstream connect error or disconnect/reset before headers. "
				    "reset reason: protocol error (unsupported transfer coding)");
		m->body = RS_BODY_STREAM;
	} else if (p->flags & F_CONTENT_LENGTH) {
		m->content_length = (int64_t)p->content_length;
		m->body = RS_BODY_LENGTH;
	} else {
		m->body = RS_BODY_STREAM; /* until the upstream closes */
	}
	if (rs_proxy__stream_retry_response(st))
		return -1; /* this try is over; its connection is being closed */
	rs_timer_cancel(&us->w->loop.timers, &st->timeout);
	rs_proxy__stream_response_head(st);
	/* For HEAD the length describes a body that is not sent. */
	return us->head_req ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
	struct rs_us *us = us_of(p);

	if (us->st)
		rs_proxy__stream_response_data(us->st, at, n);
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct rs_us *us = us_of(p);

	if (us->skip_interim) {
		us->skip_interim = false;
		us->in_field = false;
		return 0;
	}
	us->resp_done = true;
	us->keep_alive = llhttp_should_keep_alive(p);
	/* Delivered once llhttp_execute has returned: ending the stream may
	 * hand this connection to the next request. */
	us->end_pending = us->st != NULL;
	return HPE_PAUSED;
}

static const llhttp_settings_t us_settings = {
	.on_message_begin = on_message_begin,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static bool downstream_backlogged(struct rs_us *us)
{
	return us->st && rs_proxy__ds_backlogged(us->st);
}

static void deliver_end(struct rs_us *us)
{
	if (us->end_pending && us->st) {
		us->end_pending = false;
		rs_proxy__stream_response_end(us->st, us->keep_alive);
	}
}

static void parse(struct rs_us *us, const char *p, size_t n, bool from_pend)
{
	enum llhttp_errno e;
	size_t used = n;

	us->exec_base = p;
	e = llhttp_execute(&us->p, p, n);

	if (e == HPE_PAUSED) {
		used = (size_t)(llhttp_get_error_pos(&us->p) - p);
		us->paused = true;
	} else if (e != HPE_OK) {
		if (us->st)
			fail(us, RS_RFLAG_UPE, 502,
			     "upstream connect error or disconnect/reset before headers. reset "
			     "reason: protocol error");
		else
			rs_conn_close(&us->c);
		return;
	}
	if (used)
		us->prev_last = p[used - 1];
	if (from_pend)
		us->pend.off += (uint32_t)used;
	else if (n > used && us->st && rs_proxy__pend_stash(&us->pend, p + used, n - used) < 0)
		fail(us, RS_RFLAG_NONE, 503, "out of memory");
	deliver_end(us);
}

/* Sends what a read of an HTTP/2 connection produced for each client once.
 * A flush may end streams (so the list changes under it): each pass marks a
 * client flushed and starts over from the head, skipping marked ones. */
static void flush_clients(struct rs_us *us)
{
	uint32_t gen = ++us->w->flush_gen;
	struct rs_stream *st = us->streams;

	while (st) {
		struct rs_ds *ds = st->ds;

		if (ds->flush_gen == gen) {
			st = st->up_next;
			continue;
		}
		ds->flush_gen = gen;
		rs_proxy__ds_flush(ds);
		st = us->streams;
	}
}

static void us_on_data(struct rs_conn *c, const char *p, size_t n)
{
	struct rs_us *us = (struct rs_us *)c;
	struct rs_ds *ds;

	if (us->h2) {
		rs_proxy__h2u_recv(us, p, n);
		flush_clients(us);
		return;
	}
	if (us->shadow)
		return; /* a mirror's answer is not wanted; the close ends it */
	if (us->idle || !us->st) {
		/* An idle connection must stay silent. */
		rs_conn_close(&us->c);
		return;
	}
	us->got_bytes = true;
	ds = us->st->ds;
	ds->last_active = us->w->loop.now;
	if (us->paused || us->pend.len > us->pend.off || downstream_backlogged(us)) {
		if (rs_proxy__pend_stash(&us->pend, p, n) < 0)
			fail(us, RS_RFLAG_NONE, 503, "out of memory");
		rs_conn_read_stop(&us->c);
		return;
	}
	parse(us, p, n, false);
	if (!rs_conn_closing(&us->c) && downstream_backlogged(us))
		rs_conn_read_stop(&us->c);
	rs_proxy__ds_flush(ds);
}

void rs_proxy__us_unblock(struct rs_us *us, struct rs_stream *st)
{
	if (us->h2) {
		rs_proxy__h2u_unblock(us, st);
		return;
	}
	while (us->st && !us->paused && us->pend.len > us->pend.off && !rs_conn_closing(&us->c) &&
	       !downstream_backlogged(us)) {
		size_t n = us->pend.len - us->pend.off;

		if (n > 16384)
			n = 16384;
		parse(us, us->pend.p + us->pend.off, n, true);
	}
	if (us->pend.off == us->pend.len)
		us->pend.off = us->pend.len = 0;
	if (us->st)
		rs_proxy__ds_flush(us->st->ds);
	if (us->st && !rs_conn_closing(&us->c) && !downstream_backlogged(us) &&
	    !(us->c.flags & RS_CONN_EOF))
		rs_conn_read_start(&us->c);
	if (us->st && (us->c.flags & RS_CONN_EOF) && us->pend.len == 0 && !rs_conn_closing(&us->c))
		us->c.cbs->on_eof(&us->c, 0);
}

static void us_on_eof(struct rs_conn *c, int err)
{
	struct rs_us *us = (struct rs_us *)c;

	if (us->h2) {
		char text[300];

		if (rs_tls_error(&us->c) && !us->got_bytes) {
			snprintf(text, sizeof text, "%s, transport failure reason: %s",
				 rs_proxy__connect_failure_text, rs_tls_error(&us->c));
			rs_stat_inc(us->w->stats, RS_C_US_CX_CONNECT_FAIL);
			rs_proxy__h2u_fail_all(us, RS_RFLAG_UF, text);
		} else {
			rs_proxy__h2u_fail_all(us, RS_RFLAG_UC,
					       "upstream connect error or disconnect/reset before "
					       "headers. reset reason: connection termination");
		}
		rs_conn_close(&us->c);
		return;
	}
	if (!us->st) {
		rs_conn_close(&us->c);
		return;
	}
	if (us->pend.len > us->pend.off)
		return; /* parse what is left first; us_unblock comes back here */
	/* A body delimited by the close ends here: llhttp_finish runs
	 * on_message_complete (which pauses, hence not HPE_OK). */
	if (err == 0 && !us->paused && !us->resp_done)
		llhttp_finish(&us->p);
	if (us->resp_done) {
		deliver_end(us);
		return;
	}
	if (rs_tls_error(&us->c) && !us->got_bytes) {
		char text[300];

		snprintf(text, sizeof text, "%s, transport failure reason: %s", rs_proxy__connect_failure_text,
			 rs_tls_error(&us->c));
		rs_stat_inc(us->w->stats, RS_C_US_CX_CONNECT_FAIL);
		fail(us, RS_RFLAG_UF, 503, text);
		return;
	}
	rs_stat_inc(us->w->stats, RS_C_US_RQ_RESET);
	fail(us, RS_RFLAG_UC, 503,
	     "upstream connect error or disconnect/reset before headers. reset reason: "
	     "connection termination");
}

static void us_on_flushed(struct rs_conn *c)
{
	struct rs_us *us = (struct rs_us *)c;

	if (us->h2)
		rs_proxy__h2u_flushed(us);
	else if (us->st)
		rs_proxy__ds_unblock(us->st->ds, us->st);
}

/* DestinationRule tls SIMPLE or MUTUAL: the request goes once the
 * handshake is done; a failed one is a connection failure (UF), as Envoy
 * reports it. Never in clear: without its context the request fails. */
static bool tls_start(struct rs_us *us)
{
	const struct rs_stream *st = us->h2 ? us->streams : us->st;
	const struct rs_cluster *cl = st ? st->cluster : NULL;
	char text[300];

	if (!cl) {
		rs_conn_close(&us->c); /* its requests are gone; the settings with them */
		return false;
	}
	if (cl->tls && rs_tls_client_attach(&us->c, cl->tls, cl->host, us->pool->tls_resume,
					    us->h2 != NULL) == 0)
		return true;
	snprintf(text, sizeof text, "%s, transport failure reason: TLS_error:%s",
		 rs_proxy__connect_failure_text, cl->tls_error ? cl->tls_error : "handshake could not start");
	rs_stat_inc(us->w->stats, RS_C_US_CX_CONNECT_FAIL);
	if (us->h2) {
		rs_proxy__h2u_fail_all(us, RS_RFLAG_UF, text);
		rs_conn_close(&us->c);
	} else {
		fail(us, RS_RFLAG_UF, 503, text);
	}
	return false;
}

static void us_on_connect(struct rs_conn *c, int err)
{
	struct rs_us *us = (struct rs_us *)c;
	struct rs_worker *w = us->w;
	char text[200];

	if (err < 0) {
		rs_stat_inc(w->stats, RS_C_US_CX_CONNECT_FAIL);
		if (err == -ETIMEDOUT)
			rs_stat_inc(w->stats, RS_C_US_CX_CONNECT_TIMEOUT);
		snprintf(text, sizeof text,
			 "upstream connect error or disconnect/reset before headers. reset reason: "
			 "%s%s%s",
			 err == -ETIMEDOUT ? "connection timeout" : "connection failure",
			 err == -ETIMEDOUT ? "" : ", transport failure reason: ",
			 err == -ETIMEDOUT ? "" : strerror(-err));
		if (us->h2) {
			rs_proxy__h2u_fail_all(us, RS_RFLAG_UF, text);
			rs_conn_close(&us->c);
		} else if (us->st)
			fail(us, RS_RFLAG_UF, 503, text);
		else
			rs_conn_close(&us->c);
		return;
	}
	if (us->pool && us->pool->tls_key && !tls_start(us))
		return;
	us->connected = true;
	rs_conn_read_start(&us->c);
	if (us->h2)
		rs_proxy__h2u_flush(us);
	else
		rs_conn_flush(&us->c);
}

static void pool_unlink(struct rs_us *us)
{
	struct rs_pool *pool = us->pool;

	if (us->h2) {
		if (us->prev)
			us->prev->next = us->next;
		else if (pool->h2 == us)
			pool->h2 = us->next;
		if (us->next)
			us->next->prev = us->prev;
		us->prev = us->next = NULL;
		return;
	}
	if (!us->idle)
		return;
	if (us->prev)
		us->prev->next = us->next;
	else
		pool->idle = us->next;
	if (us->next)
		us->next->prev = us->prev;
	us->prev = us->next = NULL;
	us->idle = false;
	pool->nidle--;
}

static void us_on_closed(struct rs_conn *c)
{
	struct rs_us *us = (struct rs_us *)c;

	if (us->shadow) {
		if (us->prev)
			us->prev->next = us->next;
		else
			us->w->shadows = us->next;
		if (us->next)
			us->next->prev = us->prev;
		us->w->nshadows--;
	}
	if (us->h2)
		rs_proxy__h2u_fail_all(us, RS_RFLAG_UC,
				       "upstream connect error or disconnect/reset before headers. "
				       "reset reason: connection termination");
	pool_unlink(us); /* from pool->h2 or pool->idle, as us->h2 says: before the free */
	rs_proxy__h2u_free(us);
	if (us->st)
		us->st->us = NULL;
	rs_stat_dec(us->w->stats, RS_C_US_CX_ACTIVE);
	if (us->cb) {
		/* Its cluster may take another connection: waiters may go. */
		rs_cb_release(us->cb, RS_CB_CONNECTIONS, us->w->id);
		rs_proxy__stream_kick(us->w);
	}
	free(us->pend.p);
	free(us);
}

static const struct rs_conn_cbs us_cbs = {
	.on_data = us_on_data,
	.on_eof = us_on_eof,
	.on_flushed = us_on_flushed,
	.on_connect = us_on_connect,
	.on_closed = us_on_closed,
};

/* Connections are pooled by endpoint and by how they were made: in clear
 * (key 0), or under one set of TLS settings. */
static uint64_t pool_key(const struct rs_stream *st, const struct rs_endpoint *ep)
{
	if (!st->cluster || (st->cluster->auto_tls && !ep->sidecar))
		return 0;
	if (st->cluster->tls_error)
		return 1; /* never a plaintext connection's pool */
	return rs_tls_ctx_key(st->cluster->tls);
}

static struct rs_pool *pool_for(struct rs_worker *w, const struct rs_endpoint *ep, uint64_t key)
{
	struct rs_pool *p;

	for (p = w->pools; p; p = p->next)
		if (p->addr_len == ep->addr_len && p->tls_key == key &&
		    memcmp(&p->addr, &ep->addr, ep->addr_len) == 0)
			return p;
	p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	memcpy(&p->addr, &ep->addr, ep->addr_len);
	p->addr_len = ep->addr_len;
	p->tls_key = key;
	p->next = w->pools;
	w->pools = p;
	return p;
}

static void start(struct rs_us *us, struct rs_stream *st)
{
	us->st = st;
	us->nrequests++;
	us->resp_done = false;
	us->paused = false;
	us->skip_interim = false;
	us->in_field = false;
	us->end_pending = false;
	us->got_bytes = false;
	us->prev_last = 0;
	us->pend.off = us->pend.len = 0;
	llhttp_init(&us->p, HTTP_RESPONSE, &us_settings);
	us->p.data = us;
}

/* Whether st goes upstream over HTTP/2: its cluster's protocol, or the
 * client's where the port does not say (Istio's inbound and undeclared
 * ports use the downstream protocol). */
static bool wants_h2(const struct rs_stream *st)
{
	enum rs_up_proto p = st->inbound_proto ? st->inbound_proto
			     : st->cluster     ? st->cluster->proto
					       : RS_UP_AUTO;

	return p == RS_UP_HTTP2 || (p == RS_UP_AUTO && st->ds && st->ds->h2);
}

struct rs_us *rs_proxy__us_take_idle(struct rs_worker *w, const struct rs_endpoint *ep,
				     struct rs_stream *st)
{
	struct rs_pool *pool = pool_for(w, ep, pool_key(st, ep));
	struct rs_us *us;

	if (pool && wants_h2(st)) {
		uint32_t max = st->cluster ? st->cluster->h2_max_streams : 0;

		for (us = pool->h2; us; us = us->next) {
			if (rs_proxy__h2u_has_room(us, max)) {
				if (us->nrequests)
					rs_stat_inc(w->stats, RS_C_US_CX_REUSED);
				us->reused = us->nrequests > 0;
				rs_proxy__h2u_attach(us, st);
				return us;
			}
		}
		return NULL;
	}

	while (pool && (us = pool->idle)) {
		pool_unlink(us);
		if (rs_conn_closing(&us->c) || (us->c.flags & RS_CONN_EOF)) {
			rs_conn_close(&us->c);
			continue;
		}
		us->reused = true;
		rs_stat_inc(w->stats, RS_C_US_CX_REUSED);
		start(us, st);
		return us;
	}
	return NULL;
}

/* ConnectionPoolSettings.TCPSettings.TcpKeepalive: SO_KEEPALIVE with the
 * probes, time and interval given (the system's for what is not). */
static void keepalive(int fd, const struct rs_tcp_keepalive *k)
{
	int on = 1, v;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
	if (k->probes.set && (v = (int)k->probes.v) > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof v);
	if (k->time.set && (v = (int)(k->time.ns / 1000000000ull)) > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v);
	if (k->interval.set && (v = (int)(k->interval.ns / 1000000000ull)) > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof v);
}

struct rs_us *rs_proxy__us_open(struct rs_worker *w, const struct rs_endpoint *ep,
				struct rs_stream *st, struct rs_cluster_state *cb)
{
	const struct rs_conn_pool *pc = st->cluster ? st->cluster->pool_cfg : NULL;
	struct rs_pool *pool = pool_for(w, ep, pool_key(st, ep));
	uint64_t timeout = st->cluster && st->cluster->connect_timeout_ns
				   ? st->cluster->connect_timeout_ns
				   : w->opts->connect_timeout_ns;
	struct rs_us *us;
	int fd, one = 1;

	if (!pool)
		return NULL;
	fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (pc && pc->tcp_keepalive.set)
		keepalive(fd, &pc->tcp_keepalive);
	us = calloc(1, sizeof *us);
	if (!us || rs_conn_init(&us->c, &w->loop, fd, &us_cbs) < 0) {
		free(us);
		close(fd);
		return NULL;
	}
	us->w = w;
	us->pool = pool;
	us->cb = cb;
	us->idle_timeout_ns = pc && pc->idle_timeout.set ? pc->idle_timeout.ns
							 : w->opts->upstream_idle_timeout_ns;
	us->max_requests = st->cluster ? st->cluster->max_requests_per_connection : 0;
	rs_stat_inc(w->stats, RS_C_US_CX_TOTAL);
	rs_stat_inc(w->stats, RS_C_US_CX_ACTIVE);
	if (wants_h2(st)) {
		if (rs_proxy__h2u_start(us) < 0) {
			us->cb = NULL; /* the caller gives the token back */
			rs_conn_close(&us->c);
			return NULL;
		}
		rs_stat_inc(w->stats, RS_C_US_CX_HTTP2);
		us->next = pool->h2;
		if (pool->h2)
			pool->h2->prev = us;
		pool->h2 = us;
		rs_proxy__h2u_attach(us, st);
	} else {
		start(us, st);
	}
	rs_conn_connect(&us->c, (const struct sockaddr *)&ep->addr, ep->addr_len, timeout);
	return us;
}

/* --- writing requests: HTTP/1.1 framing (RFC 9112 §6, §7) --- */

int rs_proxy__us_request_head(struct rs_us *us, struct rs_stream *st)
{
	if (us->h2)
		return rs_proxy__h2u_request_head(us, st);
	us->head_req = st->req.method == RS_METHOD_HEAD;
	return rs_h1_encode_request_head(&us->c.out, &us->w->loop.chunks, &st->req);
}

int rs_proxy__us_request_data(struct rs_us *us, struct rs_stream *st, const char *p, size_t n)
{
	if (us->h2)
		return rs_proxy__h2u_request_data(us, st, p, n);
	if (st->req.body == RS_BODY_STREAM)
		return rs_h1_encode_chunk(&us->c.out, &us->w->loop.chunks, p, n);
	return rs_conn_write(&us->c, p, n);
}

int rs_proxy__us_request_end(struct rs_us *us, struct rs_stream *st)
{
	if (us->h2)
		return rs_proxy__h2u_request_end(us, st);
	if (st->req.body == RS_BODY_STREAM)
		return rs_h1_encode_last_chunk(&us->c.out, &us->w->loop.chunks);
	return 0;
}

void rs_proxy__us_flush(struct rs_us *us)
{
	if (us->h2)
		rs_proxy__h2u_flush(us);
	else
		rs_conn_flush(&us->c);
}

bool rs_proxy__us_backlogged(const struct rs_stream *st)
{
	if (st->us->h2)
		return rs_proxy__h2u_backlogged(st);
	return rs_conn_queued(&st->us->c) > RS_HIGH_WATER;
}

/* The shard's next connection to this endpoint resumes with this one's
 * newest ticket: after an answer, a TLS 1.3 server's has come (RFC 8446
 * §4.6.1 would have each used once). */
static void tls_account(struct rs_us *us)
{
	struct rs_pool *pool = us->pool;
	struct rs_tls_resume *r;

	if (!pool || !pool->tls_key || us->tls_counted)
		return;
	us->tls_counted = true;
	r = rs_tls_resume_take(&us->c);
	rs_stat_inc(us->w->stats, RS_C_US_CX_TLS);
	if (rs_tls_resumed(&us->c))
		rs_stat_inc(us->w->stats, RS_C_US_CX_TLS_RESUMED);
	if (r) {
		rs_tls_resume_free(pool->tls_resume);
		pool->tls_resume = r;
	}
}

void rs_proxy__us_release(struct rs_us *us, struct rs_stream *st, bool reusable)
{
	struct rs_pool *pool = us->pool;

	if (us->h2) {
		if (st && st->up_resp_done)
			tls_account(us);
		if (st)
			rs_proxy__h2u_release(us, st);
		return;
	}
	if (us->st && us->st->us == us)
		us->st->us = NULL;
	us->st = NULL;
	if (us->resp_done)
		tls_account(us);
	if (!reusable || !us->resp_done || us->w->draining || rs_conn_closing(&us->c) ||
	    (us->c.flags & RS_CONN_EOF) || us->pend.len > us->pend.off || rs_conn_queued(&us->c) ||
	    pool->nidle >= POOL_MAX_IDLE ||
	    (us->max_requests && us->nrequests >= us->max_requests) ||
	    (us->cb && atomic_load_explicit(&us->cb->waiting, memory_order_relaxed) &&
	     !rs_proxy__stream_waits_here(us->w, us->cb))) {
		rs_conn_close(&us->c);
		return;
	}
	us->idle = true;
	us->idle_since = us->w->loop.now;
	us->prev = NULL;
	us->next = pool->idle;
	if (pool->idle)
		pool->idle->prev = us;
	pool->idle = us;
	pool->nidle++;
	/* Keep reading: a close by the server while idle is seen at once. */
	rs_conn_read_start(&us->c);
	rs_proxy__stream_kick(us->w);
}

/* A mirrored request and its answer get this long before the connection
 * is closed: a mirror must not hold resources the real traffic needs. */
#define SHADOW_MAX_NS (10 * 1000000000ull)
/* Mirrored requests in flight per shard; more are not sent. */
#define SHADOW_MAX 64

int rs_proxy__us_mirror(struct rs_worker *w, const struct rs_endpoint *ep, const struct rs_msg *req,
			const char *body, size_t blen)
{
	struct rs_msg m;
	struct rs_us *us;
	char host[300], cl[24];
	int fd, one = 1, ret = -ENOMEM;

	if (w->nshadows >= SHADOW_MAX || w->draining)
		return -EBUSY;
	/* Envoy's shadow: the same request, its authority suffixed -shadow,
	 * and here "close", whose end is the end of the answer. */
	rs_msg_init(&m);
	if (rs_msg_append(&m, req->buf, req->len) < 0)
		goto out;
	m.method = req->method;
	m.method_s = req->method_s;
	m.path = req->path;
	m.body = RS_BODY_NONE;
	for (uint32_t i = 0; i < req->nh; i++) {
		const struct rs_hdr *h = &req->h[i];

		/* The body goes whole with a length of its own. */
		if (!h->name_len || rs_hdr_name_is(req, h, "host", 4) ||
		    rs_hdr_name_is(req, h, "content-length", 14))
			continue;
		if (rs_msg_add_header(&m, req->buf + h->name_off, h->name_len,
				      req->buf + h->value_off, h->value_len) < 0)
			goto out;
	}
	if (req->body != RS_BODY_NONE) {
		m.body = RS_BODY_LENGTH;
		if (rs_msg_add_header(&m, "content-length", 14, cl,
				      (size_t)snprintf(cl, sizeof cl, "%zu", blen)) < 0)
			goto out;
	}
	{
		/* Before the port, as Envoy does: reviews:9080 -> reviews-shadow:9080. */
		const char *a = req->buf + req->authority.value_off;
		size_t len = req->authority.value_len > 280 ? 280 : req->authority.value_len;
		const char *colon = len && a[0] != '[' ? memchr(a, ':', len) : NULL;
		size_t hl = colon ? (size_t)(colon - a) : len;

		snprintf(host, sizeof host, "%.*s-shadow%.*s", (int)hl, a, (int)(len - hl), a + hl);
	}
	if (rs_msg_add_header(&m, "host", 4, host, strlen(host)) < 0 ||
	    rs_msg_add_header(&m, "connection", 10, "close", 5) < 0)
		goto out;
	fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	us = calloc(1, sizeof *us);
	if (!us || rs_conn_init(&us->c, &w->loop, fd, &us_cbs) < 0) {
		free(us);
		close(fd);
		goto out;
	}
	us->w = w;
	us->pool = pool_for(w, ep, 0);
	us->shadow = true;
	us->shadow_since = w->loop.now;
	us->next = w->shadows;
	if (w->shadows)
		w->shadows->prev = us;
	w->shadows = us;
	w->nshadows++;
	rs_stat_inc(w->stats, RS_C_US_CX_TOTAL);
	rs_stat_inc(w->stats, RS_C_US_CX_ACTIVE);
	ret = rs_h1_encode_request_head(&us->c.out, &w->loop.chunks, &m);
	if (ret == 0 && blen)
		ret = rs_conn_write(&us->c, body, blen);
	if (ret < 0) {
		rs_conn_close(&us->c);
		goto out;
	}
	rs_conn_connect(&us->c, (const struct sockaddr *)&ep->addr, ep->addr_len,
			w->opts->connect_timeout_ns);
	ret = 0;
out:
	rs_msg_free(&m);
	return ret;
}

/* HTTP/2 connections without a stream that cond picks are closed. */
static void close_empty_h2(struct rs_pool *p, bool (*cond)(const struct rs_us *us))
{
	for (struct rs_us *us = p->h2; us; us = us->next)
		if (!us->nstreams && !rs_conn_closing(&us->c) && cond(us))
			rs_conn_close_graceful(&us->c);
}

static bool cb_waiting(const struct rs_us *us)
{
	return us->cb && atomic_load_explicit(&us->cb->waiting, memory_order_relaxed);
}

static bool idle_too_long(const struct rs_us *us)
{
	return us->idle_timeout_ns && us->w->loop.now - us->idle_since >= us->idle_timeout_ns;
}

static bool always(const struct rs_us *us)
{
	(void)us;
	return true;
}

void rs_proxy__us_shed_idle(struct rs_worker *w)
{
	for (struct rs_pool *p = w->pools; p; p = p->next) {
		close_empty_h2(p, cb_waiting);
		for (struct rs_us *us = p->idle, *next; us; us = next) {
			next = us->next;
			if (us->cb && atomic_load_explicit(&us->cb->waiting, memory_order_relaxed)) {
				pool_unlink(us);
				rs_conn_close(&us->c);
			}
		}
	}
}

void rs_proxy__us_sweep(struct rs_worker *w)
{
	for (struct rs_us *us = w->shadows; us; us = us->next)
		if (w->loop.now - us->shadow_since >= SHADOW_MAX_NS && !rs_conn_closing(&us->c))
			rs_conn_close(&us->c);

	for (struct rs_pool *p = w->pools; p; p = p->next) {
		struct rs_us *us = p->idle, *next;

		close_empty_h2(p, idle_too_long);
		for (; us; us = next) {
			next = us->next;
			if (us->idle_timeout_ns && w->loop.now - us->idle_since >= us->idle_timeout_ns) {
				pool_unlink(us);
				rs_conn_close(&us->c);
			}
		}
	}
}

void rs_proxy__us_close_idle(struct rs_worker *w)
{
	for (struct rs_pool *p = w->pools; p; p = p->next) {
		close_empty_h2(p, always);
		while (p->idle) {
			struct rs_us *us = p->idle;

			pool_unlink(us);
			rs_conn_close(&us->c);
		}
	}
}
