/* The stream: one downstream request paired with its upstream attempt. It is
 * protocol-neutral: rs_msg in, rs_msg out, and bytes framed only by the
 * connection on each side (rs_proxy__ds_* and rs_proxy__us_*; HTTP/1.1 in
 * downstream.c and upstream.c today). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ringside/tls-session.h"

static const char *const rflag_names[] = {
	[RS_RFLAG_NONE] = "-", [RS_RFLAG_NR] = "NR", [RS_RFLAG_UF] = "UF",
	[RS_RFLAG_UC] = "UC",  [RS_RFLAG_UT] = "UT", [RS_RFLAG_UPE] = "UPE",
	[RS_RFLAG_DC] = "DC",  [RS_RFLAG_UH] = "UH",  [RS_RFLAG_NC] = "NC",
	[RS_RFLAG_FI] = "FI",  [RS_RFLAG_URX] = "URX", [RS_RFLAG_UO] = "UO",
};

/* Envoy's answers when a circuit breaker is open, and when no connection
 * could be opened. */
static const char overflow_text[] =
    "upstream connect error or disconnect/reset before headers. reset reason: overflow";
const char rs_proxy__connect_failure_text[] = "upstream connect error or disconnect/reset "
					      "before headers. reset reason: connection failure";


/* A version 4 UUID (RFC 9562 §5.4), as Envoy generates x-request-id. */
static void uuid4(uint64_t s[2], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	uint64_t x = rs_rng_next(s), y = rs_rng_next(s);
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

static void on_deadline(struct rs_timer *t)
{
	struct rs_stream *st = (struct rs_stream *)((char *)t - offsetof(struct rs_stream, deadline));

	rs_stat_inc(st->w->stats, RS_C_US_RQ_TIMEOUT);
	st->deadline_hit = true;
	rs_proxy__stream_upstream_failed(st, RS_RFLAG_UT, 504, "grpc-timeout reached");
}

/* gRPC's grpc-timeout (PROTOCOL-HTTP2.md: at most 8 digits and a unit,
 * H M S m u n) in ns; 0 when absent or malformed. */
static uint64_t grpc_timeout_ns(const struct rs_msg *m)
{
	const struct rs_hdr *h = rs_msg_find(m, "grpc-timeout");
	uint64_t v = 0, unit;
	const char *p;

	if (!h || h->value_len < 2 || h->value_len > 9)
		return 0;
	p = m->buf + h->value_off;
	for (uint32_t i = 0; i + 1 < h->value_len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	switch (p[h->value_len - 1]) {
	case 'H': unit = 3600000000000ull; break;
	case 'M': unit = 60000000000ull; break;
	case 'S': unit = 1000000000ull; break;
	case 'm': unit = 1000000ull; break;
	case 'u': unit = 1000ull; break;
	case 'n': unit = 1; break;
	default: return 0;
	}
	return v * unit;
}

/* A gRPC call's deadline, as Istio configures Envoy (max_stream_duration
 * with grpc_timeout_header_max set to the route's timeout): the client's
 * grpc-timeout, no longer than the route's timeout when it has one, from
 * the request head over the whole call. */
static void arm_deadline(struct rs_stream *st)
{
	uint64_t t = grpc_timeout_ns(&st->req);

	if (!t)
		return;
	if (st->route_timeout_ns && st->route_timeout_ns < t)
		t = st->route_timeout_ns;
	rs_timer_arm(&st->w->loop.timers, &st->deadline, st->w->loop.now + t);
}

/* --- load balancing --- */

/* The value of cookie name in the Cookie fields, or NULL. */
static const char *cookie(const struct rs_msg *m, const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	for (uint32_t i = 0; i < m->nh; i++) {
		const char *p, *end;

		if (!m->h[i].name_len || !rs_hdr_name_is(m, &m->h[i], "cookie", 6))
			continue;
		p = m->buf + m->h[i].value_off;
		end = p + m->h[i].value_len;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p)), *stop = semi ? semi : end;
			const char *eq;

			while (p < stop && *p == ' ')
				p++;
			eq = memchr(p, '=', (size_t)(stop - p));
			if (eq && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
				*len = (size_t)(stop - eq - 1);
				return eq + 1;
			}
			p = stop + 1;
		}
	}
	return NULL;
}

/* The request's consistentHash key, hashed; false when it has none (a
 * missing header, cookie or parameter: any endpoint then). */
static bool hash_key(const struct rs_stream *st, uint64_t *out)
{
	const struct rs_lb_settings *s = st->cluster->lb_cfg;
	const struct rs_msg *m = &st->req;
	const char *v = NULL;
	size_t len = 0;

	switch (s->hash_key) {
	case RS_LB_HASH_HEADER: {
		const struct rs_hdr *h = rs_msg_find(m, s->http_header_name);

		if (h) {
			v = m->buf + h->value_off;
			len = h->value_len;
		}
		break;
	}
	case RS_LB_HASH_COOKIE:
		v = cookie(m, s->cookie_name, &len);
		break;
	case RS_LB_HASH_SOURCE_IP:
		v = st->ds->peer_ip;
		len = strlen(v);
		break;
	case RS_LB_HASH_QUERY_PARAM: {
		const char *p = m->buf + m->path.value_off;
		const char *q = memchr(p, '?', m->path.value_len);

		v = q ? rs_query_param(q + 1, m->path.value_len - (size_t)(q + 1 - p),
				       s->http_query_parameter_name,
				       strlen(s->http_query_parameter_name), &len)
		      : NULL;
		break;
	}
	case RS_LB_HASH_NONE:
		break;
	}
	if (!v)
		return false;
	*out = rs_lb_hash(v, len);
	return true;
}

static void drop_active(struct rs_stream *st)
{
	if (st->active) {
		(*st->active)--;
		st->active = NULL;
	}
}

/* DestinationRule loadBalancer PASSTHROUGH: "forward the connection to the
 * original IP address requested by the caller without doing any form of
 * load balancing" (istio.io/latest/docs/reference/config/networking/
 * destination-rule/#LoadBalancerSettings-SimpleLB). Istio makes the cluster
 * Envoy's ORIGINAL_DST, whose upstream is "the same address as the
 * destination address of the incoming connection was before the connection
 * was redirected to Envoy" (envoyproxy.io/docs/envoy/latest/intro/
 * arch_overview/upstream/load_balancing/original_dst): here the downstream
 * connection's SO_ORIGINAL_DST, read once per connection. A connection
 * that iptables did not redirect has none, and the answer is Envoy's for a
 * cluster without a host: 503 UH. Istio does not turn on that cluster's
 * use_http_header, so x-envoy-original-dst-host picks nothing here either.
 * The destination is the cluster's endpoint of that address when it has
 * one (pooled, counted in flight and by outlier detection), else an
 * endpoint of the stream's own; a retry goes to the same address. */
static const struct rs_endpoint *original_dst_endpoint(struct rs_stream *st, uint32_t *idx)
{
	struct rs_ds *ds = st->ds;
	const struct rs_cluster *c = st->cluster;
	char ip[48];

	*idx = UINT32_MAX;
	if (!ds)
		return NULL;
	if (!ds->orig_dst_state) {
		ds->orig_dst_len = sizeof ds->orig_dst;
		ds->orig_dst_state =
		    rs_sock_original_dst(ds->c.fd, &ds->orig_dst, &ds->orig_dst_len) == 0 ? 1 : -1;
	}
	if (ds->orig_dst_state < 0)
		return NULL;
	for (size_t i = 0; i < c->neps; i++) {
		if (rs_sockaddr_same(&c->eps[i].addr, &ds->orig_dst)) {
			*idx = (uint32_t)i;
			return &c->eps[i];
		}
	}
	memcpy(&st->orig_ep.addr, &ds->orig_dst, ds->orig_dst_len);
	st->orig_ep.addr_len = ds->orig_dst_len;
	rs_sockaddr_ip(&ds->orig_dst, ip, sizeof ip);
	snprintf(st->orig_name, sizeof st->orig_name,
		 ds->orig_dst.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
		 rs_proxy__orig_dst_port(ds));
	st->orig_ep.name = st->orig_name;
	return &st->orig_ep;
}

/* An endpoint of st->cluster by its load balancer (avoid: the previous
 * try's, for a retry), counted in flight until the try ends. */
static const struct rs_endpoint *pick_endpoint(struct rs_stream *st,
					       const struct rs_endpoint *avoid)
{
	const struct rs_snapshot *s = st->snap;
	struct rs_snap_shard *part = rs_snap_shard(s, st->w->id);
	const struct rs_cluster *c = st->cluster;
	const struct rs_outlier_detection *od = c->outlier_cfg;
	struct rs_lb_ctx ctx = {
	    .rr = &part->rr[c - s->clusters.v],
	    .active = &part->rr[s->clusters.n + c->ep_base],
	    .rng = st->w->rng,
	    .avoid = avoid,
	    .eject = od ? &s->eject[c->ep_base] : NULL,
	    .now = st->w->loop.now,
	    .min_health_pct = od && od->min_health_percent.set ? od->min_health_percent.v : 0,
	};
	const struct rs_endpoint *ep;
	uint32_t i;

	drop_active(st);
	if (c->lb == RS_LB_KIND_LOCAL)
		return &st->orig_ep; /* set by inbound_route */
	if (c->lb == RS_LB_KIND_PASSTHROUGH) {
		ep = original_dst_endpoint(st, &i);
		if (i == UINT32_MAX)
			return ep; /* not the cluster's: nothing counts it */
	} else {
		if (c->lb == RS_LB_KIND_RING_HASH || c->lb == RS_LB_KIND_MAGLEV)
			ctx.has_hash = hash_key(st, &ctx.hash);
		ep = rs_lb_pick(c, &ctx, &i);
	}
	if (ep) {
		st->active = &ctx.active[i];
		(*st->active)++;
	}
	return ep;
}

/* --- circuit breakers (DestinationRule connectionPool) and waiting --- */

static struct rs_cluster_state *cb_of(const struct rs_stream *st)
{
	return st->cluster ? st->cluster->state : NULL;
}

/* A connection for this try: a pooled one to st->ep, else a new one if the
 * cluster's maxConnections allows. 0, -EBUSY (the breaker is open: wait or
 * overflow) or -EIO (could not open one). */
static int connect_upstream(struct rs_stream *st, bool fresh)
{
	struct rs_cluster_state *cb = cb_of(st);
	int r;

	st->us = fresh ? NULL : rs_proxy__us_take_idle(st->w, st->ep, st);
	if (st->us)
		return 0;
	r = rs_cb_acquire(cb, RS_CB_CONNECTIONS, st->w->id);
	if (r == RS_CB_FULL)
		return -EBUSY;
	st->us = rs_proxy__us_open(st->w, st->ep, st, r == RS_CB_TAKEN ? cb : NULL);
	if (!st->us) {
		if (r == RS_CB_TAKEN)
			rs_cb_release(cb, RS_CB_CONNECTIONS, st->w->id);
		return -EIO;
	}
	return 0;
}

static void unwait(struct rs_stream *st)
{
	struct rs_worker *w = st->w;

	if (!st->waiting)
		return;
	if (cb_of(st))
		atomic_fetch_sub_explicit(&cb_of(st)->waiting, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&w->shared->cb_waiting, 1, memory_order_relaxed);
	if (st->wait_prev)
		st->wait_prev->wait_next = st->wait_next;
	else
		w->waiting_head = st->wait_next;
	if (st->wait_next)
		st->wait_next->wait_prev = st->wait_prev;
	else
		w->waiting_tail = st->wait_prev;
	st->wait_prev = st->wait_next = NULL;
	st->waiting = false;
	if (st->cb_pending) {
		rs_cb_release(cb_of(st), RS_CB_PENDING, w->id);
		st->cb_pending = false;
	}
}

/* No connection can be had now: wait for one (http1MaxPendingRequests
 * allowing), else overflow. The body that arrives meanwhile is kept (up to
 * RS_REQ_KEEP_MAX; past it the request overflows). */
static bool wait_for_connection(struct rs_stream *st)
{
	struct rs_worker *w = st->w;
	int r;

	if (st->body_over)
		return false;
	r = rs_cb_acquire(cb_of(st), RS_CB_PENDING, w->id);
	if (r == RS_CB_FULL)
		return false;
	st->cb_pending = r == RS_CB_TAKEN;
	st->waiting = true;
	/* Other shards then close connections instead of keeping them idle,
	 * and those idle now once woken. */
	if (cb_of(st))
		atomic_fetch_add_explicit(&cb_of(st)->waiting, 1, memory_order_relaxed);
	if (atomic_fetch_add_explicit(&w->shared->cb_waiting, 1, memory_order_relaxed) == 0)
		for (unsigned i = 0; i < w->shared->nworkers; i++)
			if (&w->shared->workers[i] != w)
				rs_worker_wake(&w->shared->workers[i]);
	st->wait_prev = w->waiting_tail;
	if (w->waiting_tail)
		w->waiting_tail->wait_next = st;
	else
		w->waiting_head = st;
	w->waiting_tail = st;
	rs_proxy__stream_kick(w);
	return true;
}

static void arm_per_try(struct rs_stream *st);

/* A waiting request got its connection: send it. */
static void resume(struct rs_stream *st)
{
	if (rs_proxy__us_request_head(st->us, st) < 0 ||
	    (st->body_len && rs_proxy__us_request_data(st->us, st, st->body, st->body_len) < 0) ||
	    (st->req_done && rs_proxy__us_request_end(st->us, st) < 0)) {
		rs_proxy__stream_upstream_failed(st, RS_RFLAG_NONE, 503, "out of memory");
		return;
	}
	st->t_us_start = rs_now_ns();
	rs_proxy__us_flush(st->us);
	arm_per_try(st);
}

/* Tokens given back on another shard wake nobody here: while requests
 * wait, look again this often. */
#define KICK_POLL_NS (5 * 1000000ull)

static void on_kick(struct rs_timer *t)
{
	struct rs_worker *w = (struct rs_worker *)((char *)t - offsetof(struct rs_worker, kick));

	for (struct rs_stream *st = w->waiting_head, *next; st; st = next) {
		int r;

		next = st->wait_next;
		r = connect_upstream(st, false);
		if (r == -EBUSY)
			continue;
		unwait(st);
		if (r < 0)
			rs_proxy__stream_upstream_failed(st, RS_RFLAG_UF, 503,
							 rs_proxy__connect_failure_text);
		else
			resume(st);
	}
	if (w->waiting_head)
		rs_timer_arm(&w->loop.timers, &w->kick, w->loop.now + KICK_POLL_NS);
}

bool rs_proxy__stream_waits_here(const struct rs_worker *w, const struct rs_cluster_state *cb)
{
	for (const struct rs_stream *st = w->waiting_head; st; st = st->wait_next)
		if (cb_of(st) == cb)
			return true;
	return false;
}

void rs_proxy__stream_kick(struct rs_worker *w)
{
	if (!w->waiting_head || rs_timer_armed(&w->kick))
		return;
	w->kick.fn = on_kick;
	rs_timer_arm(&w->loop.timers, &w->kick, w->loop.now);
}

/* --- outlier detection (DestinationRule outlierDetection) --- */

/* Envoy's cap on one ejection (max_ejection_time, its default). */
#define MAX_EJECTION_NS (300 * 1000000000ull)

/* Ejects endpoint g (global index) of st's cluster for baseEjectionTime
 * times the ejections so far, unless maxEjectionPercent is reached (one is
 * ejected whatever the percentage, as Envoy does). Every shard sees it. */
static void eject(struct rs_stream *st, uint32_t g, const struct rs_outlier_detection *od)
{
	const struct rs_cluster *c = st->cluster;
	struct rs_ejection *e = &st->snap->eject[g];
	uint64_t now = st->w->loop.now, base, dur;
	uint32_t max_pct = od->max_ejection_percent.set ? od->max_ejection_percent.v : 10;
	size_t ejected = 0;
	uint32_t times;

	/* Answers still in flight from an endpoint just ejected do not eject
	 * it again. */
	if (atomic_load_explicit(&e->until_ns, memory_order_relaxed) > now)
		return;
	for (size_t i = 0; i < c->neps; i++)
		ejected += atomic_load_explicit(&st->snap->eject[c->ep_base + i].until_ns,
						memory_order_relaxed) > now;
	if (ejected && (ejected + 1) * 100 > (size_t)max_pct * c->neps)
		return;
	times = atomic_fetch_add_explicit(&e->times, 1, memory_order_relaxed) + 1;
	base = od->base_ejection_time.set ? od->base_ejection_time.ns : 30 * 1000000000ull;
	dur = base * times;
	if (dur > MAX_EJECTION_NS || dur / times != base)
		dur = base > MAX_EJECTION_NS ? base : MAX_EJECTION_NS;
	atomic_store_explicit(&e->until_ns, now + dur, memory_order_relaxed);
	rs_warn("outlier detection: %s of %s ejected for %llu ms (ejection %u)", st->ep->name,
		c->name, (unsigned long long)(dur / 1000000), times);
}

/* Counts one try's outcome against its endpoint, on this shard: status
 * (a connection failure, reset or timeout counts as the 503/504 Envoy
 * records for it). Crossing consecutive5xxErrors (Istio's default 5) or
 * consecutiveGatewayErrors (default off) ejects the endpoint. */
static void outlier_record(struct rs_stream *st, int status)
{
	const struct rs_cluster *c = st->cluster;
	const struct rs_outlier_detection *od = c ? c->outlier_cfg : NULL;
	const struct rs_snapshot *s = st->snap;
	uint32_t g, t5, tg, *c5, *cg, *base;

	/* A PASSTHROUGH destination that is none of the cluster's endpoints
	 * has no counters. */
	if (!od || !st->ep || !st->us || st->ep == &st->orig_ep)
		return;
	g = c->ep_base + (uint32_t)(st->ep - c->eps);
	base = rs_snap_shard(s, st->w->id)->rr + s->clusters.n;
	c5 = &base[s->clusters.neps_total + g];
	cg = &base[2 * (size_t)s->clusters.neps_total + g];
	*c5 = status >= 500 ? *c5 + 1 : 0;
	*cg = status >= 502 && status <= 504 ? *cg + 1 : 0;
	t5 = od->consecutive_5xx_errors.set ? od->consecutive_5xx_errors.v : 5;
	tg = od->consecutive_gateway_errors.set ? od->consecutive_gateway_errors.v : 0;
	if ((t5 && *c5 >= t5) || (tg && *cg >= tg)) {
		*c5 = *cg = 0;
		eject(st, g, od);
	}
}

/* --- retries (HTTPRetry, as Envoy's retry policy) --- */

enum try_outcome {
	TRY_CONNECT_FAILURE, /* the connection could not be made */
	TRY_RESET,           /* closed or reset before the response head */
	TRY_TIMEOUT,         /* perTryTimeout passed */
	TRY_STATUS,          /* a response head arrived: its status decides */
};

static const struct rs_retry_policy *retry_policy(const struct rs_stream *st)
{
	/* rs_retry_default's policy, for a host without a VirtualService
	 * (Istio's default route has it too). */
	static const struct rs_retry_policy fallback = {
	    .retries = 2,
	    .on = RS_RETRY_CONNECT_FAILURE | RS_RETRY_REFUSED_STREAM | RS_RETRY_GRPC_UNAVAILABLE |
		  RS_RETRY_GRPC_CANCELLED | RS_RETRY_STATUS_CODES,
	    .codes = {503},
	    .ncodes = 1,
	};

	if (st->route)
		return st->route->r->retry.retries ? &st->route->r->retry : NULL;
	return &fallback;
}

int rs_proxy__grpc_status_for(const struct rs_stream *st, int status)
{
	if (st->deadline_hit)
		return 4; /* DEADLINE_EXCEEDED */
	switch (status) {
	case 200: return 2;  /* UNKNOWN: no grpc-status came */
	case 400: return 13; /* INTERNAL */
	case 401: return 16; /* UNAUTHENTICATED */
	case 403: return 7;  /* PERMISSION_DENIED */
	case 404: return 12; /* UNIMPLEMENTED */
	case 429:
	case 502:
	case 503:
	case 504: return 14; /* UNAVAILABLE */
	}
	return 2; /* UNKNOWN */
}

/* gRPC's status of a response (grpc-status), or -1. */
static int grpc_status(const struct rs_msg *m)
{
	const struct rs_hdr *h = rs_msg_find(m, "grpc-status");
	int v = 0;

	if (!h || !h->value_len || h->value_len > 2)
		return -1;
	for (uint32_t i = 0; i < h->value_len; i++) {
		char c = m->buf[h->value_off + i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	return v;
}

static bool retriable(const struct rs_retry_policy *p, enum try_outcome o, const struct rs_msg *resp)
{
	uint32_t on = p->on;
	int s, g;

	switch (o) {
	case TRY_CONNECT_FAILURE:
		return on & (RS_RETRY_5XX | RS_RETRY_GATEWAY_ERROR | RS_RETRY_RESET |
			     RS_RETRY_CONNECT_FAILURE);
	case TRY_RESET:
	case TRY_TIMEOUT:
		return on & (RS_RETRY_5XX | RS_RETRY_GATEWAY_ERROR | RS_RETRY_RESET);
	case TRY_STATUS:
		break;
	}
	s = resp->status;
	if (((on & RS_RETRY_5XX) && s >= 500 && s <= 599) ||
	    ((on & RS_RETRY_GATEWAY_ERROR) && s >= 502 && s <= 504) ||
	    ((on & RS_RETRY_RETRIABLE_4XX) && s == 409))
		return true;
	for (uint32_t i = 0; (on & RS_RETRY_STATUS_CODES) && i < p->ncodes; i++)
		if (p->codes[i] == s)
			return true;
	g = grpc_status(resp);
	return (g == 1 && (on & RS_RETRY_GRPC_CANCELLED)) ||
	       (g == 4 && (on & RS_RETRY_GRPC_DEADLINE_EXCEEDED)) ||
	       (g == 8 && (on & RS_RETRY_GRPC_RESOURCE_EXHAUSTED)) ||
	       (g == 14 && (on & RS_RETRY_GRPC_UNAVAILABLE)) ||
	       (g == 13 && (on & RS_RETRY_GRPC_INTERNAL));
}

/* Envoy's back-off: fully jittered, exponential from a 25 ms base, capped
 * at ten times that (x-envoy-retry-on docs, "Retry back-off"). */
#define RETRY_BASE_NS (25 * 1000000ull)

/* Whether the try that ended with o is tried again: a policy that allows
 * another try and o, nothing of the response sent, and a request that can
 * be sent again (complete, its body kept whole). Then the current upstream
 * is let go and the next try waits its back-off. */
static bool try_again(struct rs_stream *st, enum try_outcome o)
{
	const struct rs_retry_policy *p = retry_policy(st);
	struct rs_worker *w = st->w;
	uint64_t cap, wait;

	if (!p || st->resp_started || st->local || !st->req_done || st->body_over ||
	    !retriable(p, o, &st->resp))
		return false;
	if (st->retries_done >= p->retries) {
		st->rflag = RS_RFLAG_URX;
		return false;
	}
	/* maxRetries: retries in flight for the cluster, one a stream. */
	if (!st->cb_retry) {
		int r = rs_cb_acquire(cb_of(st), RS_CB_RETRIES, w->id);

		if (r == RS_CB_FULL)
			return false;
		st->cb_retry = r == RS_CB_TAKEN;
	}
	st->retries_done++;
	rs_timer_cancel(&w->loop.timers, &st->per_try);
	if (st->us) {
		struct rs_us *us = st->us;

		st->us = NULL;
		rs_proxy__us_release(us, st, false);
	}
	cap = RETRY_BASE_NS * ((1ull << (st->retries_done < 5 ? st->retries_done : 5)) - 1);
	if (cap > 10 * RETRY_BASE_NS)
		cap = 10 * RETRY_BASE_NS;
	wait = rs_rng_next(w->rng) % (cap + 1);
	rs_stat_inc(w->stats, RS_C_US_RQ_RETRY);
	rs_debug("retry %u of %.*s in %llu us", st->retries_done, (int)st->req.path.value_len,
		 st->req.buf + st->req.path.value_off, (unsigned long long)(wait / 1000));
	rs_timer_arm(&w->loop.timers, &st->backoff, w->loop.now + wait);
	return true;
}

static void arm_per_try(struct rs_stream *st)
{
	const struct rs_retry_policy *p = retry_policy(st);

	if (p && p->per_try_ns)
		rs_timer_arm(&st->w->loop.timers, &st->per_try, st->w->loop.now + p->per_try_ns);
}

static int dispatch(struct rs_stream *st);

static void on_backoff(struct rs_timer *t)
{
	struct rs_stream *st = (struct rs_stream *)((char *)t - offsetof(struct rs_stream, backoff));
	int ret;

	if (st->delayed) {
		/* The end of a fault delay, not a retry's back-off. */
		st->delayed = false;
		if (st->abort_status)
			rs_proxy__stream_local_reply(st, RS_RFLAG_FI, st->abort_status,
						     "fault filter abort");
		else
			dispatch(st);
		return;
	}
	/* Another endpoint when there is one (Istio sets Envoy's
	 * previous-hosts retry predicate). */
	st->ep = pick_endpoint(st, st->ep);
	st->resp.status = 0;
	if (!st->ep) {
		rs_proxy__stream_upstream_failed(st, RS_RFLAG_UH, 503, "no healthy upstream");
		return;
	}
	ret = connect_upstream(st, false);
	if (ret == -EBUSY) {
		if (!wait_for_connection(st))
			rs_proxy__stream_local_reply(st, RS_RFLAG_UO, 503, overflow_text);
		return;
	}
	if (ret < 0) {
		rs_proxy__stream_upstream_failed(st, RS_RFLAG_UF, 503,
						 rs_proxy__connect_failure_text);
		return;
	}
	/* A timer, not a read, started this try: resume flushes. */
	resume(st);
}

static void on_per_try_timeout(struct rs_timer *t)
{
	struct rs_stream *st = (struct rs_stream *)((char *)t - offsetof(struct rs_stream, per_try));

	rs_stat_inc(st->w->stats, RS_C_US_RQ_TIMEOUT);
	outlier_record(st, 504);
	if (try_again(st, TRY_TIMEOUT))
		return;
	st->outlier_counted = true;
	rs_proxy__stream_upstream_failed(st, RS_RFLAG_UT, 504, "upstream request timeout");
}

bool rs_proxy__stream_retry_response(struct rs_stream *st)
{
	outlier_record(st, st->resp.status);
	return try_again(st, TRY_STATUS);
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
	st->route_timeout_ns = ds->w->opts->route_timeout_ns;
	st->timeout.fn = on_timeout;
	st->per_try.fn = on_per_try_timeout;
	st->backoff.fn = on_backoff;
	st->deadline.fn = on_deadline;
	st->grpc_code = -1;
	rs_msg_init(&st->req);
	rs_msg_init(&st->resp);
	rs_msg_init(&st->trailers);
	rs_stat_inc(ds->w->stats, RS_C_DS_RQ_ACTIVE);
	return st;
}

void rs_proxy__stream_free(struct rs_stream *st)
{
	rs_timer_cancel(&st->w->loop.timers, &st->timeout);
	rs_timer_cancel(&st->w->loop.timers, &st->per_try);
	rs_timer_cancel(&st->w->loop.timers, &st->backoff);
	rs_timer_cancel(&st->w->loop.timers, &st->deadline);
	drop_active(st);
	unwait(st);
	free(st->body);
	if (st->cb_request)
		rs_cb_release(cb_of(st), RS_CB_REQUESTS, st->w->id);
	if (st->cb_retry)
		rs_cb_release(cb_of(st), RS_CB_RETRIES, st->w->id);
	if (st->us)
		rs_proxy__us_release(st->us, st, false);
	rs_stat_dec(st->w->stats, RS_C_DS_RQ_ACTIVE);
	rs_snap_shard(st->snap, st->w->id)->refs--;
	rs_msg_free(&st->req);
	rs_msg_free(&st->resp);
	rs_msg_free(&st->trailers);
	rs_outq_clear(&st->up_body, &st->w->loop.chunks);
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
	if (st->grpc) {
		int g = st->grpc_code;

		if (st->local || g < 0)
			g = rs_proxy__grpc_status_for(st, st->resp.status);
		rs_stat_add(&w->stats->grpc[g < RS_GRPC_STATUSES - 1 ? g : RS_GRPC_STATUSES - 1], 1);
	}
	if (rs_log_min <= RS_LOG_DEBUG)
		rs_debug("%.*s %.*s %d %s %s", (int)st->req.method_s.value_len,
			 st->req.buf + st->req.method_s.value_off, (int)st->req.path.value_len,
			 st->req.buf + st->req.path.value_off, st->resp.status,
			 rflag_names[st->rflag], st->cluster ? st->cluster->name : "-");
	/* A request whose body is still arriving cannot be followed by another
	 * on this connection. */
	if (!st->req_done && st->req.body != RS_BODY_NONE)
		st->close_after = true;
	rs_proxy__ds_stream_done(st->ds, st);
}

void rs_proxy__stream_local_reply(struct rs_stream *st, enum rs_rflag flag, int status,
				  const char *text)
{
	struct rs_ds *ds = st->ds;
	struct rs_worker *w = st->w;

	rs_timer_cancel(&w->loop.timers, &st->timeout);
	unwait(st);
	st->rflag = flag;
	st->local = true;
	st->resp.status = status;
	st->resp_started = true;
	if (!st->req_done && st->req.body != RS_BODY_NONE)
		st->close_after = true;
	if (rs_proxy__ds_local_reply(ds, st, status, text) < 0) {
		rs_proxy__ds_reset(ds, st);
		return;
	}
	rs_proxy__ds_flush(ds);
	finish(st);
}

static int add_forwarding_headers(struct rs_stream *st)
{
	struct rs_msg *m = &st->req;
	const struct rs_hdr *h = rs_msg_find(m, "x-request-id");
	const char *proto;
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
	/* Set when absent from the client's connection: https over TLS (the
	 * inbound port's mutual TLS), as Envoy does. */
	proto = rs_tls_on(&st->ds->c) ? "https" : "http";
	if (!rs_msg_find(m, "x-forwarded-proto") &&
	    rs_msg_add_header(m, "x-forwarded-proto", 17, proto, strlen(proto)) < 0)
		return -ENOMEM;
	return 0;
}

/* Istio's Headers.HeaderOperations on m, in Envoy's order: remove, then
 * set (replace), then add (append). 0 or -ENOMEM. */
static int header_ops(struct rs_msg *m, const struct rs_header_ops *ops)
{
	for (size_t i = 0; i < ops->nremove; i++)
		rs_msg_remove(m, ops->remove[i], strlen(ops->remove[i]));
	for (size_t i = 0; i < ops->nset; i++) {
		const struct rs_kv *kv = &ops->set[i];

		rs_msg_remove(m, kv->key, strlen(kv->key));
		if (rs_msg_add_header(m, kv->key, strlen(kv->key), kv->value, strlen(kv->value)) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < ops->nadd; i++) {
		const struct rs_kv *kv = &ops->add[i];

		if (rs_msg_add_header(m, kv->key, strlen(kv->key), kv->value, strlen(kv->value)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* A percentage (unset: 100, as Istio's faults) hit by this request. */
static bool percent_hit(struct rs_stream *st, const struct rs_opt_pct *p)
{
	double v = p->set ? p->v : 100.0;

	return (double)(rs_rng_next(st->w->rng) >> 11) * 0x1p-53 * 100.0 < v;
}

/* An answer the route gives itself (direct response, redirect): a response
 * sent through the same path as an upstream's, so the route's response
 * header rules apply to it too. */
static void synthetic(struct rs_stream *st, int status, const char *body, size_t blen,
		      const char *location, size_t llen)
{
	struct rs_msg *r = &st->resp;
	char cl[24];
	int n = snprintf(cl, sizeof cl, "%zu", blen);

	st->local = true;
	if (!st->req_done && st->req.body != RS_BODY_NONE)
		st->close_after = true;
	r->status = status;
	r->http_major = 1;
	r->http_minor = 1;
	r->body = RS_BODY_LENGTH;
	r->content_length = (int64_t)blen;
	if (rs_msg_add_header(r, "content-length", 14, cl, (size_t)n) < 0 ||
	    (blen && rs_msg_add_header(r, "content-type", 12, "text/plain", 10) < 0) ||
	    (location && rs_msg_add_header(r, "location", 8, location, llen) < 0) ||
	    rs_msg_add_header(r, "server", 6, "ringside", 8) < 0) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_NONE, 503, "out of memory");
		return;
	}
	rs_proxy__stream_response_head(st);
	if (blen && st->req.method != RS_METHOD_HEAD && !rs_conn_closing(&st->ds->c))
		rs_proxy__stream_response_data(st, body, blen);
	if (!rs_conn_closing(&st->ds->c))
		rs_proxy__stream_response_end(st, true);
}

/* HTTPRedirect: Location from the request with the parts the rule names
 * replaced (Envoy keeps the query when the new path has none). */
static void redirect(struct rs_stream *st, const struct rs_vs_redirect *rd, const char *host,
		     uint32_t port)
{
	const struct rs_msg *m = &st->req;
	const char *path = m->buf + m->path.value_off;
	size_t plen = m->path.value_len;
	const char *q = memchr(path, '?', plen);
	char loc[2048];
	int n;

	n = snprintf(loc, sizeof loc, "%s://%s", rd->scheme ? rd->scheme : "http",
		     rd->authority ? rd->authority : host);
	if (n >= 0 && (size_t)n < sizeof loc && rd->port)
		n += snprintf(loc + n, sizeof loc - (size_t)n, ":%u", rd->port);
	else if (n >= 0 && (size_t)n < sizeof loc && !rd->authority && port != 80)
		n += snprintf(loc + n, sizeof loc - (size_t)n, ":%u", port);
	if (n >= 0 && (size_t)n < sizeof loc && rd->uri)
		n += snprintf(loc + n, sizeof loc - (size_t)n, "%s%.*s", rd->uri,
			      q && !strchr(rd->uri, '?') ? (int)(plen - (size_t)(q - path)) : 0,
			      q ? q : "");
	else if (n >= 0 && (size_t)n < sizeof loc)
		n += snprintf(loc + n, sizeof loc - (size_t)n, "%.*s", (int)plen, path);
	if (n < 0 || (size_t)n >= sizeof loc) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_NONE, 503, "redirect too long");
		return;
	}
	synthetic(st, (int)rd->redirect_code, NULL, 0, loc, (size_t)n);
}

/* HTTPRewrite: the matched prefix of the path (the whole path, query
 * excepted, for an exact or regex match; "/" without a uri match, as Istio
 * configures Envoy's prefix_rewrite) is replaced by uri; authority replaces
 * Host. */
static int rewrite(struct rs_stream *st, const struct rs_vs_rewrite *rw,
		   const struct rs_rmatch *matched)
{
	struct rs_msg *m = &st->req;
	char path[8192];
	size_t plen = m->path.value_len, cut = 1, ulen;
	const char *p = m->buf + m->path.value_off, *q = memchr(p, '?', plen);

	if (rw->uri) {
		if (matched && matched->uri.kind == RS_SM_PREFIX)
			cut = matched->uri.len;
		else if (matched &&
			 (matched->uri.kind == RS_SM_EXACT || matched->uri.kind == RS_SM_REGEX))
			cut = q ? (size_t)(q - p) : plen;
		if (cut > plen || (cut == 1 && (!plen || p[0] != '/')))
			cut = 0;
		ulen = strlen(rw->uri);
		if (ulen + plen - cut >= sizeof path)
			return -E2BIG;
		memcpy(path, rw->uri, ulen);
		memcpy(path + ulen, p + cut, plen - cut);
		if (rs_msg_set_value(m, &m->path, path, ulen + plen - cut) < 0)
			return -ENOMEM;
	}
	if (rw->authority) {
		rs_msg_remove(m, "host", 4);
		if (rs_msg_add_header(m, "host", 4, rw->authority, strlen(rw->authority)) < 0 ||
		    rs_msg_set_value(m, &m->authority, rw->authority, strlen(rw->authority)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* HTTPRoute.mirror: a copy of the request, as it goes upstream, to an
 * endpoint of the mirror's cluster, its answer dropped (mirrorPercentage,
 * 100 when unset). Sent once the request is complete, with its kept body;
 * one whose body did not fit is not copied. */
static void mirror(struct rs_stream *st, const struct rs_table_route *tr)
{
	const struct rs_vs_http_route *r = tr->r->src;
	const struct rs_snapshot *s = st->snap;
	const struct rs_cluster *c;
	struct rs_lb_ctx ctx = {.rng = st->w->rng};
	const struct rs_endpoint *ep;
	uint32_t i;

	if (!r->mirror_set || tr->mirror < 0 || st->body_over || !st->req_done ||
	    !percent_hit(st, &r->mirror_percentage))
		return;
	c = &s->clusters.v[tr->mirror];
	if (c->tls || c->tls_error) {
		/* Mirrors are sent in clear only: never a TLS destination's copy
		 * in clear. */
		rs_debug("mirror to %s not sent: it wants TLS", c->name);
		return;
	}
	ctx.rr = &rs_snap_shard(s, st->w->id)->rr[tr->mirror];
	ctx.active = &rs_snap_shard(s, st->w->id)->rr[s->clusters.n + c->ep_base];
	ep = rs_lb_pick(c, &ctx, &i);
	if (ep && rs_proxy__us_mirror(st->w, ep, &st->req, st->body, st->body_len) < 0)
		rs_debug("mirror of %.*s to %s not sent", (int)st->req.path.value_len,
			 st->req.buf + st->req.path.value_off, c->name);
}

/* Applies the host's VirtualService: the route that matches, its faults,
 * answers and rewrites, and the destination it picks. Returns that
 * destination's cluster; -1 when no route matches (st->route NULL: NR) or
 * the destination has no cluster (NC); -2 when the route answered. */
static int apply_route(struct rs_stream *st, const struct rs_router_host *e, const char *host,
		       uint32_t port)
{
	const struct rs_rmatch *matched = NULL;
	const struct rs_table_route *tr = rs_router_route(e, port, &st->req, "http", &matched);
	const struct rs_vs_http_route *r;
	int ret;

	if (!tr)
		return -1;
	st->route = tr;
	r = tr->r->src;
	/* Faults in Envoy's order: the delay, then the abort. The body that
	 * arrives during the delay is kept (a request whose body overflows
	 * what is kept is answered 503 then). */
	if (r->fault.delay_set && percent_hit(st, &r->fault.delay_percentage))
		st->delay_ns = r->fault.fixed_delay_ns;
	if (r->fault.abort_set && percent_hit(st, &r->fault.abort_percentage)) {
		if (st->delay_ns) {
			st->abort_status = (int)r->fault.abort_http_status;
		} else {
			rs_proxy__stream_local_reply(st, RS_RFLAG_FI,
						     (int)r->fault.abort_http_status,
						     "fault filter abort");
			return -2;
		}
	}
	if (r->direct_response.set) {
		synthetic(st, (int)r->direct_response.status, r->direct_response.body,
			  r->direct_response.body ? r->direct_response.body_len : 0, NULL, 0);
		return -2;
	}
	if (r->redirect.set) {
		redirect(st, &r->redirect, host, port);
		return -2;
	}
	st->dest = rs_route_pick(tr, rs_rng_next(st->w->rng));
	if (r->timeout.set)
		st->route_timeout_ns = r->timeout.ns;
	ret = r->rewrite.set ? rewrite(st, &r->rewrite, matched) : 0;
	if (ret == -E2BIG) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_NONE, 414, "rewritten path too long");
		return -2;
	}
	if (ret < 0 || (r->nroute && header_ops(&st->req, &r->route[st->dest].headers.request) < 0) ||
	    header_ops(&st->req, &r->headers.request) < 0) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_NONE, 503, "out of memory");
		return -2;
	}
	return r->nroute ? tr->cluster[st->dest] : -1;
}

/* Sends the request to an endpoint of st->cluster: within the cluster's
 * http2MaxRequests, on a connection it may have (or after waiting for one).
 * Returns 0 when the request head is on its way (or waits), -1 when st was
 * answered instead. */
static int dispatch(struct rs_stream *st)
{
	struct rs_worker *w = st->w;
	int ret;

	if (st->grpc && !rs_timer_armed(&st->deadline))
		arm_deadline(st);
	/* http2MaxRequests: requests in flight to the cluster (any protocol). */
	ret = rs_cb_acquire(cb_of(st), RS_CB_REQUESTS, w->id);
	if (ret == RS_CB_FULL) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_UO, 503, overflow_text);
		return -1;
	}
	st->cb_request = ret == RS_CB_TAKEN;
	st->ep = pick_endpoint(st, NULL);
	if (!st->ep) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_UH, 503, "no healthy upstream");
		return -1;
	}
	ret = connect_upstream(st, false);
	if (ret == -EBUSY) {
		if (!wait_for_connection(st)) {
			rs_proxy__stream_local_reply(st, RS_RFLAG_UO, 503, overflow_text);
			return -1;
		}
		if (st->req_done && st->route_timeout_ns)
			rs_timer_arm(&w->loop.timers, &st->timeout, w->loop.now + st->route_timeout_ns);
		return 0;
	}
	if (ret < 0) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_UF, 503,
					     rs_proxy__connect_failure_text);
		return -1;
	}
	if (st->req_done) {
		/* After a fault delay: the request ended meanwhile. */
		if (st->route_timeout_ns)
			rs_timer_arm(&w->loop.timers, &st->timeout,
				     w->loop.now + st->route_timeout_ns);
		resume(st);
		return 0;
	}
	/* Body kept during a fault delay goes after the head; what follows is
	 * forwarded as it comes. */
	if (rs_proxy__us_request_head(st->us, st) < 0 ||
	    (st->body_len && rs_proxy__us_request_data(st->us, st, st->body, st->body_len) < 0)) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_NONE, 503, "out of memory");
		return -1;
	}
	st->t_us_start = rs_now_ns();
	if (st->delay_ns)
		rs_proxy__us_flush(st->us); /* a timer, not a read, got here */
	return 0;
}

/* Inbound: the local application on the port the request was sent to (the
 * original destination's with capture, else the authority's), at the
 * address a Sidecar ingress entry for that port gives as defaultEndpoint,
 * else loopback. The peer's identity goes along as Istio's sidecar passes
 * it (x-forwarded-client-cert, By and URI); one the client sent is
 * dropped. false: answered already. */
static bool inbound_route(struct rs_stream *st, uint32_t authority_port)
{
	struct rs_ds *ds = st->ds;
	const struct rs_sidecar *sc = st->snap->selected.sidecar;
	const struct rs_proxy_opts *o = st->w->opts;
	const char *peer = rs_tls_peer_id(&ds->c);
	char addr[48] = "127.0.0.1", text[200];
	uint32_t port = authority_port ? authority_port : 80;
	struct rs_msg *m = &st->req;

	if (!ds->tls_counted && rs_tls_on(&ds->c)) {
		ds->tls_counted = true;
		rs_stat_inc(st->w->stats, RS_C_DS_CX_TLS);
		if (rs_tls_resumed(&ds->c))
			rs_stat_inc(st->w->stats, RS_C_DS_CX_TLS_RESUMED);
	}
	if (ds->orig_dst_state > 0 && rs_proxy__orig_dst_port(ds) != o->inbound_port)
		port = rs_proxy__orig_dst_port(ds);
	for (size_t i = 0; sc && i < sc->ningress; i++) {
		const struct rs_sidecar_ingress *in = &sc->ingress[i];
		const char *colon;

		if (in->port.number != port)
			continue;
		/* Istio sends to the application in the port's declared
		 * protocol, and in the client's when it is not declared. */
		if (in->port.protocol)
			st->inbound_proto = !strcasecmp(in->port.protocol, "HTTP") ? RS_UP_HTTP1
					    : !strcasecmp(in->port.protocol, "HTTP2") ||
							!strcasecmp(in->port.protocol, "GRPC")
						? RS_UP_HTTP2
						: RS_UP_AUTO;
		if (!in->default_endpoint)
			continue;
		colon = strrchr(in->default_endpoint, ':');
		if (strncmp(in->default_endpoint, "unix://", 7) == 0 || !colon) {
			rs_proxy__stream_local_reply(st, RS_RFLAG_NR, 503,
						     "inbound: a unix socket defaultEndpoint is not "
						     "supported");
			return false;
		}
		/* 0.0.0.0 means the application listens on every address. */
		if (strncmp(in->default_endpoint, "0.0.0.0:", 8) != 0)
			snprintf(addr, sizeof addr, "%.*s", (int)(colon - in->default_endpoint),
				 in->default_endpoint);
		port = (uint32_t)strtoul(colon + 1, NULL, 10);
		break;
	}
	if (port == 0 || port > 65535 ||
	    rs_sockaddr_parse(addr, (uint16_t)port, &st->orig_ep.addr, &st->orig_ep.addr_len) < 0 ||
	    (strcmp(addr, "127.0.0.1") == 0 && (port == o->inbound_port || port == o->outbound_port))) {
		snprintf(text, sizeof text, "no inbound route to port %u", port);
		rs_proxy__stream_local_reply(st, RS_RFLAG_NR, 404, text);
		return false;
	}
	snprintf(st->orig_name, sizeof st->orig_name, "%s:%u", addr, port);
	st->orig_ep.name = st->orig_name;
	st->cluster = &st->snap->clusters.v[st->snap->clusters.inbound];
	rs_msg_remove(m, "x-forwarded-client-cert", 23);
	if (peer) {
		const char *hash = rs_tls_peer_hash(&ds->c);
		char xfcc[800];
		/* Istio's fields, in Envoy's order: By, Hash, URI. */
		int n = snprintf(xfcc, sizeof xfcc, "By=%s;%s%s%sURI=%s", o->own_id,
				 hash ? "Hash=" : "", hash ? hash : "", hash ? ";" : "", peer);

		if (rs_msg_add_header(m, "x-forwarded-client-cert", 23, xfcc, (size_t)n) < 0) {
			rs_proxy__stream_local_reply(st, RS_RFLAG_NONE, 503, "out of memory");
			return false;
		}
	}
	return true;
}

void rs_proxy__stream_request_head(struct rs_stream *st)
{
	struct rs_msg *m = &st->req;
	struct rs_worker *w = st->w;
	const struct rs_hdr *expect;
	const struct rs_router_host *e;
	bool expect_continue = false;
	char host[256], text[400];
	uint32_t port = 0;
	int idx;

	{
		const struct rs_hdr *te = rs_msg_find(m, "te");

		st->te_trailers = te && rs_value_has_token(m->buf + te->value_off, te->value_len,
							  "trailers");
	}
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
	{
		const struct rs_hdr *ct = rs_msg_find(m, "content-type");

		st->grpc = ct && ct->value_len >= 16 &&
			   strncasecmp(m->buf + ct->value_off, "application/grpc", 16) == 0;
	}
	if (add_forwarding_headers(st) < 0) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_NONE, 503, "out of memory");
		return;
	}
	e = rs_router_lookup(&st->snap->router, m->buf + m->authority.value_off,
			     m->authority.value_len, host, sizeof host, &port);
	if (st->ds && st->ds->inbound) {
		if (inbound_route(st, port) && dispatch(st) == 0 && expect_continue &&
		    m->body != RS_BODY_NONE)
			rs_proxy__ds_continue(st->ds, st);
		return;
	}
	idx = e && !e->vs ? rs_router_host_cluster(e, port) : -1;
	if (e && e->vs) {
		idx = apply_route(st, e, host, port);
		if (idx == -2)
			return; /* answered by the route itself */
	}
	if (idx < 0 && !st->route) {
		snprintf(text, sizeof text, "no route for host \"%.*s\"",
			 (int)(m->authority.value_len > 255 ? 255 : m->authority.value_len),
			 m->buf + m->authority.value_off);
		rs_proxy__stream_local_reply(st, RS_RFLAG_NR, 404, text);
		return;
	}
	if (idx < 0) {
		rs_proxy__stream_local_reply(st, RS_RFLAG_NC, 503, "no healthy upstream");
		return;
	}
	st->cluster = &st->snap->clusters.v[idx];
	/* HTTPFaultInjection.delay (decided in apply_route): the request
	 * waits before it goes on. */
	if (st->delay_ns) {
		st->delayed = true;
		rs_timer_arm(&w->loop.timers, &st->backoff, w->loop.now + st->delay_ns);
		return;
	}
	if (dispatch(st) == 0 && expect_continue && m->body != RS_BODY_NONE)
		rs_proxy__ds_continue(st->ds, st);
}

/* Keeps request body bytes for another try or a later send; false when
 * they no longer fit (the body is then dropped and body_over set). */
static bool keep_body(struct rs_stream *st, const char *p, size_t n)
{
	char *v;

	if (st->body_over)
		return false;
	if ((size_t)st->body_len + n > RS_REQ_KEEP_MAX)
		goto over;
	if ((size_t)st->body_len + n > st->body_cap) {
		size_t cap = st->body_cap ? st->body_cap : 4096;

		while (cap < (size_t)st->body_len + n)
			cap *= 2;
		v = realloc(st->body, cap);
		if (!v)
			goto over;
		st->body = v;
		st->body_cap = (uint32_t)cap;
	}
	memcpy(st->body + st->body_len, p, n);
	st->body_len += (uint32_t)n;
	return true;
over:
	free(st->body);
	st->body = NULL;
	st->body_len = st->body_cap = 0;
	st->body_over = true;
	return false;
}

void rs_proxy__stream_request_data(struct rs_stream *st, const char *p, size_t n)
{
	struct rs_us *us = st->us;
	int ret;

	if (st->local)
		return;
	if (!keep_body(st, p, n) && !us) {
		/* Waiting (for a connection or a fault delay) with more body
		 * than can be held. */
		rs_proxy__stream_local_reply(st, RS_RFLAG_UO, 503, overflow_text);
		return;
	}
	if (!us)
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
	uint64_t t = st->route_timeout_ns;

	if (st->route && !st->local)
		mirror(st, st->route);
	/* Waiting for a connection counts against the route timeout too. */
	if (st->waiting && !st->delayed && t)
		rs_timer_arm(&st->w->loop.timers, &st->timeout, st->w->loop.now + t);
	if (!us || st->local)
		return;
	if (rs_proxy__us_request_end(us, st) < 0) {
		rs_proxy__stream_upstream_failed(st, RS_RFLAG_NONE, 503, "out of memory");
		return;
	}
	/* Envoy's route timeout runs from the end of the request. */
	if (t && !st->resp_started)
		rs_timer_arm(&st->w->loop.timers, &st->timeout, st->w->loop.now + t);
	if (!st->resp_started)
		arm_per_try(st);
}

void rs_proxy__stream_response_head(struct rs_stream *st)
{
	/* "close" from the upstream ends that connection only; the downstream
	 * one is independent and stays open. */
	rs_msg_strip_hop_by_hop(&st->resp);
	st->resp_started = true;
	rs_timer_cancel(&st->w->loop.timers, &st->per_try);
	if (st->route) {
		const struct rs_vs_http_route *r = st->route->r->src;

		if ((r->nroute &&
		     header_ops(&st->resp, &r->route[st->dest].headers.response) < 0) ||
		    header_ops(&st->resp, &r->headers.response) < 0) {
			rs_proxy__ds_reset(st->ds, st);
			return;
		}
	}
	if (rs_proxy__ds_response_head(st->ds, st) < 0)
		rs_proxy__ds_reset(st->ds, st);
}

void rs_proxy__stream_response_data(struct rs_stream *st, const char *p, size_t n)
{
	if (rs_proxy__ds_response_data(st->ds, st, p, n) < 0)
		rs_proxy__ds_reset(st->ds, st);
}

void rs_proxy__stream_response_end(struct rs_stream *st, bool keep_alive)
{
	struct rs_ds *ds = st->ds;

	rs_timer_cancel(&st->w->loop.timers, &st->timeout);
	/* Before the client's side takes the trailers over. */
	if (st->grpc) {
		st->grpc_code = grpc_status(&st->trailers);
		if (st->grpc_code < 0)
			st->grpc_code = grpc_status(&st->resp);
	}
	if (rs_proxy__ds_response_end(ds, st) < 0) {
		rs_proxy__ds_reset(ds, st);
		return;
	}
	st->t_us_end = st->w->loop.now;
	if (st->us) {
		struct rs_us *us = st->us;

		st->us = NULL;
		rs_proxy__us_release(us, st, keep_alive && st->req_done);
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
	struct rs_us *old = st->us;
	bool again;

	if (!old || st->retried || st->resp_started || !st->req_done)
		return false;
	/* An HTTP/2 stream the server refused, or that a GOAWAY left
	 * unprocessed, went nowhere (RFC 9113 §8.7): any request whose body is
	 * kept whole may go again. */
	again = st->up_refused ? !st->body_over
			       : old->reused && !old->got_bytes && st->req.body == RS_BODY_NONE &&
					 idempotent(st->req.method);
	if (!again)
		return false;
	st->retried = true;
	rs_proxy__us_release(old, st, false);
	if (connect_upstream(st, true) < 0)
		return false;
	if (rs_proxy__us_request_head(st->us, st) < 0 ||
	    (st->body_len && rs_proxy__us_request_data(st->us, st, st->body, st->body_len) < 0) ||
	    rs_proxy__us_request_end(st->us, st) < 0) {
		rs_proxy__us_release(st->us, st, false);
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
	/* Only a try that reached an endpoint counts against it, and once: a
	 * request still waiting for a connection, or between tries, has
	 * nothing in flight to blame. */
	if (st->us && !st->outlier_counted &&
	    (flag == RS_RFLAG_UF || flag == RS_RFLAG_UC || flag == RS_RFLAG_UPE ||
	     flag == RS_RFLAG_UT))
		outlier_record(st, flag == RS_RFLAG_UT ? 504 : 503);
	st->outlier_counted = false;
	/* The route timeout covers every try: it is never retried. */
	if ((flag == RS_RFLAG_UF && try_again(st, TRY_CONNECT_FAILURE)) ||
	    ((flag == RS_RFLAG_UC || flag == RS_RFLAG_UPE) && try_again(st, TRY_RESET)))
		return;
	rs_timer_cancel(&st->w->loop.timers, &st->per_try);
	if (st->us) {
		struct rs_us *us = st->us;

		st->us = NULL;
		rs_proxy__us_release(us, st, false);
	}
	if (st->resp_started) {
		/* Part of the response is out: only a reset tells the client. */
		st->rflag = flag;
		rs_proxy__ds_reset(st->ds, st);
		return;
	}
	rs_proxy__stream_local_reply(st, flag, status, text);
}
