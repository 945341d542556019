/* RequestAuthentication (security.istio.io): which JWTs a workload accepts
 * and where it finds them. Fields and checks follow Istio's reference
 * (https://istio.io/latest/docs/reference/config/security/request_authentication/)
 * and its validation (pkg/config/validation ValidateRequestAuthentication). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-security-t.h"
#include "ringside/config.h"
#include "yaml.h"

static const char *const spec_fields[] = {"selector", "targetRef", "targetRefs", "jwtRules", NULL};
static const char *const rule_fields[] = {
	"issuer", "audiences", "jwksUri", "jwks", "fromHeaders", "fromParams", "fromCookies",
	"outputPayloadToHeader", "forwardOriginalToken", "outputClaimToHeaders", "timeout", NULL,
};
static const char *const header_fields[] = {"name", "prefix", NULL};
static const char *const claim_fields[] = {"header", "claim", NULL};

static bool nomem(struct rs_yctx *ctx)
{
	ctx->nomem = true;
	ctx->rejected = true;
	return false;
}

/* calloc for n parsed items; NULL (nothing to free) when n is 0 or on failure. */
static void *alloc_items(struct rs_yctx *ctx, size_t n, size_t size)
{
	void *v;

	if (n == 0)
		return NULL;
	v = calloc(n, size);
	if (!v)
		nomem(ctx);
	return v;
}

static void strs_clear(struct rs_strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static void kvs_free(struct rs_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

/* map[key] as a list of strings, when written. */
static void parse_strs(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
		       const char *key, struct rs_strs *out)
{
	const struct rs_ynode *n = rs_yaml__get(map, key);
	char sub[RS_YPATH_MAX];

	if (n)
		rs_yaml__str_list(ctx, n, rs_yaml__path_key(sub, path, key), &out->v, &out->n);
}

/* map[key] as a boolean, when written; false when absent. */
static void parse_bool(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
		       const char *key, bool *out)
{
	const struct rs_ynode *n = rs_yaml__get(map, key);
	char sub[RS_YPATH_MAX];

	if (n)
		rs_yaml__bool(ctx, n, rs_yaml__path_key(sub, path, key), out);
}

static const char *const selector_fields[] = {"matchLabels", NULL};

/* spec.selector, as Istio's validateWorkloadSelector checks it. */
static void parse_selector(struct rs_yctx *ctx, const struct rs_ynode *spec,
			   struct rs_selector *sel)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "selector"), *ml;
	char path[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, "spec.selector", RS_YNODE_MAPPING))
		return;
	sel->set = true;
	rs_yaml__check_fields(ctx, n, "spec.selector", selector_fields);
	ml = rs_yaml__get(n, "matchLabels");
	if (ml && !rs_yaml__str_map(ctx, ml, "spec.selector.matchLabels", &sel->labels,
				    &sel->nlabels))
		return;
	/* Istio reads a selector without labels as no selector: every
	 * workload of the namespace. Likely not what was meant, so say so. */
	if (sel->nlabels == 0) {
		rs_yaml__report(ctx, RS_DIAG_WARNING, ml ? ml : n,
				ml ? "spec.selector.matchLabels" : "spec.selector",
				"no labels: applies to every workload of the namespace, as Istio "
				"does without a selector");
		return;
	}
	for (size_t i = 0; i < sel->nlabels; i++) {
		rs_yaml__path_key(path, "spec.selector.matchLabels", sel->labels[i].key);
		if (sel->labels[i].key[0] == '\0')
			rs_yaml__report(ctx, RS_DIAG_ERROR, ml->pairs[i].key, path,
					"a label name must not be empty");
		else if (strchr(sel->labels[i].key, '*') || strchr(sel->labels[i].value, '*'))
			rs_yaml__report(ctx, RS_DIAG_ERROR, ml->pairs[i].value, path,
					"wildcards are not supported in a selector");
	}
}

static const char *const target_ref_fields[] = {"group", "kind", "name", "namespace", NULL};

static void target_refs_free(struct rs_target_ref *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].group);
		free(t[i].kind);
		free(t[i].name);
		free(t[i].ns);
	}
	free(t);
}

static void parse_target_ref(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			     struct rs_target_ref *t)
{
	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, path, target_ref_fields);
	rs_yaml__str_field(ctx, n, path, "group", false, &t->group);
	rs_yaml__str_field(ctx, n, path, "kind", true, &t->kind);
	rs_yaml__str_field(ctx, n, path, "name", true, &t->name);
	rs_yaml__str_field(ctx, n, path, "namespace", false, &t->ns);
}

/* spec.targetRef and spec.targetRefs[] (Gateway API attachment, for
 * waypoints and gateways): parsed so the resource loads, but a sidecar is
 * selected by labels, so the data path does not use them yet. */
static void parse_target_refs(struct rs_yctx *ctx, const struct rs_ynode *spec,
			      struct rs_target_ref **out, size_t *count)
{
	const struct rs_ynode *one = rs_yaml__get(spec, "targetRef");
	const struct rs_ynode *many = rs_yaml__get(spec, "targetRefs");
	size_t total = 0;
	char path[RS_YPATH_MAX];

	if (one)
		total++;
	if (many && rs_yaml__expect(ctx, many, "spec.targetRefs", RS_YNODE_SEQUENCE))
		total += many->n;
	else
		many = NULL;
	if (total == 0)
		return;
	*out = alloc_items(ctx, total, sizeof **out);
	if (!*out)
		return;
	*count = total;
	if (one) {
		parse_target_ref(ctx, one, "spec.targetRef", &(*out)[0]);
		rs_yaml__report(ctx, RS_DIAG_WARNING, one, NULL,
				"field 'spec.targetRef' is not implemented yet; ignored");
	}
	if (many) {
		for (size_t i = 0; i < many->n; i++)
			parse_target_ref(ctx, many->items[i],
					 rs_yaml__path_index(path, "spec.targetRefs", i),
					 &(*out)[(one ? 1 : 0) + i]);
		rs_yaml__report(ctx, RS_DIAG_WARNING, many, NULL,
				"field 'spec.targetRefs' is not implemented yet; ignored");
	}
	if (rs_yaml__get(spec, "selector") && (one || many))
		rs_yaml__report(ctx, RS_DIAG_ERROR, one ? one : many,
				one ? "spec.targetRef" : "spec.targetRefs",
				"only one of selector or targetRef(s) can be set");
}

static void rule_clear(struct rs_jwt_rule *r)
{
	free(r->issuer);
	strs_clear(&r->audiences);
	free(r->jwks_uri);
	free(r->jwks);
	for (size_t i = 0; i < r->nfrom_headers; i++) {
		free(r->from_headers[i].name);
		free(r->from_headers[i].prefix);
	}
	free(r->from_headers);
	strs_clear(&r->from_params);
	strs_clear(&r->from_cookies);
	free(r->output_payload_to_header);
	for (size_t i = 0; i < r->noutput_claim_to_headers; i++) {
		free(r->output_claim_to_headers[i].header);
		free(r->output_claim_to_headers[i].claim);
	}
	free(r->output_claim_to_headers);
	free(r->timeout);
}

static void clear(struct rs_request_authentication *ra)
{
	free(ra->name);
	free(ra->ns);
	kvs_free(ra->selector.labels, ra->selector.nlabels);
	target_refs_free(ra->target_refs, ra->ntarget_refs);
	for (size_t i = 0; i < ra->njwt_rules; i++)
		rule_clear(&ra->jwt_rules[i]);
	free(ra->jwt_rules);
	memset(ra, 0, sizeof *ra);
}

/* RFC 7230 token characters: what an HTTP header name may hold. */
static bool is_header_name(const char *s)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	if (!s[0])
		return false;
	for (const char *p = s; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(tchar, *p)))
			return false;
	}
	return true;
}

/* Istio's ValidateJwksURI: an http or https URL with a host. */
static bool is_jwks_uri(const char *s)
{
	const char *host;

	if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else
		return false;
	return host[0] && host[0] != '/' && host[0] != ':' && !strpbrk(s, " \t\r\n");
}

/* Reads one item of a list into out. */
typedef void (*item_fn)(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			void *out);

/* fromHeaders[] or outputClaimToHeaders[]: a sequence of mappings read by
 * one(), each of size bytes. */
static void parse_items(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			const char *key, size_t size, void **out, size_t *count,
			item_fn one)
{
	const struct rs_ynode *n = rs_yaml__get(map, key);
	char sub[RS_YPATH_MAX], item[RS_YPATH_MAX];

	if (!n)
		return;
	rs_yaml__path_key(sub, path, key);
	if (!rs_yaml__expect(ctx, n, sub, RS_YNODE_SEQUENCE))
		return;
	*out = alloc_items(ctx, n->n, size);
	if (!*out)
		return;
	*count = n->n;
	for (size_t i = 0; i < n->n; i++)
		one(ctx, n->items[i], rs_yaml__path_index(item, sub, i), (char *)*out + i * size);
}

static void parse_header(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			 void *out)
{
	struct rs_jwt_header *h = out;
	char sub[RS_YPATH_MAX];

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, path, header_fields);
	if (rs_yaml__str_field(ctx, n, path, "name", true, &h->name) && !is_header_name(h->name))
		rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n, "name"),
				rs_yaml__path_key(sub, path, "name"),
				"'%s' is not a valid HTTP header name", h->name);
	rs_yaml__str_field(ctx, n, path, "prefix", false, &h->prefix);
}

static void parse_claim(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			void *out)
{
	struct rs_jwt_claim_header *c = out;
	char sub[RS_YPATH_MAX];

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, path, claim_fields);
	if (rs_yaml__str_field(ctx, n, path, "header", true, &c->header) &&
	    !is_header_name(c->header))
		rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n, "header"),
				rs_yaml__path_key(sub, path, "header"),
				"'%s' is not a valid HTTP header name", c->header);
	if (rs_yaml__str_field(ctx, n, path, "claim", true, &c->claim) && !c->claim[0])
		rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n, "claim"),
				rs_yaml__path_key(sub, path, "claim"), "must not be empty");
}

static void parse_rule(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		       struct rs_jwt_rule *r)
{
	char sub[RS_YPATH_MAX];
	const struct rs_ynode *v;

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, path, rule_fields);
	/* The issuer is what a token's `iss` is matched against, and the
	 * first half of the request principal. */
	if (rs_yaml__str_field(ctx, n, path, "issuer", true, &r->issuer) && !r->issuer[0])
		rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n, "issuer"),
				rs_yaml__path_key(sub, path, "issuer"), "must not be empty");
	parse_strs(ctx, n, path, "audiences", &r->audiences);
	if (rs_yaml__str_field(ctx, n, path, "jwksUri", false, &r->jwks_uri) &&
	    !is_jwks_uri(r->jwks_uri))
		rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n, "jwksUri"),
				rs_yaml__path_key(sub, path, "jwksUri"),
				"'%s' is not an http:// or https:// URL", r->jwks_uri);
	rs_yaml__str_field(ctx, n, path, "jwks", false, &r->jwks);
	if (r->jwks && r->jwks_uri)
		rs_yaml__report(ctx, RS_DIAG_WARNING, rs_yaml__get(n, "jwksUri"),
				rs_yaml__path_key(sub, path, "jwksUri"),
				"ignored: jwks is set too, and the inline jwks wins, as in Istio");
	parse_items(ctx, n, path, "fromHeaders", sizeof *r->from_headers,
		    (void **)&r->from_headers, &r->nfrom_headers, parse_header);
	parse_strs(ctx, n, path, "fromParams", &r->from_params);
	parse_strs(ctx, n, path, "fromCookies", &r->from_cookies);
	if (rs_yaml__str_field(ctx, n, path, "outputPayloadToHeader", false,
			       &r->output_payload_to_header) &&
	    !is_header_name(r->output_payload_to_header))
		rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n, "outputPayloadToHeader"),
				rs_yaml__path_key(sub, path, "outputPayloadToHeader"),
				"'%s' is not a valid HTTP header name",
				r->output_payload_to_header);
	parse_bool(ctx, n, path, "forwardOriginalToken", &r->forward_original_token);
	parse_items(ctx, n, path, "outputClaimToHeaders", sizeof *r->output_claim_to_headers,
		    (void **)&r->output_claim_to_headers, &r->noutput_claim_to_headers,
		    parse_claim);
	v = rs_yaml__get(n, "timeout");
	if (v)
		rs_yaml__str(ctx, v, rs_yaml__path_key(sub, path, "timeout"), &r->timeout);
}

static void parse_rules(struct rs_yctx *ctx, const struct rs_ynode *spec,
			struct rs_request_authentication *ra)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "jwtRules");
	char path[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, "spec.jwtRules", RS_YNODE_SEQUENCE))
		return;
	ra->jwt_rules = alloc_items(ctx, n->n, sizeof *ra->jwt_rules);
	if (!ra->jwt_rules)
		return;
	ra->njwt_rules = n->n;
	for (size_t i = 0; i < n->n; i++)
		parse_rule(ctx, n->items[i], rs_yaml__path_index(path, "spec.jwtRules", i),
			   &ra->jwt_rules[i]);
}

static const struct rs_request_authentication *find(const struct rs_config *cfg, const char *ns,
						    const char *name)
{
	for (size_t i = 0; i < cfg->n_request_authentications; i++) {
		const struct rs_request_authentication *ra = &cfg->request_authentications[i];

		if (strcmp(ra->ns, ns) == 0 && strcmp(ra->name, name) == 0)
			return ra;
	}
	return NULL;
}

static int append(struct rs_config *cfg, struct rs_request_authentication *ra)
{
	struct rs_request_authentication *v;

	v = realloc(cfg->request_authentications,
		    (cfg->n_request_authentications + 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	cfg->request_authentications = v;
	v[cfg->n_request_authentications++] = *ra;
	memset(ra, 0, sizeof *ra);
	return 0;
}

int rs_config__request_authentication_load(struct rs_yctx *ctx, const struct rs_ynode *root,
					   const char *name, const char *ns, struct rs_config *cfg)
{
	struct rs_request_authentication ra = {0};
	const struct rs_request_authentication *prev = find(cfg, ns, name);
	const struct rs_ynode *spec;
	int r = 0;

	if (prev) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, root, NULL, "already defined at %s:%d:%d",
				prev->pos.file, prev->pos.line, prev->pos.col);
		goto cleanup;
	}
	ra.name = strdup(name);
	ra.ns = strdup(ns);
	if (!ra.name || !ra.ns) {
		nomem(ctx);
		goto cleanup;
	}
	ra.pos.file = ctx->file;
	ra.pos.line = root->line;
	ra.pos.col = root->col;

	/* No rules is valid: no token is verified, and a request carrying one
	 * is not rejected by this resource. */
	spec = rs_yaml__get(root, "spec");
	if (spec && rs_yaml__expect(ctx, spec, "spec", RS_YNODE_MAPPING)) {
		rs_yaml__check_fields(ctx, spec, "spec", spec_fields);
		parse_selector(ctx, spec, &ra.selector);
		parse_target_refs(ctx, spec, &ra.target_refs, &ra.ntarget_refs);
		parse_rules(ctx, spec, &ra);
	}

	if (!ctx->rejected)
		r = append(cfg, &ra);
cleanup:
	if (ctx->nomem)
		r = -ENOMEM;
	clear(&ra);
	return r;
}

void rs_config__request_authentication_free_all(struct rs_config *cfg)
{
	for (size_t i = 0; i < cfg->n_request_authentications; i++)
		clear(&cfg->request_authentications[i]);
	free(cfg->request_authentications);
	cfg->request_authentications = NULL;
	cfg->n_request_authentications = 0;
}
