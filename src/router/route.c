/* VirtualService http routes: compiled once per snapshot (regexes with RE2,
 * match blocks that cannot apply to this workload dropped), and matched
 * against a request in order, as Envoy matches the routes Istio gives it.
 * Nothing here allocates while matching. */
#include <endian.h>
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

/* Compiles headers, withoutHeaders or queryParams into one allocation that
 * holds the entries, then copies of their names and values: a block's
 * check reads them from one place, not from wherever the configuration
 * put each string. */
static int compile_named(struct rs_nmatch **out, uint32_t *n, const struct rs_named_match *in,
			 size_t nin, struct rs_arena *a)
{
	size_t size = nin * sizeof **out;
	char *at;

	*n = 0;
	*out = NULL;
	if (!nin)
		return 0;
	for (size_t i = 0; i < nin; i++)
		size += strlen(in[i].name) + 1 + (in[i].match.value ? strlen(in[i].match.value) + 1 : 0);
	*out = rs_arena_alloc(a, size);
	if (!*out)
		return -ENOMEM;
	at = (char *)(*out + nin);
	for (size_t i = 0; i < nin; i++) {
		struct rs_nmatch *m = &(*out)[(*n)++];

		m->nlen = (uint32_t)strlen(in[i].name);
		m->name = memcpy(at, in[i].name, m->nlen + 1);
		at += m->nlen + 1;
		if (compile_sm(&m->m, &in[i].match) < 0)
			return -ENOMEM;
		if (m->m.s) {
			m->m.s = memcpy(at, m->m.s, m->m.len + 1);
			at += m->m.len + 1;
		}
	}
	return 0;
}

static void free_named(struct rs_nmatch *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free_sm(&v[i].m);
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
			     const struct rs_identity *id, struct rs_arena *a)
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
	r->matches = src->nmatch ? rs_arena_alloc(a, src->nmatch * sizeof *r->matches) : NULL;
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
		    compile_named(&m->headers, &m->nheaders, in->headers, in->nheaders, a) < 0 ||
		    compile_named(&m->without, &m->nwithout, in->without_headers,
				  in->nwithout_headers, a) < 0 ||
		    compile_named(&m->query, &m->nquery, in->query_params, in->nquery_params, a) < 0)
			goto nomem;
		m->fields = (m->uri.kind ? RS_RM_URI : 0) | (m->scheme.kind ? RS_RM_SCHEME : 0) |
			    (m->method.kind ? RS_RM_METHOD : 0) |
			    (m->authority.kind ? RS_RM_AUTHORITY : 0);
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

/* Whether field h of m is called name, which the loader lower-cased (RFC
 * 9110 §5.1: field names are case-insensitive). */
static inline bool name_is(const struct rs_msg *m, const struct rs_hdr *h, const char *name,
			   uint32_t nlen)
{
	const char *p = m->buf + h->name_off;

	if (h->name_len != nlen)
		return false;
	for (uint32_t i = 0; i < nlen; i++) {
		char c = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] + ('a' - 'A')) : p[i];

		if (c != name[i])
			return false;
	}
	return true;
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

		if (!h->name_len || !name_is(m, h, n->name, n->nlen))
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
	/* The first eight bytes of the whole target and of the path without
	 * its query, big-endian and zero-padded, as match keys compare them;
	 * then the same lower-cased (ignoreUriCase). */
	uint64_t head[2], lower[2];
};

/* The first min(len, 8) bytes of s as a big-endian number, zero-padded:
 * comparing two of these orders them as memcmp orders their strings' first
 * eight bytes, and a string's never exceeds a greater string's. */
static uint64_t head8(const char *s, size_t len)
{
	uint64_t x = 0;

	memcpy(&x, s, len < 8 ? len : 8);
	return be64toh(x);
}

/* The mask of the first n (at most 8) bytes of a head8 value. */
static uint64_t head_mask(size_t n)
{
	return n >= 8 ? UINT64_MAX : ~(UINT64_MAX >> (8 * n));
}

/* x with its bytes 'A'..'Z' lower-cased, all eight at once; other bytes
 * stay, as strncasecmp leaves them in the C locale. A byte's high bit is
 * set by adding 0x3f when it is 'A' or more, by adding 0x25 when it is
 * past 'Z' (its low seven bits only, so no carry crosses bytes); upper
 * case is the first without the second, and 0x80 >> 2 is 'a' - 'A'. */
static uint64_t lower8(uint64_t x)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7full, high = 0x8080808080808080ull;
	uint64_t h = x & low7;
	uint64_t upper = (h + 0x3f3f3f3f3f3f3f3full) & ~(h + 0x2525252525252525ull) & ~x & high;

	return x | upper >> 2;
}

static void view_init(struct view *v, const struct rs_msg *m, uint32_t port, const char *scheme)
{
	v->m = m;
	v->path = m->buf + m->path.value_off;
	v->plen = m->path.value_len;
	v->q = memchr(v->path, '?', v->plen);
	v->nq = v->q ? (size_t)(v->q - v->path) : v->plen;
	v->port = port;
	v->scheme = scheme;
	v->head[0] = head8(v->path, v->plen);
	v->head[1] = v->head[0] & head_mask(v->nq);
	v->lower[0] = lower8(v->head[0]);
	v->lower[1] = lower8(v->head[1]);
}

/* Whether block b matches; uri_done: its match key has decided the uri. */
static bool block_matches(const struct rs_rmatch *b, const struct view *rq, bool uri_done)
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
	if ((b->fields & RS_RM_URI) && !uri_done &&
	    !sm_matches(&b->uri, path, b->uri.kind == RS_SM_PREFIX ? plen : nq, b->nocase))
		return false;
	if ((b->fields & RS_RM_METHOD) && !sm_matches(&b->method, m->buf + m->method_s.value_off,
						      m->method_s.value_len, false))
		return false;
	if ((b->fields & RS_RM_AUTHORITY) &&
	    !sm_matches(&b->authority, m->buf + m->authority.value_off, m->authority.value_len,
			false))
		return false;
	if ((b->fields & RS_RM_SCHEME) && !sm_matches(&b->scheme, scheme, strlen(scheme), false))
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
		if (block_matches(&r->matches[i], v, false)) {
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

/* The key of block b, of route `route` in its table. */
static void key_of(struct rs_match_key *k, const struct rs_rmatch *b, uint32_t route)
{
	const struct rs_smatch *u = &b->uri;
	bool nocase = b->nocase;

	memset(k, 0, sizeof *k);
	k->port = (uint16_t)b->port; /* 1-65535 when written: checked at load */
	k->route = route;
	k->block = b;
	switch (u->kind) {
	case RS_SM_PREFIX:
	case RS_SM_EXACT:
		k->kind = u->kind == RS_SM_PREFIX ? RS_MK_PREFIX : RS_MK_EXACT;
		k->flags = (nocase ? RS_MK_NOCASE : 0) | (u->len <= 8 ? RS_MK_URI_DONE : 0);
		k->lo = nocase ? lower8(head8(u->s, u->len)) : head8(u->s, u->len);
		k->hi = head_mask(u->len);
		k->len = (uint8_t)(u->len < 255 ? u->len : 255);
		break;
	case RS_SM_REGEX:
		/* sm_matches compares a regex's range case-sensitively, even
		 * under ignoreUriCase; so does the key. */
		if (u->min) {
			k->kind = RS_MK_RANGE;
			k->lo = head8(u->min, u->minlen);
			k->hi = head8(u->max, u->maxlen);
		}
		break;
	default:
		break;
	}
}

uint32_t rs_router__nkeys(const struct rs_route *r)
{
	return r->any ? 1 : r->nmatches;
}

void rs_router__keys_fill(struct rs_route_table *t)
{
	t->nkeys = 0;
	for (uint32_t i = 0; i < t->nroutes; i++) {
		const struct rs_route *r = t->routes[i].r;

		if (r->any)
			t->keys[t->nkeys++] = (struct rs_match_key){.route = i, .kind = RS_MK_ANY};
		for (uint32_t b = 0; !r->any && b < r->nmatches; b++)
			key_of(&t->keys[t->nkeys++], &r->matches[b], i);
	}
}

/* Whether a request may match the block of key k: the port and the uri's
 * first eight bytes and length (exact and regex see the path without its
 * query, a prefix the whole target, as in block_matches). */
static inline bool key_admits(const struct rs_match_key *k, const struct view *v)
{
	uint64_t x;

	if (k->port && k->port != v->port)
		return false;
	switch (k->kind) {
	case RS_MK_PREFIX:
		x = k->flags & RS_MK_NOCASE ? v->lower[0] : v->head[0];
		return v->plen >= k->len && ((x ^ k->lo) & k->hi) == 0;
	case RS_MK_EXACT:
		x = k->flags & RS_MK_NOCASE ? v->lower[1] : v->head[1];
		return (k->len == 255 ? v->nq >= 255 : v->nq == k->len) && ((x ^ k->lo) & k->hi) == 0;
	case RS_MK_RANGE:
		return v->head[1] >= k->lo && v->head[1] <= k->hi;
	default:
		return true;
	}
}

const struct rs_table_route *rs_router__first_match(const struct rs_route_table *t,
						    const struct rs_msg *m, uint32_t port,
						    const char *scheme,
						    const struct rs_rmatch **matched)
{
	struct view v;

	/* The keys are read in sequence: ask for their first lines at once,
	 * so that the misses overlap each other and the request's view
	 * rather than come one after another. */
	for (size_t off = 0; off < t->nkeys * sizeof *t->keys && off < 1024; off += 64)
		__builtin_prefetch((const char *)t->keys + off);
	*matched = NULL;
	view_init(&v, m, port, scheme);
	/* The keys are in route then block order, so the first block that
	 * matches is the first route's first matching block, as when each
	 * route is tried in turn (Istio: the first matching route wins). */
	for (uint32_t i = 0; i < t->nkeys; i++) {
		const struct rs_match_key *k = &t->keys[i];

		if (!key_admits(k, &v))
			continue;
		if (!k->block)
			return &t->routes[k->route];
		if (block_matches(k->block, &v, k->flags & RS_MK_URI_DONE)) {
			*matched = k->block;
			return &t->routes[k->route];
		}
	}
	return NULL;
}

uint32_t rs_route_pick(const struct rs_table_route *tr, uint64_t x)
{
	uint64_t at;

	if (tr->ndest <= 1 || !tr->total_weight)
		return 0;
	at = rs_uniform(x, tr->total_weight);
	for (uint32_t i = 0; i < tr->ndest; i++) {
		if (at < tr->weight[i])
			return i;
		at -= tr->weight[i];
	}
	return tr->ndest - 1;
}
