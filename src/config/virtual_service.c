/* VirtualService (networking.istio.io): the HTTP routes ringside matches
 * requests against. Field names and checks follow Istio's reference
 * (https://istio.io/latest/docs/reference/config/networking/virtual-service/)
 * and its validation (pkg/config/validation ValidateVirtualService), so a
 * resource that istiod accepts loads here too.
 *
 * tcp and tls routes are recognised but not implemented by the data path yet:
 * they are ignored with a warning naming the field (only their destinations
 * are read, for the checks across resources). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/config.h"
#include "ringside/regex.h"
#include "yaml.h"

static const char *const spec_fields[] = {"hosts", "gateways", "http", "tls",
                                          "tcp",   "exportTo", NULL};
static const char *const spec_not_implemented[] = {"tls", "tcp", "exportTo", NULL};

static const char *const http_fields[] = {
    "name",    "match",   "route", "redirect", "directResponse", "delegate",         "rewrite",
    "timeout", "retries", "fault", "mirror",   "mirrors",        "mirrorPercentage", "corsPolicy",
    "headers", NULL,
};
static const char *const http_not_implemented[] = {"delegate", "mirrors", "corsPolicy", NULL};

static const char *const match_fields[] = {
    "name",
    "uri",
    "scheme",
    "method",
    "authority",
    "headers",
    "port",
    "sourceLabels",
    "gateways",
    "queryParams",
    "ignoreUriCase",
    "withoutHeaders",
    "sourceNamespace",
    "statPrefix",
    NULL,
};
static const char *const match_not_implemented[] = {"statPrefix", NULL};

static const char *const string_match_fields[] = {"exact", "prefix", "regex", NULL};
static const char *const route_dest_fields[] = {"destination", "weight", "headers", NULL};
static const char *const destination_fields[] = {"host", "subset", "port", NULL};
static const char *const port_selector_fields[] = {"number", NULL};
static const char *const headers_fields[] = {"request", "response", NULL};
static const char *const header_ops_fields[] = {"set", "add", "remove", NULL};
static const char *const redirect_fields[] = {"uri",    "authority",    "port", "derivePort",
                                              "scheme", "redirectCode", NULL};
static const char *const redirect_not_implemented[] = {"derivePort", NULL};
static const char *const direct_response_fields[] = {"status", "body", NULL};
static const char *const body_fields[] = {"string", "bytes", NULL};
static const char *const rewrite_fields[] = {"uri", "authority", "uriRegexRewrite", NULL};
static const char *const rewrite_not_implemented[] = {"uriRegexRewrite", NULL};
static const char *const retries_fields[] = {"attempts",
                                             "perTryTimeout",
                                             "retryOn",
                                             "retryRemoteLocalities",
                                             "retryIgnorePreviousHosts",
                                             "backoff",
                                             NULL};
static const char *const retries_not_implemented[] = {"retryIgnorePreviousHosts", "backoff",
                                                       "retryRemoteLocalities", NULL};
static const char *const fault_fields[] = {"delay", "abort", NULL};
static const char *const delay_fields[] = {"fixedDelay", "percentage", "percent", NULL};
static const char *const delay_not_implemented[] = {"percent", NULL};
static const char *const abort_fields[] = {"httpStatus", "grpcStatus", "http2Error", "percentage",
                                           NULL};
static const char *const abort_not_implemented[] = {"grpcStatus", "http2Error", NULL};
static const char *const percent_fields[] = {"value", NULL};


#define HEADER_NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
/* Routing on a validated JWT's claims (RequestAuthentication). */
#define JWT_CLAIM_PREFIX "@request.auth.claims."

/* A mapping at path, checked against its fields; false (reported) otherwise. */
static bool open_map(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                     const char *const *fields, const char *const *not_implemented)
{
	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return false;
	rs_config__check_fields(ctx, n, path, fields, not_implemented);
	return true;
}

/* Percent: `{value: 12.5}`, a double in 0-100. */
static void read_percent(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                         const char *key, struct rs_opt_pct *out)
{
	const struct rs_ynode *n = rs_yaml__get(map, key), *v;
	char buf[RS_YPATH_MAX], sub[RS_YPATH_MAX];
	double d;
	char *end;

	if (!n)
		return;
	rs_yaml__path_key(buf, path, key);
	if (!open_map(ctx, n, buf, percent_fields, NULL))
		return;
	rs_yaml__path_key(sub, buf, "value");
	v = rs_yaml__get(n, "value");
	if (!v) {
		out->set = true;
		out->v = 0;
		return;
	}
	if (!rs_yaml__expect(ctx, v, sub, RS_YNODE_SCALAR))
		return;
	errno = 0;
	d = strtod(v->str, &end);
	if (errno || end == v->str || *end || !(d >= 0 && d <= 100)) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, v, sub, "'%s' is not a percentage in 0-100",
		                v->str);
		return;
	}
	out->set = true;
	out->v = d;
}

static void read_u32(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                     const char *key, uint32_t min, uint32_t max, uint32_t *out)
{
	const struct rs_ynode *v = rs_yaml__get(map, key);
	char buf[RS_YPATH_MAX];

	if (v)
		rs_yaml__u32(ctx, v, rs_yaml__path_key(buf, path, key), min, max, out);
}

static void read_bool(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                      const char *key, bool *out)
{
	const struct rs_ynode *v = rs_yaml__get(map, key);
	char buf[RS_YPATH_MAX];

	if (v)
		rs_yaml__bool(ctx, v, rs_yaml__path_key(buf, path, key), out);
}

/* Checks a regex with RE2, the engine Envoy compiles Istio's regex fields
 * with (safe_regex, google_re2), under the program-size limit Istio's
 * sidecars run with (include/ringside/regex.h), so a pattern loads here
 * exactly when a sidecar would take it. */
static void check_regex(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                        const char *re)
{
	struct rs_regex *r;
	char msg[256];

	r = rs_regex_compile(re, strlen(re), msg, sizeof msg);
	if (r)
		rs_regex_free(r);
	else if (errno == ENOMEM)
		rs_config__nomem(ctx);
	else
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, path, "invalid regex '%s': %s", re, msg);
}

/* StringMatch. With allow_present, `{}` means "present with any value" (for
 * headers and queryParams, as Istio documents). */
static void read_string_match(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                              bool allow_present, bool allow_prefix, struct rs_string_match *m)
{
	static const enum rs_string_match_kind kinds[] = {RS_SM_EXACT, RS_SM_PREFIX, RS_SM_REGEX};
	const struct rs_ynode *first = NULL;
	char buf[RS_YPATH_MAX];

	if (!open_map(ctx, n, path, string_match_fields, NULL))
		return;
	for (size_t i = 0; i < 3; i++) {
		const struct rs_ypair *p = rs_yaml__find(n, string_match_fields[i]);

		/* `exact:` with nothing is YAML's null: not written. */
		if (!p || rs_yaml__is_null(p->value))
			continue;
		rs_yaml__path_key(buf, path, string_match_fields[i]);
		if (first) {
			rs_yaml__report(
			    ctx, RS_DIAG_ERROR, p->key, path,
			    "only one of exact, prefix or regex may be set (also '%s' at %d:%d)",
			    first->str, first->line, first->col);
			return;
		}
		first = p->key;
		if (kinds[i] == RS_SM_PREFIX && !allow_prefix) {
			rs_yaml__report(
			    ctx, RS_DIAG_ERROR, p->key, buf,
			    "prefix matching is not supported here (Istio supports exact "
			    "and regex only)");
			return;
		}
		if (!rs_yaml__str(ctx, p->value, buf, &m->value))
			return;
		m->kind = kinds[i];
		if (kinds[i] == RS_SM_REGEX)
			check_regex(ctx, p->value, buf, m->value);
	}
	if (!first && allow_present)
		m->kind = RS_SM_PRESENT;
}

static void read_string_match_field(struct rs_yctx *ctx, const struct rs_ynode *map,
                                    const char *path, const char *key, struct rs_string_match *m)
{
	const struct rs_ynode *v = rs_yaml__get(map, key);
	char buf[RS_YPATH_MAX];

	if (v)
		read_string_match(ctx, v, rs_yaml__path_key(buf, path, key), false, true, m);
}

/* A map of name to StringMatch; header names are lower-cased. */
static void read_named_matches(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                               const char *key, bool lower, bool allow_prefix,
                               struct rs_named_match **out, size_t *count)
{
	const struct rs_ypair *p = rs_yaml__find(map, key);
	const struct rs_ynode *n;
	char buf[RS_YPATH_MAX], sub[RS_YPATH_MAX];

	if (!p || rs_yaml__is_null(p->value))
		return;
	n = p->value;
	rs_yaml__path_key(buf, path, key);
	if (!rs_yaml__expect(ctx, n, buf, RS_YNODE_MAPPING) || n->n == 0)
		return;
	rs_yaml__check_fields(ctx, n, buf, NULL);
	*out = calloc(n->n, sizeof **out);
	if (!*out) {
		rs_config__nomem(ctx);
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct rs_ypair *e = &n->pairs[i];
		struct rs_named_match *nm = &(*out)[*count];

		if (e->key->type != RS_YNODE_SCALAR)
			continue;
		rs_yaml__path_key(sub, buf, e->key->str);
		if (!rs_yaml__str(ctx, e->key, sub, &nm->name))
			continue;
		(*count)++;
		if (nm->name[0] == '\0') {
			rs_yaml__report(ctx, RS_DIAG_ERROR, e->key, buf,
			                "a name must not be empty");
			continue;
		}
		if (lower) {
			/* Istio (ValidateHTTPHeaderName): letters, digits, `-`
			 * and `_`, or a JWT claim for claim-based routing. */
			if (strncmp(nm->name, JWT_CLAIM_PREFIX, strlen(JWT_CLAIM_PREFIX)) != 0 &&
			    strspn(nm->name, HEADER_NAME_CHARS) != strlen(nm->name)) {
				rs_yaml__report(ctx, RS_DIAG_ERROR, e->key, sub,
				                "'%s' is not a valid header name", nm->name);
				continue;
			}
			for (char *c = nm->name; *c; c++)
				*c = (char)tolower((unsigned char)*c);
		}
		/* Istio refuses a null match; `{}` is how presence is written. */
		if (rs_yaml__is_null(e->value)) {
			rs_yaml__report(ctx, RS_DIAG_ERROR, e->key, sub,
			                "cannot be null (write {} to match any value)");
			continue;
		}
		read_string_match(ctx, e->value, sub, true, allow_prefix, &nm->match);
	}
}

static void read_destination(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                             const char *ns, struct rs_destination *d)
{
	const struct rs_ynode *v;
	char buf[RS_YPATH_MAX];

	if (!open_map(ctx, n, path, destination_fields, NULL))
		return;
	if (rs_yaml__str_field(ctx, n, path, "host", true, &d->host)) {
		if (d->host[0] == '\0')
			rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n, "host"),
			                rs_yaml__path_key(buf, path, "host"), "must not be empty");
		else
			d->host_fqdn = rs_config__resolve_host(ctx, d->host, ns);
	}
	if (rs_yaml__str_field(ctx, n, path, "subset", false, &d->subset)) {
		v = rs_yaml__get(n, "subset");
		d->subset_pos = (struct rs_pos){ctx->file, v->line, v->col};
	}
	v = rs_yaml__get(n, "port");
	if (v) {
		rs_yaml__path_key(buf, path, "port");
		if (open_map(ctx, v, buf, port_selector_fields, NULL))
			read_u32(ctx, v, buf, "number", 1, 65535, &d->port);
	}
}

static void read_kv_list(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                         const char *key, struct rs_kv **out, size_t *count)
{
	const struct rs_ynode *v = rs_yaml__get(map, key);
	char buf[RS_YPATH_MAX];

	if (v)
		rs_yaml__str_map(ctx, v, rs_yaml__path_key(buf, path, key), out, count);
}

static void read_header_ops(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                            const char *key, struct rs_header_ops *ops)
{
	const struct rs_ynode *n = rs_yaml__get(map, key), *v;
	char buf[RS_YPATH_MAX], sub[RS_YPATH_MAX];

	if (!n)
		return;
	rs_yaml__path_key(buf, path, key);
	if (!open_map(ctx, n, buf, header_ops_fields, NULL))
		return;
	read_kv_list(ctx, n, buf, "set", &ops->set, &ops->nset);
	read_kv_list(ctx, n, buf, "add", &ops->add, &ops->nadd);
	v = rs_yaml__get(n, "remove");
	if (v)
		rs_yaml__str_list(ctx, v, rs_yaml__path_key(sub, buf, "remove"), &ops->remove,
		                  &ops->nremove);
}

static void read_headers(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                         struct rs_header_rules *h)
{
	const struct rs_ynode *n = rs_yaml__get(map, "headers");
	char buf[RS_YPATH_MAX];

	if (!n)
		return;
	rs_yaml__path_key(buf, path, "headers");
	if (!open_map(ctx, n, buf, headers_fields, NULL))
		return;
	read_header_ops(ctx, n, buf, "request", &h->request);
	read_header_ops(ctx, n, buf, "response", &h->response);
}

static void read_match(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                       struct rs_vs_match *m)
{
	const struct rs_ynode *v;
	char buf[RS_YPATH_MAX];

	if (!open_map(ctx, n, path, match_fields, match_not_implemented))
		return;
	m->pos = (struct rs_pos){ctx->file, n->line, n->col};
	rs_yaml__str_field(ctx, n, path, "name", false, &m->name);
	read_string_match_field(ctx, n, path, "uri", &m->uri);
	read_string_match_field(ctx, n, path, "scheme", &m->scheme);
	read_string_match_field(ctx, n, path, "method", &m->method);
	read_string_match_field(ctx, n, path, "authority", &m->authority);
	read_named_matches(ctx, n, path, "headers", true, true, &m->headers, &m->nheaders);
	read_named_matches(ctx, n, path, "withoutHeaders", true, true, &m->without_headers,
	                   &m->nwithout_headers);
	read_named_matches(ctx, n, path, "queryParams", false, false, &m->query_params,
	                   &m->nquery_params);
	read_u32(ctx, n, path, "port", 1, 65535, &m->port);
	read_kv_list(ctx, n, path, "sourceLabels", &m->source_labels, &m->nsource_labels);
	v = rs_yaml__get(n, "gateways");
	if (v)
		rs_yaml__str_list(ctx, v, rs_yaml__path_key(buf, path, "gateways"), &m->gateways,
		                  &m->ngateways);
	read_bool(ctx, n, path, "ignoreUriCase", &m->ignore_uri_case);
	rs_yaml__str_field(ctx, n, path, "sourceNamespace", false, &m->source_namespace);
}

/* Weights: Istio's rule (validateHTTPRoute) is that several destinations
 * share 100; a lone destination without a weight takes all of it. */
static void read_route(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                       const char *ns, struct rs_vs_http_route *h)
{
	char buf[RS_YPATH_MAX], sub[RS_YPATH_MAX];
	size_t errors = ctx->diags->errors;
	uint64_t sum = 0;

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_SEQUENCE) || n->n == 0)
		return;
	h->route = rs_config__alloc_items(ctx, n->n, sizeof *h->route);
	if (!h->route)
		return;
	h->nroute = n->n;
	for (size_t i = 0; i < n->n; i++) {
		const struct rs_ynode *item = n->items[i], *d, *w;
		struct rs_vs_route_dest *rd = &h->route[i];

		rs_yaml__path_index(buf, path, i);
		if (!open_map(ctx, item, buf, route_dest_fields, NULL))
			continue;
		rd->pos = (struct rs_pos){ctx->file, item->line, item->col};
		d = rs_yaml__get(item, "destination");
		if (d)
			read_destination(ctx, d, rs_yaml__path_key(sub, buf, "destination"), ns,
			                 &rd->dest);
		else
			rs_yaml__report(ctx, RS_DIAG_ERROR, item,
			                rs_yaml__path_key(sub, buf, "destination"),
			                "required field is missing");
		w = rs_yaml__get(item, "weight");
		if (w && rs_yaml__u32(ctx, w, rs_yaml__path_key(sub, buf, "weight"), 0, 100,
		                      &rd->weight))
			rd->weight_set = true;
		sum += rd->weight;
		read_headers(ctx, item, buf, &rd->headers);
	}
	/* A destination already reported would only make the sum wrong too. */
	if (ctx->diags->errors != errors || ctx->nomem)
		return;
	if (n->n == 1 && !h->route[0].weight_set) {
		h->route[0].weight = 100;
		return;
	}
	if (sum != 100) {
		/* At the first destination that has no weight, else at the last one. */
		size_t at = n->n - 1;
		const struct rs_ynode *at_node;

		for (size_t i = 0; i < n->n; i++) {
			if (!h->route[i].weight_set) {
				at = i;
				break;
			}
		}
		at_node =
		    h->route[at].weight_set ? rs_yaml__get(n->items[at], "weight") : n->items[at];
		rs_yaml__path_index(buf, path, at);
		rs_yaml__path_key(sub, buf, "weight");
		if (n->n == 1)
			rs_yaml__report(ctx, RS_DIAG_ERROR, at_node, sub,
			                "a lone destination's weight must be 100 or left out, "
			                "not %" PRIu64,
			                sum);
		else
			rs_yaml__report(ctx, RS_DIAG_ERROR, at_node, sub,
			                "the weights of %zu destinations add up to %" PRIu64
			                ", not 100",
			                n->n, sum);
	}
}

static void read_redirect(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                          struct rs_vs_redirect *r)
{
	if (!open_map(ctx, n, path, redirect_fields, redirect_not_implemented))
		return;
	r->set = true;
	r->redirect_code = 301;
	rs_yaml__str_field(ctx, n, path, "uri", false, &r->uri);
	rs_yaml__str_field(ctx, n, path, "authority", false, &r->authority);
	read_u32(ctx, n, path, "port", 1, 65535, &r->port);
	rs_yaml__str_field(ctx, n, path, "scheme", false, &r->scheme);
	read_u32(ctx, n, path, "redirectCode", 300, 399, &r->redirect_code);
}

static void read_direct_response(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                                 struct rs_vs_direct_response *dr)
{
	const struct rs_ynode *b;
	char buf[RS_YPATH_MAX];

	if (!open_map(ctx, n, path, direct_response_fields, NULL))
		return;
	dr->set = true;
	if (rs_yaml__get(n, "status"))
		read_u32(ctx, n, path, "status", 200, 599, &dr->status);
	else
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, rs_yaml__path_key(buf, path, "status"),
		                "required field is missing");
	b = rs_yaml__get(n, "body");
	if (!b)
		return;
	rs_yaml__path_key(buf, path, "body");
	if (!open_map(ctx, b, buf, body_fields, NULL))
		return;
	if (rs_yaml__get(b, "bytes"))
		rs_yaml__report(ctx, RS_DIAG_WARNING, rs_yaml__get(b, "bytes"), NULL,
		                "field '%s.bytes' is not implemented yet; ignored", buf);
	if (rs_yaml__str_field(ctx, b, buf, "string", false, &dr->body))
		dr->body_len = strlen(dr->body);
}

static void read_rewrite(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                         struct rs_vs_rewrite *rw)
{
	if (!open_map(ctx, n, path, rewrite_fields, rewrite_not_implemented))
		return;
	rw->set = true;
	rs_yaml__str_field(ctx, n, path, "uri", false, &rw->uri);
	rs_yaml__str_field(ctx, n, path, "authority", false, &rw->authority);
}

static void read_retries(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                         struct rs_vs_retries *r)
{
	if (!open_map(ctx, n, path, retries_fields, retries_not_implemented))
		return;
	r->set = true;
	read_u32(ctx, n, path, "attempts", 0, INT32_MAX, &r->attempts);
	rs_config__read_duration(ctx, n, path, "perTryTimeout", &r->per_try_timeout);
	rs_yaml__str_field(ctx, n, path, "retryOn", false, &r->retry_on);
	read_bool(ctx, n, path, "retryRemoteLocalities", &r->retry_remote_localities);
}

static void read_fault(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                       struct rs_vs_fault *f)
{
	const struct rs_ynode *v;
	char buf[RS_YPATH_MAX], sub[RS_YPATH_MAX];

	if (!open_map(ctx, n, path, fault_fields, NULL))
		return;
	v = rs_yaml__get(n, "delay");
	rs_yaml__path_key(buf, path, "delay");
	if (v && open_map(ctx, v, buf, delay_fields, delay_not_implemented)) {
		struct rs_opt_dur d = {0};

		rs_config__read_duration(ctx, v, buf, "fixedDelay", &d);
		if (!rs_yaml__get(v, "fixedDelay"))
			rs_yaml__report(ctx, RS_DIAG_ERROR, v,
			                rs_yaml__path_key(sub, buf, "fixedDelay"),
			                "required field is missing");
		f->delay_set = d.set;
		f->fixed_delay_ns = d.ns;
		read_percent(ctx, v, buf, "percentage", &f->delay_percentage);
	}
	v = rs_yaml__get(n, "abort");
	rs_yaml__path_key(buf, path, "abort");
	if (v && open_map(ctx, v, buf, abort_fields, abort_not_implemented)) {
		if (rs_yaml__get(v, "httpStatus")) {
			if (rs_yaml__u32(ctx, rs_yaml__get(v, "httpStatus"),
			                 rs_yaml__path_key(sub, buf, "httpStatus"), 200, 599,
			                 &f->abort_http_status))
				f->abort_set = true;
		} else if (!rs_yaml__get(v, "grpcStatus") && !rs_yaml__get(v, "http2Error")) {
			rs_yaml__report(ctx, RS_DIAG_ERROR, v,
			                rs_yaml__path_key(sub, buf, "httpStatus"),
			                "required field is missing");
		}
		read_percent(ctx, v, buf, "percentage", &f->abort_percentage);
	}
}

static void read_http_route(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                            const char *ns, struct rs_vs_http_route *h)
{
	const struct rs_ynode *v;
	char buf[RS_YPATH_MAX], sub[RS_YPATH_MAX];

	if (!open_map(ctx, n, path, http_fields, http_not_implemented))
		return;
	h->pos = (struct rs_pos){ctx->file, n->line, n->col};
	rs_yaml__str_field(ctx, n, path, "name", false, &h->name);

	v = rs_yaml__get(n, "match");
	rs_yaml__path_key(buf, path, "match");
	if (v && rs_yaml__expect(ctx, v, buf, RS_YNODE_SEQUENCE) && v->n) {
		h->match = rs_config__alloc_items(ctx, v->n, sizeof *h->match);
		if (!h->match)
			return;
		h->nmatch = v->n;
		for (size_t i = 0; i < v->n; i++)
			read_match(ctx, v->items[i], rs_yaml__path_index(sub, buf, i),
			           &h->match[i]);
	}

	v = rs_yaml__get(n, "route");
	if (v)
		read_route(ctx, v, rs_yaml__path_key(buf, path, "route"), ns, h);
	v = rs_yaml__get(n, "redirect");
	if (v)
		read_redirect(ctx, v, rs_yaml__path_key(buf, path, "redirect"), &h->redirect);
	v = rs_yaml__get(n, "directResponse");
	if (v)
		read_direct_response(ctx, v, rs_yaml__path_key(buf, path, "directResponse"),
		                     &h->direct_response);
	/* Istio: exactly one action; a route, a redirect or a direct response
	 * (delegate is the fourth, not implemented yet). */
	if ((h->nroute > 0) + h->redirect.set + h->direct_response.set > 1)
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, path,
		                "only one of route, redirect or directResponse may be set");
	else if (!h->nroute && !h->redirect.set && !h->direct_response.set &&
	         !rs_yaml__get(n, "delegate"))
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, path,
		                "one of route, redirect or directResponse is required");

	v = rs_yaml__get(n, "rewrite");
	if (v) {
		read_rewrite(ctx, v, rs_yaml__path_key(buf, path, "rewrite"), &h->rewrite);
		if (h->redirect.set)
			rs_yaml__report(ctx, RS_DIAG_ERROR, v, buf,
			                "cannot be used together with redirect");
	}
	rs_config__read_duration(ctx, n, path, "timeout", &h->timeout);
	v = rs_yaml__get(n, "retries");
	if (v)
		read_retries(ctx, v, rs_yaml__path_key(buf, path, "retries"), &h->retries);
	v = rs_yaml__get(n, "fault");
	if (v)
		read_fault(ctx, v, rs_yaml__path_key(buf, path, "fault"), &h->fault);
	v = rs_yaml__get(n, "mirror");
	if (v) {
		read_destination(ctx, v, rs_yaml__path_key(buf, path, "mirror"), ns, &h->mirror);
		h->mirror_set = true;
	}
	read_percent(ctx, n, path, "mirrorPercentage", &h->mirror_percentage);
	read_headers(ctx, n, path, &h->headers);
	h->has_cors_policy = rs_yaml__get(n, "corsPolicy") != NULL;
}

static void parse_hosts(struct rs_yctx *ctx, const struct rs_ynode *spec, const char *ns,
                        struct rs_virtual_service *vs)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "hosts");
	char path[RS_YPATH_MAX];

	if (!n) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, spec, "spec.hosts",
		                "required field is missing");
		return;
	}
	if (!rs_yaml__str_list(ctx, n, "spec.hosts", &vs->hosts, &vs->nhosts))
		return;
	if (vs->nhosts == 0) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, "spec.hosts", "must list at least one host");
		return;
	}
	vs->hosts_fqdn = rs_config__alloc_items(ctx, vs->nhosts, sizeof *vs->hosts_fqdn);
	if (!vs->hosts_fqdn)
		return;
	for (size_t i = 0; i < vs->nhosts; i++) {
		rs_yaml__path_index(path, "spec.hosts", i);
		if (vs->hosts[i][0] == '\0')
			rs_yaml__report(ctx, RS_DIAG_ERROR, n->items[i], path, "must not be empty");
		else
			vs->hosts_fqdn[i] = rs_config__resolve_host(ctx, vs->hosts[i], ns);
	}
}

static void parse_http(struct rs_yctx *ctx, const struct rs_ynode *spec, const char *ns,
                       struct rs_virtual_service *vs)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "http");
	char path[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, "spec.http", RS_YNODE_SEQUENCE) || n->n == 0)
		return;
	vs->http = rs_config__alloc_items(ctx, n->n, sizeof *vs->http);
	if (!vs->http)
		return;
	vs->nhttp = n->n;
	for (size_t i = 0; i < n->n; i++)
		read_http_route(ctx, n->items[i], rs_yaml__path_index(path, "spec.http", i), ns,
		                &vs->http[i]);
}

/* spec.tcp[] or spec.tls[]: ignored by the data path (a warning says so),
 * but their destinations are read as Istio validates them (a host is
 * required), so that a subset they name is checked like an http route's. */
static void parse_l4(struct rs_yctx *ctx, const struct rs_ynode *spec, const char *key,
                     const char *ns, struct rs_vs_l4_route **out, size_t *count)
{
	const struct rs_ynode *n = rs_yaml__get(spec, key);
	char top[RS_YPATH_MAX], path[RS_YPATH_MAX], buf[RS_YPATH_MAX], sub[RS_YPATH_MAX],
	    dest[RS_YPATH_MAX];

	rs_yaml__path_key(top, "spec", key);
	if (!n || !rs_yaml__expect(ctx, n, top, RS_YNODE_SEQUENCE) || n->n == 0)
		return;
	*out = rs_config__alloc_items(ctx, n->n, sizeof **out);
	if (!*out)
		return;
	*count = n->n;
	for (size_t i = 0; i < n->n; i++) {
		struct rs_vs_l4_route *l4 = &(*out)[i];
		const struct rs_ynode *route;

		rs_yaml__path_index(path, top, i);
		if (!rs_yaml__expect(ctx, n->items[i], path, RS_YNODE_MAPPING))
			continue;
		l4->pos = (struct rs_pos){ctx->file, n->items[i]->line, n->items[i]->col};
		route = rs_yaml__get(n->items[i], "route");
		rs_yaml__path_key(buf, path, "route");
		if (!route || !rs_yaml__expect(ctx, route, buf, RS_YNODE_SEQUENCE) || route->n == 0)
			continue;
		l4->route = rs_config__alloc_items(ctx, route->n, sizeof *l4->route);
		if (!l4->route)
			return;
		l4->nroute = route->n;
		for (size_t j = 0; j < route->n; j++) {
			const struct rs_ynode *item = route->items[j], *d;

			rs_yaml__path_index(sub, buf, j);
			if (!rs_yaml__expect(ctx, item, sub, RS_YNODE_MAPPING))
				continue;
			l4->route[j].pos = (struct rs_pos){ctx->file, item->line, item->col};
			d = rs_yaml__get(item, "destination");
			if (d)
				read_destination(ctx, d, rs_yaml__path_key(dest, sub, "destination"),
				                 ns, &l4->route[j].dest);
			else
				rs_yaml__report(ctx, RS_DIAG_ERROR, item,
				                rs_yaml__path_key(dest, sub, "destination"),
				                "required field is missing");
		}
	}
}

static void string_match_clear(struct rs_string_match *m)
{
	free(m->value);
}

static void named_matches_free(struct rs_named_match *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		string_match_clear(&v[i].match);
	}
	free(v);
}

static void destination_clear(struct rs_destination *d)
{
	free(d->host);
	free(d->host_fqdn);
	free(d->subset);
}

static void header_ops_clear(struct rs_header_ops *o)
{
	rs_config__kvs_free(o->set, o->nset);
	rs_config__kvs_free(o->add, o->nadd);
	rs_config__strv_free(o->remove, o->nremove);
}

static void header_rules_clear(struct rs_header_rules *h)
{
	header_ops_clear(&h->request);
	header_ops_clear(&h->response);
}

static void match_clear(struct rs_vs_match *m)
{
	free(m->name);
	string_match_clear(&m->uri);
	string_match_clear(&m->scheme);
	string_match_clear(&m->method);
	string_match_clear(&m->authority);
	named_matches_free(m->headers, m->nheaders);
	named_matches_free(m->without_headers, m->nwithout_headers);
	named_matches_free(m->query_params, m->nquery_params);
	rs_config__kvs_free(m->source_labels, m->nsource_labels);
	rs_config__strv_free(m->gateways, m->ngateways);
	free(m->source_namespace);
}

static void http_route_clear(struct rs_vs_http_route *h)
{
	free(h->name);
	for (size_t i = 0; i < h->nmatch; i++)
		match_clear(&h->match[i]);
	free(h->match);
	for (size_t i = 0; i < h->nroute; i++) {
		destination_clear(&h->route[i].dest);
		header_rules_clear(&h->route[i].headers);
	}
	free(h->route);
	free(h->redirect.uri);
	free(h->redirect.authority);
	free(h->redirect.scheme);
	free(h->direct_response.body);
	free(h->rewrite.uri);
	free(h->rewrite.authority);
	free(h->retries.retry_on);
	destination_clear(&h->mirror);
	header_rules_clear(&h->headers);
}

static void l4_routes_free(struct rs_vs_l4_route *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < v[i].nroute; j++)
			destination_clear(&v[i].route[j].dest);
		free(v[i].route);
	}
	free(v);
}

static void virtual_service_clear(struct rs_virtual_service *vs)
{
	free(vs->name);
	free(vs->ns);
	rs_config__strv_free(vs->hosts, vs->nhosts);
	if (vs->hosts_fqdn)
		rs_config__strv_free(vs->hosts_fqdn, vs->nhosts);
	rs_config__strv_free(vs->gateways, vs->ngateways);
	rs_config__strv_free(vs->export_to, vs->nexport_to);
	for (size_t i = 0; i < vs->nhttp; i++)
		http_route_clear(&vs->http[i]);
	free(vs->http);
	l4_routes_free(vs->tcp, vs->ntcp);
	l4_routes_free(vs->tls, vs->ntls);
	memset(vs, 0, sizeof *vs);
}

int rs_config__virtual_service_load(struct rs_yctx *ctx, const struct rs_ynode *root,
                                    const char *name, const char *ns, struct rs_config *cfg)
{
	struct rs_virtual_service vs = {0};
	const struct rs_config__head *prev =
	    rs_config__find(cfg->virtual_services, cfg->n_virtual_services,
	                    sizeof *cfg->virtual_services, NULL, ns, name);
	const struct rs_ynode *spec, *v;
	int r = 0;

	/* As for ServiceEntry: the first of two same-named resources wins. */
	if (!rs_config__begin(ctx, root, prev, name, ns, &vs.name, &vs.ns, &vs.pos))
		goto cleanup;

	spec = rs_config__spec(ctx, root);
	if (!spec)
		goto cleanup;
	rs_config__check_fields(ctx, spec, "spec", spec_fields, spec_not_implemented);

	parse_hosts(ctx, spec, ns, &vs);
	v = rs_yaml__get(spec, "gateways");
	if (v)
		rs_yaml__str_list(ctx, v, "spec.gateways", &vs.gateways, &vs.ngateways);
	v = rs_yaml__get(spec, "exportTo");
	if (v)
		rs_yaml__str_list(ctx, v, "spec.exportTo", &vs.export_to, &vs.nexport_to);
	parse_http(ctx, spec, ns, &vs);
	vs.has_tcp = rs_yaml__get(spec, "tcp") != NULL;
	vs.has_tls = rs_yaml__get(spec, "tls") != NULL;
	parse_l4(ctx, spec, "tcp", ns, &vs.tcp, &vs.ntcp);
	parse_l4(ctx, spec, "tls", ns, &vs.tls, &vs.ntls);
	/* Istio (ValidateVirtualService): a VirtualService must route something. */
	if (!vs.nhttp && !vs.has_tcp && !vs.has_tls)
		rs_yaml__report(ctx, RS_DIAG_ERROR, spec, "spec",
		                "http, tcp or tls must be provided");

	if (!ctx->rejected)
		r = rs_config__grow(&cfg->virtual_services, &cfg->n_virtual_services, &vs,
		                    sizeof vs);
cleanup:
	if (ctx->nomem)
		r = -ENOMEM;
	virtual_service_clear(&vs);
	return r;
}

void rs_config__virtual_service_free_all(struct rs_config *cfg)
{
	for (size_t i = 0; i < cfg->n_virtual_services; i++)
		virtual_service_clear(&cfg->virtual_services[i]);
	free(cfg->virtual_services);
	cfg->virtual_services = NULL;
	cfg->n_virtual_services = 0;
}
