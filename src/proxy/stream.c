/* The stream: one downstream request paired with its upstream attempt. It is
 * protocol-neutral: rs_msg in, rs_msg out, and bytes framed only by the
 * connection on each side (rs_proxy__ds_* and rs_proxy__us_*; HTTP/1.1 in
 * downstream.c and upstream.c today). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const rflag_names[] = {
	[RS_RFLAG_NONE] = "-", [RS_RFLAG_NR] = "NR", [RS_RFLAG_UF] = "UF",
	[RS_RFLAG_UC] = "UC",  [RS_RFLAG_UT] = "UT", [RS_RFLAG_UPE] = "UPE",
	[RS_RFLAG_DC] = "DC",  [RS_RFLAG_UH] = "UH",
};

static uint64_t rng_next(uint64_t s[2])
{
	/* xorshift128+: request ids need uniqueness, not secrecy. */
	uint64_t a = s[0], b = s[1];

	s[0] = b;
	a ^= a << 23;
	s[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
	return s[1] + b;
}

/* A version 4 UUID (RFC 9562 §5.4), as Envoy generates x-request-id. */
static void uuid4(uint64_t s[2], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	uint64_t x = rng_next(s), y = rng_next(s);
	int o = 0;

	memcpy(b, &x, 8);
	memcpy(b + 8, &y, 8);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

static void on_timeout(struct rs_timer *t)
{
	struct rs_stream *st = (struct rs_stream *)((char *)t - offsetof(struct rs_stream, timeout));

	rs_stat_inc(st->w->stats, RS_C_US_RQ_TIMEOUT);
	rs_proxy__stream_upstream_failed(st, RS_RFLAG_UT, 504, "upstream request timeout");
}

struct rs_stream *rs_proxy__stream_new(struct rs_ds *ds)
{
	struct rs_stream *st = calloc(1, sizeof *st);

	if (!st)
		return NULL;
	st->w = ds->w;
	st->ds = ds;
	st->snap = ds->w->snap;
	rs_snap_shard(st->snap, ds->w->id)->refs++;
	st->t_start = ds->w->loop.now;
	st->timeout.fn = on_timeout;
	rs_msg_init(&st->req);
	rs_msg_init(&st->resp);
	rs_stat_inc(ds->w->stats, RS_C_DS_RQ_ACTIVE);
	return st;
}

void rs_proxy__stream_free(struct rs_stream *st)
{
	rs_timer_cancel(&st->w->loop.timers, &st->timeout);
	if (st->us)
		rs_proxy__us_release(st->us, false);
	rs_stat_dec(st->w->stats, RS_C_DS_RQ_ACTIVE);
	rs_snap_shard(st->snap, st->w->id)->refs--;
	rs_msg_free(&st->req);
	rs_msg_free(&st->resp);
	free(st);
}

/* The response is complete: account for it and let the connection go on. */
static void finish(struct rs_stream *st)
{
	struct rs_worker *w = st->w;
	/* A fresh clock read: loop.now is when this batch was reaped, and the
	 * work since then is exactly the time the proxy adds. */
	uint64_t now = rs_now_ns();
	uint64_t dur = (now - st->t_start) / 1000;
	uint64_t added = dur;

	if (st->t_us_end)
		added = ((st->t_us_start - st->t_start) + (now - st->t_us_end)) / 1000;
	rs_stats_record_request(w->stats, st->resp.status, dur, added);
	if (rs_log_min <= RS_LOG_DEBUG)
		rs_debug("%.*s %.*s %d %s %s", (int)st->req.method_s.value_len,
			 st->req.buf + st->req.method_s.value_off, (int)st->req.path.value_len,
			 st->req.buf + st->req.path.value_off, st->resp.status,
			 rflag_names[st->rflag], st->cluster ? st->cluster->name : "-");
	/* A request whose body is still arriving cannot be followed by another
	 * on this connection. */
	if (!st->req_done && st->req.body != RS_BODY_NONE)
		st->close_after = true;
	rs_proxy__ds_stream_done(st->ds);
}

void rs_proxy__stream_local_reply(struct rs_stream *st, enum rs_rflag flag, int status,
				  const char *text)
{
	struct rs_ds *ds = st->ds;
	struct rs_worker *w = st->w;

	rs_timer_cancel(&w->loop.timers, &st->timeout);
	st->rflag = flag;
	st->local = true;
	st->resp.status = status;
	st->resp_started = true;
	if (!st->req_done && st->req.body != RS_BODY_NONE)
		st->close_after = true;
	if (rs_proxy__ds_local_reply(ds, st, status, text) < 0) {
		rs_proxy__ds_abort(ds);
		return;
	}
	rs_proxy__ds_flush(ds);
	finish(st);
}

static int add_forwarding_headers(struct rs_stream *st)
{
	struct rs_msg *m = &st->req;
	const struct rs_hdr *h = rs_msg_find(m, "x-request-id");
	char xff[512];

	if (h && h->value_len && h->value_len < sizeof st->request_id) {
		memcpy(st->request_id, m->buf + h->value_off, h->value_len);
		st->request_id[h->value_len] = '\0';
	} else {
		rs_msg_remove(m, "x-request-id", 12);
		uuid4(st->w->rng, st->request_id);
		if (rs_msg_add_header(m, "x-request-id", 12, st->request_id, 36) < 0)
			return -ENOMEM;
	}
	/* x-forwarded-for: append the peer to what earlier hops wrote. */
	h = rs_msg_find(m, "x-forwarded-for");
	if (h && h->value_len + strlen(st->ds->peer_ip) + 3 < sizeof xff) {
		snprintf(xff, sizeof xff, "%.*s, %s", (int)h->value_len, m->buf + h->value_off,
			 st->ds->peer_ip);
		rs_msg_remove(m, "x-forwarded-for", 15);
	} else {
		snprintf(xff, sizeof xff, "%s", st->ds->peer_ip);
	}
	if (rs_msg_add_header(m, "x-forwarded-for", 15, xff, strlen(xff)) < 0)
		return -ENOMEM;
	if (!rs_msg_find(m, "x-forwarded-proto") &&
	    rs_msg_add_header(m, "x-forwarded-proto", 17, "http", 4) < 0)
		return -ENOMEM;
	return 0;
}

void rs_proxy__stream_request_head(struct rs_stream *st)
{
	struct rs_msg *m = &st->req;
	struct rs_worker *w = st->w;
	const struct rs_hdr *expect;
	bool expect_continue = false;
	char host[256], text[400];
	int idx;

	if (rs_msg_strip_hop_by_hop(m))
		st->close_after = true;
	expect = rs_msg_find(m, "expect");
	if (expect) {
		/* RFC 9110 §10.1.1: the proxy answers 100 itself (as Envoy does by
		 * default) and does not forward the expectation. */
		expect_continue = rs_value_has_token(m->buf + expect->value_off, expect->value_len,
						     "100-continue");
		rs_msg_remove(m, "expect", 6);
	}
	if (add_forwarding_headers(st) < 0) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_NONE, 503, "out of memory");
		return;
	}
	idx = st->snap ? rs_router_match(&st->snap->router, m->buf + m->authority.value_off,
					 m->authority.value_len, host, sizeof host)
		       : -1;
	if (idx < 0) {
		snprintf(text, sizeof text, "no route for host \"%.*s\"",
			 (int)(m->authority.value_len > 255 ? 255 : m->authority.value_len),
			 m->buf + m->authority.value_off);
		rs_proxy__stream_local_reply(st, RS_RFLAG_NR, 404, text);
		return;
	}
	st->cluster = &st->snap->clusters.v[idx];
	st->ep = rs_cluster_pick_rr(st->cluster, &rs_snap_shard(st->snap, w->id)->rr[idx]);
	if (!st->ep) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_UH, 503, "no healthy upstream");
		return;
	}
	st->us = rs_proxy__us_acquire(w, st->ep, st, false);
	if (!st->us) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_UF, 503,
					     "upstream connect error or disconnect/reset before "
					     "headers. reset reason: connection failure");
		return;
	}
	if (rs_proxy__us_request_head(st->us, st) < 0) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_NONE, 503, "out of memory");
		return;
	}
	st->t_us_start = rs_now_ns();
	if (expect_continue && m->body != RS_BODY_NONE)
		rs_proxy__ds_continue(st->ds, st);
}

void rs_proxy__stream_request_data(struct rs_stream *st, const char *p, size_t n)
{
	struct rs_us *us = st->us;
	int ret;

	if (!us || st->local)
		return;
	ret = rs_proxy__us_request_data(us, st, p, n);
	if (ret < 0) {
		rs_proxy__stream_upstream_failed(st, RS_RFLAG_NONE, 503, "out of memory");
		return;
	}
}

void rs_proxy__stream_request_end(struct rs_stream *st)
{
	struct rs_us *us = st->us;
	uint64_t t = st->w->opts->route_timeout_ns;

	if (!us || st->local)
		return;
	if (rs_proxy__us_request_end(us, st) < 0) {
		rs_proxy__stream_upstream_failed(st, RS_RFLAG_NONE, 503, "out of memory");
		return;
	}
	/* Envoy's route timeout runs from the end of the request. */
	if (t && !st->resp_started)
		rs_timer_arm(&st->w->loop.timers, &st->timeout, st->w->loop.now + t);
}

void rs_proxy__stream_response_head(struct rs_stream *st)
{
	/* "close" from the upstream ends that connection only; the downstream
	 * one is independent and stays open. */
	rs_msg_strip_hop_by_hop(&st->resp);
	st->resp_started = true;
	if (rs_proxy__ds_response_head(st->ds, st) < 0)
		rs_proxy__ds_abort(st->ds);
}

void rs_proxy__stream_response_data(struct rs_stream *st, const char *p, size_t n)
{
	if (rs_proxy__ds_response_data(st->ds, st, p, n) < 0)
		rs_proxy__ds_abort(st->ds);
}

void rs_proxy__stream_response_end(struct rs_stream *st, bool keep_alive)
{
	struct rs_ds *ds = st->ds;

	rs_timer_cancel(&st->w->loop.timers, &st->timeout);
	if (rs_proxy__ds_response_end(ds, st) < 0) {
		rs_proxy__ds_abort(ds);
		return;
	}
	st->t_us_end = st->w->loop.now;
	if (st->us) {
		struct rs_us *us = st->us;

		st->us = NULL;
		rs_proxy__us_release(us, keep_alive && st->req_done);
	}
	rs_proxy__ds_flush(ds);
	finish(st);
}

/* RFC 9110 §9.2.2: a request whose method is idempotent may be sent again
 * after its connection failed. */
static bool idempotent(enum rs_method m)
{
	return m == RS_METHOD_GET || m == RS_METHOD_HEAD || m == RS_METHOD_OPTIONS ||
	       m == RS_METHOD_PUT || m == RS_METHOD_DELETE;
}

/* A pooled connection can be closed by the server just as a request leaves
 * on it (a keep-alive timeout shorter than ours): when nothing came back, an
 * idempotent request without a body goes once more on a new connection. */
static bool retry_on_fresh_connection(struct rs_stream *st)
{
	struct rs_worker *w = st->w;
	struct rs_us *old = st->us;

	if (!old || !old->reused || old->got_bytes || st->retried || st->resp_started ||
	    !st->req_done || st->req.body != RS_BODY_NONE || !idempotent(st->req.method))
		return false;
	st->retried = true;
	rs_proxy__us_release(old, false);
	st->us = rs_proxy__us_acquire(w, st->ep, st, true);
	if (!st->us)
		return false;
	if (rs_proxy__us_request_head(st->us, st) < 0) {
		rs_proxy__us_release(st->us, false);
		return false;
	}
	rs_debug("resending %.*s on a new connection: the pooled one closed",
		 (int)st->req.path.value_len, st->req.buf + st->req.path.value_off);
	return true;
}

void rs_proxy__stream_upstream_failed(struct rs_stream *st, enum rs_rflag flag, int status,
				      const char *text)
{
	if (flag == RS_RFLAG_UC && retry_on_fresh_connection(st))
		return;
	if (st->us) {
		struct rs_us *us = st->us;

		st->us = NULL;
		rs_proxy__us_release(us, false);
	}
	if (st->resp_started) {
		/* Part of the response is out: only a reset tells the client. */
		st->rflag = flag;
		rs_proxy__ds_abort(st->ds);
		return;
	}
	rs_proxy__stream_local_reply(st, flag, status, text);
}
