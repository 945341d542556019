/* The C side of the micro-benchmarks: each case sets itself up once and then
 * runs one operation per call, through the same code the proxy runs. */
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "ringside/http.h"
#include "ringside/router.h"
#include "ringside/telemetry.h"

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
