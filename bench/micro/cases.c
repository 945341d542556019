/* The C side of the micro-benchmarks: each case sets itself up once and then
 * runs one operation per call, through the same code the proxy runs. */
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cases.h"
#include "ringside/config.h"
#include "ringside/core.h"
#include "ringside/http.h"
#include "ringside/router.h"
#include "ringside/telemetry.h"
#include "ringside/upstream.h"

/* --- HTTP/1.1 request parse, with the proxy's header accumulation --- */
static const char typical_request[] =
	"GET /api/v1/reviews/12345?include=ratings HTTP/1.1\r\n"
	"Host: reviews.default.svc.cluster.local:9080\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n"
	"Accept: application/json\r\n"
	"Accept-Encoding: gzip, deflate\r\n"
	"Accept-Language: en-US,en;q=0.9\r\n"
	"x-request-id: 8b3f3b5e-2f0a-4f5b-9d3c-6f0f7f0f7f0f\r\n"
	"x-b3-traceid: 80f198ee56343ba864fe8b2a57d3eff7\r\n"
	"x-b3-spanid: e457b5a2e4d86bd1\r\n"
	"x-b3-sampled: 1\r\n"
	"Cookie: session=abcdef0123456789\r\n"
	"\r\n";

struct parse_ctx {
	struct rs_msg m;
	int in_field;
};

static int on_field(llhttp_t *p, const char *at, size_t n)
{
	struct parse_ctx *c = p->data;
	struct rs_hdr *h;

	if (!c->in_field) {
		h = rs_msg_new_hdr(&c->m);
		h->name_off = c->m.len;
		h->name_len = 0;
		c->in_field = 1;
	}
	h = &c->m.h[c->m.nh - 1];
	rs_msg_append(&c->m, at, n);
	h->name_len += (uint32_t)n;
	return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t n)
{
	struct parse_ctx *c = p->data;
	struct rs_hdr *h = &c->m.h[c->m.nh - 1];

	if (!rs_h1_value_ok(at, n))
		return -1;
	if (c->in_field) {
		c->in_field = 0;
		h->value_off = c->m.len;
		h->value_len = 0;
	}
	rs_msg_append(&c->m, at, n);
	h->value_len += (uint32_t)n;
	return 0;
}

static llhttp_settings_t settings;
static llhttp_t parser;
static struct parse_ctx pctx;

size_t micro_h1_request_size(void)
{
	return sizeof typical_request - 1;
}

int micro_h1_parse(void)
{
	if (!settings.on_header_field) {
		llhttp_settings_init(&settings);
		settings.on_header_field = on_field;
		settings.on_header_value = on_value;
		rs_msg_init(&pctx.m);
	}
	rs_msg_reset(&pctx.m);
	pctx.in_field = 0;
	llhttp_init(&parser, HTTP_REQUEST, &settings);
	parser.data = &pctx;
	return llhttp_execute(&parser, typical_request, sizeof typical_request - 1) == HPE_OK
		       ? (int)pctx.m.nh
		       : -1;
}

/* --- header operations --- */
int micro_strip_hop_by_hop(void)
{
	static struct rs_msg m;
	static const char *const h[][2] = {
		{"host", "reviews:9080"},      {"connection", "keep-alive, x-trace"},
		{"keep-alive", "timeout=5"},   {"x-trace", "abc"},
		{"accept", "*/*"},             {"user-agent", "curl/7.88.1"},
		{"transfer-encoding", "chunked"}, {"x-request-id", "8b3f3b5e-2f0a"},
	};

	rs_msg_reset(&m);
	for (size_t i = 0; i < sizeof h / sizeof h[0]; i++)
		rs_msg_add_header(&m, h[i][0], strlen(h[i][0]), h[i][1], strlen(h[i][1]));
	rs_msg_strip_hop_by_hop(&m);
	return (int)m.nh;
}

/* --- histograms --- */
static struct rs_hist hist, merged;
static uint64_t seed = 88172645463325252ull;

void micro_hist_record(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	rs_hist_record(&hist, seed % 100000);
}

void micro_hist_merge(void)
{
	rs_hist_merge(&merged, &hist);
}

/* --- route match on a large table --- */
static struct rs_clusters clusters;
static struct rs_router router;
static char authorities[1000][64];

int micro_router_setup(size_t n)
{
	if (clusters.n)
		return 0;
	clusters.v = calloc(n, sizeof *clusters.v);
	if (!clusters.v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char host[64];

		snprintf(host, sizeof host, "svc-%zu.default.svc.cluster.local", i);
		clusters.v[i].host = strdup(host);
		clusters.v[i].port = 9080;
		snprintf(authorities[i % 1000], sizeof authorities[0], "svc-%zu:9080", i);
	}
	clusters.n = n;
	return rs_router_init(&router, &clusters, NULL, &(struct rs_identity){.ns = "default"});
}

int micro_router_match(size_t i)
{
	char host[256];
	const char *a = authorities[i % 1000];

	return rs_router_match(&router, a, strlen(a), host, sizeof host);
}

/* --- VirtualService routing: 1,000 services x 10 routes --- */
#define NSVC 1000
#define NREQ 1024

static struct rs_config *rcfg;
static struct rs_clusters rclusters;
static struct rs_router rrouter;
static struct rs_msg reqs[NREQ];
static uint64_t rng[2] = {0x9e3779b97f4a7c15ull, 42};

static void add(struct rs_msg *m, const char *name, const char *value)
{
	rs_msg_add_header(m, name, strlen(name), value, strlen(value));
}

/* Requests spread over this many of the services (MICRO_HOSTS, default
 * all): few is a sidecar's usual traffic, all the cache-cold worst case. */
static size_t nhosts = NSVC;

static void request(struct rs_msg *m, size_t i)
{
	char v[64];
	int64_t off;

	rs_msg_init(m);
	m->method = RS_METHOD_GET;
	off = rs_msg_append(m, "GET", 3);
	m->method_s = (struct rs_hdr){0, 0, (uint32_t)off, 3};
	snprintf(v, sizeof v, "/api/v%zu/items/%zu?x=1", i % 4, i);
	off = rs_msg_append(m, v, strlen(v));
	m->path = (struct rs_hdr){0, 0, (uint32_t)off, (uint32_t)strlen(v)};
	snprintf(v, sizeof v, "svc-%04zu:9080", (i * 7919) % nhosts);
	add(m, "host", v);
	off = rs_msg_append(m, v, strlen(v));
	m->authority = (struct rs_hdr){0, 0, (uint32_t)off, (uint32_t)strlen(v)};
	add(m, "user-agent", "curl/7.88.1");
	add(m, "accept", "*/*");
	add(m, "x-request-id", "8b3f3b5e-2f0a-4f5b-9d3c-6f0f7f0f7f0f");
	add(m, "x-user-type", i % 3 == 0 ? "beta" : "regular");
}

int micro_routes_setup(void)
{
	char path[] = "/tmp/ringside-micro-XXXXXX";
	struct rs_identity id = {.ns = "default"};
	struct rs_diags diags = {0};
	const char *paths[1];
	FILE *f;
	int fd;

	if (rcfg)
		return 0;
	fd = mkstemp(path);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		return -1;
	for (int s = 0; s < NSVC; s++) {
		fprintf(f,
			"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
			"metadata: {name: svc-%04d}\nspec:\n"
			"  hosts: [svc-%04d.default.svc.cluster.local]\n"
			"  location: MESH_INTERNAL\n  resolution: STATIC\n"
			"  ports: [{number: 9080, name: http, protocol: HTTP}]\n  endpoints:\n"
			"  - {address: 10.0.%d.1, labels: {version: v1}}\n"
			"  - {address: 10.0.%d.2, labels: {version: v2}}\n"
			"  - {address: 10.0.%d.3, labels: {version: v3}}\n---\n"
			"apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
			"metadata: {name: svc-%04d}\nspec:\n  host: svc-%04d\n  subsets:\n"
			"  - {name: v1, labels: {version: v1}}\n"
			"  - {name: v2, labels: {version: v2}}\n"
			"  - {name: v3, labels: {version: v3}}\n---\n"
			"apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
			"metadata: {name: svc-%04d}\nspec:\n  hosts: [svc-%04d]\n  http:\n",
			s, s, s % 250, s % 250, s % 250, s, s, s, s);
		/* Nine routes that the requests mostly miss, then a weighted
		 * catch-all: a request walks about half the table on average. */
		for (int r = 0; r < 9; r++)
			fprintf(f,
				"  - match: [{uri: {prefix: /api/v%d/}, headers: {x-user-type: {exact: "
				"%s}}}, {uri: {regex: \"/admin/[0-9]+\"}}]\n"
				"    route: [{destination: {host: svc-%04d, subset: v%d}}]\n",
				r, r % 2 ? "beta" : "internal", s, 1 + r % 3);
		fprintf(f,
			"  - route:\n    - {destination: {host: svc-%04d, subset: v1}, weight: 90}\n"
			"    - {destination: {host: svc-%04d, subset: v2}, weight: 10}\n---\n",
			s, s);
	}
	fclose(f);
	paths[0] = path;
	if (rs_config_load(paths, 1, &rcfg, &diags) < 0 || diags.errors) {
		rs_diags_print(&diags, stderr);
		return -1;
	}
	unlink(path);
	rs_diags_free(&diags);
	if (rs_clusters_build(rcfg, &id, &rclusters, NULL) < 0 ||
	    rs_router_init(&rrouter, &rclusters, rcfg, &id) < 0)
		return -1;
	if (getenv("MICRO_HOSTS") && atoi(getenv("MICRO_HOSTS")) > 0 &&
	    atoi(getenv("MICRO_HOSTS")) <= NSVC)
		nhosts = (size_t)atoi(getenv("MICRO_HOSTS"));
	for (size_t i = 0; i < NREQ; i++)
		request(&reqs[i], i);
	return 0;
}

int micro_route_request(size_t i)
{
	const struct rs_msg *m = &reqs[i % NREQ];
	const struct rs_router_host *e;
	const struct rs_table_route *tr;
	const struct rs_rmatch *matched;
	char host[256];
	uint32_t port;

	e = rs_router_lookup(&rrouter, m->buf + m->authority.value_off, m->authority.value_len,
			     host, sizeof host, &port);
	if (!e || !e->vs)
		return -1;
	tr = rs_router_route(e, port, m, "http", &matched);
	if (!tr)
		return -1;
	return tr->cluster[rs_route_pick(tr, rs_rng_next(rng))];
}

/* --- load balancer picks --- */
static struct rs_cluster lbc[5];
static uint32_t lb_rr, lb_active[10];

int micro_lb_setup(int kind)
{
	static struct rs_lb_settings hash = {.set = true, .consistent_hash = true};
	static const enum rs_lb_kind kinds[] = {RS_LB_KIND_LEAST_REQUEST, RS_LB_KIND_ROUND_ROBIN,
						RS_LB_KIND_RANDOM, RS_LB_KIND_RING_HASH,
						RS_LB_KIND_MAGLEV};
	struct rs_cluster *c = &lbc[kind];

	if (c->neps)
		return 0;
	c->eps = calloc(10, sizeof *c->eps);
	if (!c->eps)
		return -1;
	for (int e = 0; e < 10; e++) {
		char name[32];

		snprintf(name, sizeof name, "10.0.0.%d:9080", e + 1);
		c->eps[e].name = strdup(name);
	}
	c->neps = 10;
	c->lb = kinds[kind];
	c->lb_cfg = kind >= 3 ? &hash : NULL;
	return rs_lb_build(c);
}

int micro_lb_pick(int kind, size_t i)
{
	struct rs_lb_ctx ctx = {.rr = &lb_rr, .active = lb_active, .rng = rng};
	uint32_t idx;

	if (kind >= 3) {
		ctx.has_hash = true;
		ctx.hash = rs_lb_hash((const char *)&i, sizeof i);
	}
	rs_lb_pick(&lbc[kind], &ctx, &idx);
	return (int)idx;
}

/* --- HTTP/1.1 response head: an origin's typical answer, re-encoded --- */
int micro_h1_encode_response_head(void)
{
	static struct rs_msg m;
	static struct rs_chunk_cache cc = {.max_free = 4};
	static struct rs_outq q;
	static const char *const h[][2] = {
		{"content-type", "application/json"},
		{"content-length", "1432"},
		{"date", "Thu, 26 Nov 2026 14:30:00 GMT"},
		{"x-envoy-upstream-service-time", "3"},
		{"x-request-id", "8b3f3b5e-2f0a-4f5b-9d3c-6f0f7f0f7f0f"},
		{"cache-control", "no-store"},
	};
	size_t n;

	if (!m.nh) {
		rs_msg_init(&m);
		m.status = 200;
		for (size_t i = 0; i < sizeof h / sizeof h[0]; i++)
			rs_msg_add_header(&m, h[i][0], strlen(h[i][0]), h[i][1], strlen(h[i][1]));
	}
	if (rs_h1_encode_response_head(&q, &cc, &m, false, false) < 0)
		return -1;
	n = q.bytes;
	rs_outq_clear(&q, &cc);
	return (int)n;
}
