/* VirtualService http routes: compiled once per snapshot (regexes with RE2,
 * match blocks that cannot apply to this workload dropped), and matched
 * against a request in order, as Envoy matches the routes Istio gives it.
 * Nothing here allocates while matching. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ringside/config.h"
#include "ringside/core.h"
#include "ringside/http.h"
#include "ringside/regex.h"
#include "ringside/router.h"
#include "internal.h"

static int compile_sm(struct rs_smatch *out, const struct rs_string_match *in)
{
	char err[256];
	size_t mn, mx;

	out->kind = in->kind;
	out->s = in->value;
	out->len = in->value ? (uint32_t)strlen(in->value) : 0;
	if (in->kind != RS_SM_REGEX)
		return 0;
	/* Checked at load: only out of memory can fail here. */
	out->re = rs_regex_compile(in->value, out->len, err, sizeof err);
	if (!out->re)
		return -ENOMEM;
	if (rs_regex_range(out->re, &out->min, &mn, &out->max, &mx)) {
		out->minlen = (uint32_t)mn;
		out->maxlen = (uint32_t)mx;
	}
	return 0;
}

static void free_sm(struct rs_smatch *m)
{
	if (m->re)
		rs_regex_free(m->re);
}

static int compile_named(struct rs_nmatch **out, uint32_t *n, const struct rs_named_match *in,
			 size_t nin)
{
	*n = 0;
	*out = nin ? calloc(nin, sizeof **out) : NULL;
	if (nin && !*out)
		return -ENOMEM;
	for (size_t i = 0; i < nin; i++) {
		struct rs_nmatch *m = &(*out)[(*n)++];

		m->name = in[i].name;
		m->nlen = (uint32_t)strlen(in[i].name);
		if (compile_sm(&m->m, &in[i].match) < 0)
			return -ENOMEM;
	}
	return 0;
}

static void free_named(struct rs_nmatch *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free_sm(&v[i].m);
	free(v);
}

/* Whether a match block can ever apply to a request of this proxy:
 * sourceLabels and sourceNamespace name the client workload, which is this
 * one; gateways other than `mesh` are not sidecars. */
static bool applies_here(const struct rs_vs_match *m, const struct rs_identity *id)
{
	bool mesh = m->ngateways == 0;

	for (size_t i = 0; i < m->ngateways; i++)
		mesh |= strcmp(m->gateways[i], "mesh") == 0;
	if (!mesh)
		return false;
	if (m->source_namespace && strcmp(m->source_namespace, id->ns) != 0)
		return false;
	return rs_labels_include(id->labels, id->nlabels, m->source_labels, m->nsource_labels);
}

void rs_router__route_free(struct rs_route *r)
{
	for (uint32_t i = 0; i < r->nmatches; i++) {
		struct rs_rmatch *m = &r->matches[i];

		free_sm(&m->uri);
		free_sm(&m->scheme);
		free_sm(&m->method);
		free_sm(&m->authority);
		free_named(m->headers, m->nheaders);
		free_named(m->without, m->nwithout);
		free_named(m->query, m->nquery);
	}
	free(r->matches);
	memset(r, 0, sizeof *r);
}

void rs_retry_default(struct rs_retry_policy *p)
{
	memset(p, 0, sizeof *p);
	p->retries = 2;
	rs_retry_parse(p, "connect-failure,refused-stream,unavailable,cancelled,503");
}

void rs_retry_parse(struct rs_retry_policy *p, const char *retry_on)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} names[] = {
		{"5xx", RS_RETRY_5XX},
		{"gateway-error", RS_RETRY_GATEWAY_ERROR},
		{"reset", RS_RETRY_RESET},
		{"connect-failure", RS_RETRY_CONNECT_FAILURE},
		{"refused-stream", RS_RETRY_REFUSED_STREAM},
		{"retriable-4xx", RS_RETRY_RETRIABLE_4XX},
		{"retriable-status-codes", RS_RETRY_STATUS_CODES},
		{"cancelled", RS_RETRY_GRPC_CANCELLED},
		{"deadline-exceeded", RS_RETRY_GRPC_DEADLINE_EXCEEDED},
		{"resource-exhausted", RS_RETRY_GRPC_RESOURCE_EXHAUSTED},
		{"unavailable", RS_RETRY_GRPC_UNAVAILABLE},
		{"internal", RS_RETRY_GRPC_INTERNAL},
	};
	const char *s = retry_on;

	while (s && *s) {
		size_t len = strcspn(s, ",");
		const char *t = s;
		size_t tl = len;

		while (tl && (*t == ' ' || *t == '\t'))
			t++, tl--;
		while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t'))
			tl--;
		if (tl == 3 && t[0] >= '1' && t[0] <= '5' && t[1] >= '0' && t[1] <= '9' &&
		    t[2] >= '0' && t[2] <= '9') {
			/* A bare status code: Istio turns it into Envoy's
			 * retriable_status_codes. */
			p->on |= RS_RETRY_STATUS_CODES;
			if (p->ncodes < RS_RETRY_CODES_MAX)
				p->codes[p->ncodes++] =
				    (uint16_t)((t[0] - '0') * 100 + (t[1] - '0') * 10 + (t[2] - '0'));
		} else {
			for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
				if (strlen(names[i].name) == tl && memcmp(names[i].name, t, tl) == 0)
					p->on |= names[i].bit;
		}
		s += len + (s[len] == ',');
	}
}

int rs_router__route_compile(struct rs_route *r, const struct rs_vs_http_route *src,
			     const struct rs_identity *id)
{
	memset(r, 0, sizeof *r);
	r->src = src;
	if (!src->retries.set) {
		rs_retry_default(&r->retry);
	} else {
		r->retry.retries = src->retries.attempts;
		r->retry.per_try_ns = src->retries.per_try_timeout.set ? src->retries.per_try_timeout.ns : 0;
		/* Istio's default retryOn (and its retriable code, 503) when
		 * attempts are given without one. */
		rs_retry_parse(&r->retry, src->retries.retry_on
						  ? src->retries.retry_on
						  : "connect-failure,refused-stream,unavailable,cancelled,"
						    "503");
	}
	r->any = src->nmatch == 0;
	for (size_t i = 0; i < src->nroute; i++)
		r->total_weight += src->route[i].weight;
	r->matches = src->nmatch ? calloc(src->nmatch, sizeof *r->matches) : NULL;
	if (src->nmatch && !r->matches)
		return -ENOMEM;
	for (size_t i = 0; i < src->nmatch; i++) {
		const struct rs_vs_match *in = &src->match[i];
		struct rs_rmatch *m;

		if (!applies_here(in, id))
			continue;
		m = &r->matches[r->nmatches++];
		m->port = in->port;
		m->nocase = in->ignore_uri_case;
		if (compile_sm(&m->uri, &in->uri) < 0 || compile_sm(&m->scheme, &in->scheme) < 0 ||
		    compile_sm(&m->method, &in->method) < 0 ||
		    compile_sm(&m->authority, &in->authority) < 0 ||
		    compile_named(&m->headers, &m->nheaders, in->headers, in->nheaders) < 0 ||
		    compile_named(&m->without, &m->nwithout, in->without_headers,
				  in->nwithout_headers) < 0 ||
		    compile_named(&m->query, &m->nquery, in->query_params, in->nquery_params) < 0)
			goto nomem;
	}
	return 0;
nomem:
	rs_router__route_free(r);
	return -ENOMEM;
}

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

/* A StringMatch against a value (RS_SM_PRESENT: the value exists at all). */
static bool sm_matches(const struct rs_smatch *m, const char *v, size_t len, bool nocase)
{
	switch (m->kind) {
	case RS_SM_NONE:
	case RS_SM_PRESENT:
		return true;
	case RS_SM_EXACT:
		return len == m->len &&
		       (nocase ? strncasecmp(v, m->s, len) == 0 : memcmp(v, m->s, len) == 0);
	case RS_SM_PREFIX:
		return len >= m->len && (nocase ? strncasecmp(v, m->s, m->len) == 0
						: memcmp(v, m->s, m->len) == 0);
	case RS_SM_REGEX:
		/* Most values a route's regex sees lie outside what it can match:
		 * two comparisons turn them away without running RE2. */
		if (m->min && (bytes_cmp(v, len, m->min, m->minlen) < 0 ||
			       bytes_cmp(v, len, m->max, m->maxlen) > 0))
			return false;
		return rs_regex_full_match(m->re, v, len);
	}
	return false;
}

/* The value of header name in m: the first field's, or every field's joined
 * with "," into buf (Envoy's rule for repeated headers). NULL when absent. */
static const char *header_value(const struct rs_msg *m, const struct rs_nmatch *n, char *buf,
				size_t cap, size_t *len)
{
	const char *first = NULL;
	size_t used = 0;
	unsigned count = 0;

	for (uint32_t i = 0; i < m->nh; i++) {
		const struct rs_hdr *h = &m->h[i];

		if (!h->name_len || !rs_hdr_name_is(m, h, n->name, n->nlen))
			continue;
		if (count++ == 0) {
			first = m->buf + h->value_off;
			*len = h->value_len;
			continue;
		}
		if (count == 2) {
			if (*len > cap)
				return first; /* too long to join: the first value stands */
			memcpy(buf, first, *len);
			used = *len;
		}
		if (used + 1 + h->value_len > cap)
			break;
		buf[used++] = ',';
		memcpy(buf + used, m->buf + h->value_off, h->value_len);
		used += h->value_len;
	}
	if (count > 1 && used) {
		*len = used;
		return buf;
	}
	return first;
}

/* What every block of every route reads of one request, found once. */
struct view {
	const struct rs_msg *m;
	const char *path;
	size_t plen;
	const char *q; /* the '?' of the query, or NULL */
	size_t nq;     /* the path without its query */
	uint32_t port;
	const char *scheme;
};

static void view_init(struct view *v, const struct rs_msg *m, uint32_t port, const char *scheme)
{
	v->m = m;
	v->path = m->buf + m->path.value_off;
	v->plen = m->path.value_len;
	v->q = memchr(v->path, '?', v->plen);
	v->nq = v->q ? (size_t)(v->q - v->path) : v->plen;
	v->port = port;
	v->scheme = scheme;
}

static bool block_matches(const struct rs_rmatch *b, const struct view *rq)
{
	const struct rs_msg *m = rq->m;
	const char *path = rq->path, *q = rq->q, *scheme = rq->scheme;
	size_t plen = rq->plen, nq = rq->nq;
	uint32_t port = rq->port;
	char buf[4096];

	if (b->port && b->port != port)
		return false;
	/* Envoy: exact and regex see the path without the query string, a
	 * prefix the whole target. */
	if (b->uri.kind && !sm_matches(&b->uri, path, b->uri.kind == RS_SM_PREFIX ? plen : nq,
				       b->nocase))
		return false;
	if (b->method.kind && !sm_matches(&b->method, m->buf + m->method_s.value_off,
					  m->method_s.value_len, false))
		return false;
	if (b->authority.kind && !sm_matches(&b->authority, m->buf + m->authority.value_off,
					     m->authority.value_len, false))
		return false;
	if (b->scheme.kind && !sm_matches(&b->scheme, scheme, strlen(scheme), false))
		return false;
	for (uint32_t i = 0; i < b->nheaders; i++) {
		size_t len = 0;
		const char *v = header_value(m, &b->headers[i], buf, sizeof buf, &len);

		if (!v || !sm_matches(&b->headers[i].m, v, len, false))
			return false;
	}
	for (uint32_t i = 0; i < b->nwithout; i++) {
		size_t len = 0;
		const char *v = header_value(m, &b->without[i], buf, sizeof buf, &len);

		if (v && sm_matches(&b->without[i].m, v, len, false))
			return false;
	}
	for (uint32_t i = 0; i < b->nquery; i++) {
		size_t len = 0;
		const char *v = q ? rs_query_param(q + 1, plen - nq - 1, b->query[i].name,
						   b->query[i].nlen, &len)
				  : NULL;

		if (!v || !sm_matches(&b->query[i].m, v, len, false))
			return false;
	}
	return true;
}

static bool route_matches(const struct rs_route *r, const struct view *v,
			  const struct rs_rmatch **matched)
{
	*matched = NULL;
	if (r->any)
		return true;
	for (uint32_t i = 0; i < r->nmatches; i++) {
		if (block_matches(&r->matches[i], v)) {
			*matched = &r->matches[i];
			return true;
		}
	}
	return false;
}

bool rs_route_matches(const struct rs_route *r, const struct rs_msg *m, uint32_t port,
		      const char *scheme, const struct rs_rmatch **matched)
{
	struct view v;

	view_init(&v, m, port, scheme);
	return route_matches(r, &v, matched);
}

const struct rs_table_route *rs_router__first_match(const struct rs_route_table *t,
						    const struct rs_msg *m, uint32_t port,
						    const char *scheme,
						    const struct rs_rmatch **matched)
{
	struct view v;

	view_init(&v, m, port, scheme);
	for (uint32_t i = 0; i < t->nroutes; i++)
		if (route_matches(t->routes[i].r, &v, matched))
			return &t->routes[i];
	return NULL;
}

uint32_t rs_route_pick(const struct rs_table_route *tr, uint64_t x)
{
	const struct rs_vs_http_route *src = tr->r->src;
	uint64_t at;

	if (src->nroute <= 1 || !tr->r->total_weight)
		return 0;
	at = rs_uniform(x, tr->r->total_weight);
	for (uint32_t i = 0; i < src->nroute; i++) {
		if (at < src->route[i].weight)
			return i;
		at -= src->route[i].weight;
	}
	return (uint32_t)src->nroute - 1;
}
