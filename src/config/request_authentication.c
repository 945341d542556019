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



static void rule_clear(struct rs_jwt_rule *r)
{
	free(r->issuer);
	rs_config__strs_clear(&r->audiences);
	free(r->jwks_uri);
	free(r->jwks);
	for (size_t i = 0; i < r->nfrom_headers; i++) {
		free(r->from_headers[i].name);
		free(r->from_headers[i].prefix);
	}
	free(r->from_headers);
	rs_config__strs_clear(&r->from_params);
	rs_config__strs_clear(&r->from_cookies);
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
	rs_config__kvs_free(ra->selector.labels, ra->selector.nlabels);
	rs_config__target_refs_free(ra->target_refs, ra->ntarget_refs);
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
	*out = rs_config__alloc_items(ctx, n->n, size);
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
	ra->jwt_rules = rs_config__alloc_items(ctx, n->n, sizeof *ra->jwt_rules);
	if (!ra->jwt_rules)
		return;
	ra->njwt_rules = n->n;
	for (size_t i = 0; i < n->n; i++)
		parse_rule(ctx, n->items[i], rs_yaml__path_index(path, "spec.jwtRules", i),
			   &ra->jwt_rules[i]);
}

int rs_config__request_authentication_load(struct rs_yctx *ctx, const struct rs_ynode *root,
					   const char *name, const char *ns, struct rs_config *cfg)
{
	struct rs_request_authentication ra = {0};
	const struct rs_config__head *prev =
	    rs_config__find(cfg->request_authentications, cfg->n_request_authentications,
	                    sizeof *cfg->request_authentications, NULL, ns, name);
	const struct rs_ynode *spec;
	int r = 0;

	if (!rs_config__begin(ctx, root, prev, name, ns, &ra.name, &ra.ns, &ra.pos))
		goto cleanup;

	/* No rules is valid: no token is verified, and a request carrying one
	 * is not rejected by this resource. */
	spec = rs_yaml__get(root, "spec");
	if (spec && rs_yaml__expect(ctx, spec, "spec", RS_YNODE_MAPPING)) {
		rs_yaml__check_fields(ctx, spec, "spec", spec_fields);
		rs_config__parse_selector(ctx, spec, &ra.selector);
		rs_config__parse_target_refs(ctx, spec, &ra.target_refs, &ra.ntarget_refs);
		parse_rules(ctx, spec, &ra);
	}

	if (!ctx->rejected)
		r = rs_config__grow(&cfg->request_authentications, &cfg->n_request_authentications,
		                    &ra, sizeof ra);
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
