/* AuthorizationPolicy (security.istio.io): which requests a workload allows
 * or denies. Fields and checks follow Istio's reference
 * (https://istio.io/latest/docs/reference/config/security/authorization-policy/)
 * and its validation (pkg/config/validation ValidateAuthorizationPolicy,
 * pkg/config/security ValidateAttribute), so a resource istiod accepts loads
 * here too; where ringside is stricter, the message says why. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-security-t.h"
#include "ringside/config.h"
#include "yaml.h"

static const char *const spec_fields[] = {
	"selector", "targetRef", "targetRefs", "action", "provider", "rules", NULL,
};
static const char *const provider_fields[] = {"name", NULL};
static const char *const rule_fields[] = {"from", "to", "when", NULL};
static const char *const from_fields[] = {"source", NULL};
static const char *const to_fields[] = {"operation", NULL};
static const char *const condition_fields[] = {"key", "values", "notValues", NULL};

static const char *const actions[] = {
	[RS_AUTHZ_ALLOW] = "ALLOW",
	[RS_AUTHZ_DENY] = "DENY",
	[RS_AUTHZ_AUDIT] = "AUDIT",
	[RS_AUTHZ_CUSTOM] = "CUSTOM",
};

/* How the values of a list are checked. */
enum value_check {
	CHECK_NONE,
	CHECK_MATCH,         /* exact, `prefix*`, `*suffix` or `*` */
	CHECK_REQ_PRINCIPAL, /* CHECK_MATCH, and <issuer>/<subject> */
	CHECK_PATH,          /* CHECK_MATCH unless a `{*}` template */
	CHECK_IP,            /* IP address or CIDR block */
};

struct list_field {
	const char *key;
	size_t off; /* of the struct rs_strs in its parent */
	enum value_check check;
};

#define SRC(key, field, check) {key, offsetof(struct rs_authz_source, field), check}
static const struct list_field source_lists[] = {
	SRC("principals", principals, CHECK_MATCH),
	SRC("notPrincipals", not_principals, CHECK_MATCH),
	SRC("requestPrincipals", request_principals, CHECK_REQ_PRINCIPAL),
	SRC("notRequestPrincipals", not_request_principals, CHECK_REQ_PRINCIPAL),
	SRC("namespaces", namespaces, CHECK_MATCH),
	SRC("notNamespaces", not_namespaces, CHECK_MATCH),
	SRC("ipBlocks", ip_blocks, CHECK_IP),
	SRC("notIpBlocks", not_ip_blocks, CHECK_IP),
	SRC("remoteIpBlocks", remote_ip_blocks, CHECK_IP),
	SRC("notRemoteIpBlocks", not_remote_ip_blocks, CHECK_IP),
};
#undef SRC
static const char *const source_fields[] = {
	"principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals",
	"namespaces", "notNamespaces", "ipBlocks", "notIpBlocks",
	"remoteIpBlocks", "notRemoteIpBlocks", NULL,
};

#define OP(key, field, check) {key, offsetof(struct rs_authz_operation, field), check}
static const struct list_field operation_lists[] = {
	OP("hosts", hosts, CHECK_MATCH),
	OP("notHosts", not_hosts, CHECK_MATCH),
	OP("methods", methods, CHECK_NONE),
	OP("notMethods", not_methods, CHECK_NONE),
	OP("paths", paths, CHECK_PATH),
	OP("notPaths", not_paths, CHECK_PATH),
};
#undef OP
static const char *const operation_fields[] = {
	"hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths",
	NULL,
};

/* The attributes a `when` condition may test (Istio's
 * https://istio.io/latest/docs/reference/config/security/conditions/);
 * a trailing `[` means a bracketed name follows. */
static const struct {
	const char *key;
	enum value_check check;
} attributes[] = {
	{"request.headers[", CHECK_NONE},
	{"source.ip", CHECK_IP},
	{"remote.ip", CHECK_IP},
	{"source.namespace", CHECK_NONE},
	{"source.principal", CHECK_NONE},
	{"request.auth.principal", CHECK_NONE},
	{"request.auth.audiences", CHECK_NONE},
	{"request.auth.presenter", CHECK_NONE},
	{"request.auth.claims[", CHECK_NONE},
	{"destination.ip", CHECK_IP},
	{"destination.port", CHECK_NONE},
	{"connection.sni", CHECK_NONE},
};



/* Envoy's string matchers behind these fields take exact, prefix, suffix
 * or presence: a `*` anywhere else would be compared literally and never
 * match what the author meant. */
static bool wildcard_ok(const char *s)
{
	size_t len = strlen(s);
	const char *star = strchr(s, '*');

	if (!star || len == 1)
		return true;
	if (star == s)
		return strchr(s + 1, '*') == NULL;
	return star == s + len - 1;
}

static void check_value(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			const char *s, enum value_check check)
{
	if (s[0] == '\0') {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, path, "must not be empty");
		return;
	}
	switch (check) {
	case CHECK_NONE:
		break;
	case CHECK_PATH:
		/* `{*}`/`{**}` path templates are Istio's own syntax. */
		if (strchr(s, '{')) {
			rs_yaml__report(ctx, RS_DIAG_WARNING, n, path,
					"path templates are not implemented yet; '%s' is "
					"compared as written", s);
			break;
		}
		/* fall through */
	case CHECK_MATCH:
	case CHECK_REQ_PRINCIPAL:
		if (!wildcard_ok(s)) {
			rs_yaml__report(ctx, RS_DIAG_ERROR, n, path,
					"'%s': '*' is only supported as a prefix, a suffix or "
					"the whole value", s);
			break;
		}
		/* A request principal is always `<iss>/<sub>` from a verified
		 * JWT, so a value without '/' and no wildcard never matches. */
		if (check == CHECK_REQ_PRINCIPAL && !strchr(s, '*') && !strchr(s, '/'))
			rs_yaml__report(ctx, RS_DIAG_WARNING, n, path,
					"'%s' never matches: a request principal is "
					"<issuer>/<subject>", s);
		break;
	case CHECK_IP:
		if (!rs_config__is_ip_or_cidr(s))
			rs_yaml__report(ctx, RS_DIAG_ERROR, n, path,
					"'%s' is not an IP address or CIDR block", s);
		break;
	}
}

/* map[key] as a list of strings, each checked. */
static void parse_checked(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			  const char *key, enum value_check check, struct rs_strs *out)
{
	const struct rs_ynode *n = rs_yaml__get(map, key);
	char sub[RS_YPATH_MAX], item[RS_YPATH_MAX];

	if (!n)
		return;
	rs_yaml__path_key(sub, path, key);
	if (!rs_yaml__str_list(ctx, n, sub, &out->v, &out->n))
		return;
	/* Positions are kept for the checks across fields (check.c). */
	out->pos = rs_config__alloc_items(ctx, out->n, sizeof *out->pos);
	for (size_t i = 0; i < out->n; i++) {
		if (out->pos)
			out->pos[i] = (struct rs_pos){ctx->file, n->items[i]->line, n->items[i]->col};
		check_value(ctx, n->items[i], rs_yaml__path_index(item, sub, i), out->v[i], check);
	}
}

/* ports/notPorts: strings in Istio's API ("8080"), numbers here. */
static void parse_ports(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			const char *key, uint32_t **out, struct rs_pos **pos, size_t *count)
{
	const struct rs_ynode *n = rs_yaml__get(map, key);
	char sub[RS_YPATH_MAX], item[RS_YPATH_MAX];

	if (!n)
		return;
	rs_yaml__path_key(sub, path, key);
	if (!rs_yaml__expect(ctx, n, sub, RS_YNODE_SEQUENCE))
		return;
	*out = rs_config__alloc_items(ctx, n->n, sizeof **out);
	*pos = rs_config__alloc_items(ctx, n->n, sizeof **pos);
	if (!*out || !*pos)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (rs_yaml__u32(ctx, n->items[i], rs_yaml__path_index(item, sub, i), 1, 65535,
				 &(*out)[*count]))
			(*pos)[(*count)++] =
				(struct rs_pos){ctx->file, n->items[i]->line, n->items[i]->col};
	}
}

static void source_clear(struct rs_authz_source *s)
{
	for (size_t i = 0; i < sizeof source_lists / sizeof source_lists[0]; i++)
		rs_config__strs_clear((struct rs_strs *)((char *)s + source_lists[i].off));
}

static void operation_clear(struct rs_authz_operation *o)
{
	for (size_t i = 0; i < sizeof operation_lists / sizeof operation_lists[0]; i++)
		rs_config__strs_clear((struct rs_strs *)((char *)o + operation_lists[i].off));
	free(o->ports);
	free(o->ports_pos);
	free(o->not_ports);
	free(o->not_ports_pos);
}

static void rule_clear(struct rs_authz_rule *r)
{
	for (size_t i = 0; i < r->nfrom; i++)
		source_clear(&r->from[i]);
	free(r->from);
	for (size_t i = 0; i < r->nto; i++)
		operation_clear(&r->to[i]);
	free(r->to);
	for (size_t i = 0; i < r->nwhen; i++) {
		free(r->when[i].key);
		rs_config__strs_clear(&r->when[i].values);
		rs_config__strs_clear(&r->when[i].not_values);
	}
	free(r->when);
}

static void clear(struct rs_authorization_policy *ap)
{
	free(ap->name);
	free(ap->ns);
	rs_config__kvs_free(ap->selector.labels, ap->selector.nlabels);
	rs_config__target_refs_free(ap->target_refs, ap->ntarget_refs);
	free(ap->provider);
	for (size_t i = 0; i < ap->nrules; i++)
		rule_clear(&ap->rules[i]);
	free(ap->rules);
	memset(ap, 0, sizeof *ap);
}

/* True when map holds a non-null value under one of the known keys. */
static bool has_known_field(const struct rs_ynode *map, const char *const *known)
{
	for (const char *const *f = known; *f; f++) {
		if (rs_yaml__get(map, *f))
			return true;
	}
	return false;
}

/* from[i] or to[i]: a mapping with one field (`source`, `operation`) that
 * must be a non-empty mapping, as Istio requires. Returns that mapping or
 * NULL after reporting. */
static const struct rs_ynode *wrapped(struct rs_yctx *ctx, const struct rs_ynode *n,
				      const char *path, const char *const *fields, const char *key,
				      const char *const *inner, char sub[RS_YPATH_MAX])
{
	const struct rs_ynode *v;

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return NULL;
	rs_yaml__check_fields(ctx, n, path, fields);
	rs_yaml__path_key(sub, path, key);
	v = rs_yaml__get(n, key);
	if (!v) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, sub, "required field is missing");
		return NULL;
	}
	if (!rs_yaml__expect(ctx, v, sub, RS_YNODE_MAPPING))
		return NULL;
	if (v->n == 0) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, v, sub, "must not be empty");
		return NULL;
	}
	/* Only misspelt fields: read as empty, it would match every request,
	 * which in an ALLOW policy opens what the author meant to narrow.
	 * Kubernetes prunes unknown fields and Istio then refuses it too. */
	if (!has_known_field(v, inner)) {
		rs_yaml__check_fields(ctx, v, sub, inner);
		rs_yaml__report(ctx, RS_DIAG_ERROR, v, sub,
				"no known field: as written it would match every request");
		return NULL;
	}
	return v;
}

static void parse_source(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			 struct rs_authz_source *s)
{
	char sub[RS_YPATH_MAX];
	const struct rs_ynode *src =
		wrapped(ctx, n, path, from_fields, "source", source_fields, sub);

	if (!src)
		return;
	rs_yaml__check_fields(ctx, src, sub, source_fields);
	for (size_t i = 0; i < sizeof source_lists / sizeof source_lists[0]; i++)
		parse_checked(ctx, src, sub, source_lists[i].key, source_lists[i].check,
			      (struct rs_strs *)((char *)s + source_lists[i].off));
}

static void parse_operation(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			    struct rs_authz_operation *o)
{
	char sub[RS_YPATH_MAX];
	const struct rs_ynode *op =
		wrapped(ctx, n, path, to_fields, "operation", operation_fields, sub);

	if (!op)
		return;
	rs_yaml__check_fields(ctx, op, sub, operation_fields);
	for (size_t i = 0; i < sizeof operation_lists / sizeof operation_lists[0]; i++)
		parse_checked(ctx, op, sub, operation_lists[i].key, operation_lists[i].check,
			      (struct rs_strs *)((char *)o + operation_lists[i].off));
	parse_ports(ctx, op, sub, "ports", &o->ports, &o->ports_pos, &o->nports);
	parse_ports(ctx, op, sub, "notPorts", &o->not_ports, &o->not_ports_pos, &o->nnot_ports);
}

/* The attribute a when-key names, or -1. */
static int attribute_find(const char *key)
{
	for (size_t i = 0; i < sizeof attributes / sizeof attributes[0]; i++) {
		const char *a = attributes[i].key;
		size_t len = strlen(a);

		if (a[len - 1] == '[') {
			/* request.headers[name]: a name, then the closing bracket. */
			if (strncmp(key, a, len) == 0 && key[len] && key[len] != ']' &&
			    strchr(key + len, ']') == key + strlen(key) - 1)
				return (int)i;
		} else if (strcmp(key, a) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static void parse_condition(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			    struct rs_authz_condition *c)
{
	enum value_check check = CHECK_NONE;
	char sub[RS_YPATH_MAX];
	int a;

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, path, condition_fields);
	if (rs_yaml__str_field(ctx, n, path, "key", true, &c->key)) {
		rs_yaml__path_key(sub, path, "key");
		a = attribute_find(c->key);
		/* Envoy filter metadata keys are Istio's escape hatch into
		 * Envoy internals, which ringside does not have. */
		if (a < 0 && strncmp(c->key, "experimental.envoy.filters.", 27) == 0)
			rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n, "key"), sub,
					"'%s': Envoy filter metadata is not supported", c->key);
		else if (a < 0)
			rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n, "key"), sub,
					"unknown attribute '%s' (see "
					"https://istio.io/latest/docs/reference/config/security/"
					"conditions/)",
					c->key);
		else
			check = attributes[a].check;
	}
	parse_checked(ctx, n, path, "values", check, &c->values);
	parse_checked(ctx, n, path, "notValues", check, &c->not_values);
	if (c->key && c->values.n == 0 && c->not_values.n == 0 && !rs_yaml__get(n, "values") &&
	    !rs_yaml__get(n, "notValues"))
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, path,
				"at least one of values or notValues must be set");
	if (c->key && strcmp(c->key, "destination.port") == 0) {
		for (size_t i = 0; i < 2; i++) {
			const char *key = i ? "notValues" : "values";
			const struct rs_ynode *l = rs_yaml__get(n, key);
			char item[RS_YPATH_MAX];
			uint32_t port;

			rs_yaml__path_key(sub, path, key);
			/* Items that are not strings were reported above. */
			for (size_t j = 0; l && l->type == RS_YNODE_SEQUENCE && j < l->n; j++)
				if (l->items[j]->type == RS_YNODE_SCALAR)
					rs_yaml__u32(ctx, l->items[j],
						     rs_yaml__path_index(item, sub, j), 1, 65535,
						     &port);
		}
	}
}

/* A list field of a rule: `from`, `to` or `when`. Istio refuses one
 * written empty, since `from: []` reads like "from nowhere" but would be
 * taken as "from anywhere". */
static const struct rs_ynode *rule_list(struct rs_yctx *ctx, const struct rs_ynode *rule,
					const char *path, const char *key, char sub[RS_YPATH_MAX])
{
	const struct rs_ynode *n = rs_yaml__get(rule, key);

	rs_yaml__path_key(sub, path, key);
	if (!n || !rs_yaml__expect(ctx, n, sub, RS_YNODE_SEQUENCE))
		return NULL;
	if (n->n == 0) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, sub, "must not be empty");
		return NULL;
	}
	return n;
}

static void parse_rule(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		       struct rs_authz_rule *r)
{
	const struct rs_ynode *l;
	char sub[RS_YPATH_MAX], item[RS_YPATH_MAX];

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, path, rule_fields);
	l = rule_list(ctx, n, path, "from", sub);
	if (l && (r->from = rs_config__alloc_items(ctx, l->n, sizeof *r->from))) {
		r->nfrom = l->n;
		for (size_t i = 0; i < l->n; i++)
			parse_source(ctx, l->items[i], rs_yaml__path_index(item, sub, i),
				     &r->from[i]);
	}
	l = rule_list(ctx, n, path, "to", sub);
	if (l && (r->to = rs_config__alloc_items(ctx, l->n, sizeof *r->to))) {
		r->nto = l->n;
		for (size_t i = 0; i < l->n; i++)
			parse_operation(ctx, l->items[i], rs_yaml__path_index(item, sub, i),
					&r->to[i]);
	}
	l = rule_list(ctx, n, path, "when", sub);
	if (l && (r->when = rs_config__alloc_items(ctx, l->n, sizeof *r->when))) {
		r->nwhen = l->n;
		for (size_t i = 0; i < l->n; i++)
			parse_condition(ctx, l->items[i], rs_yaml__path_index(item, sub, i),
					&r->when[i]);
	}
}

static void parse_rules(struct rs_yctx *ctx, const struct rs_ynode *spec,
			struct rs_authorization_policy *ap)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "rules");
	char path[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, "spec.rules", RS_YNODE_SEQUENCE))
		return;
	ap->rules = rs_config__alloc_items(ctx, n->n, sizeof *ap->rules);
	if (!ap->rules)
		return;
	ap->nrules = n->n;
	for (size_t i = 0; i < n->n; i++)
		parse_rule(ctx, n->items[i], rs_yaml__path_index(path, "spec.rules", i),
			   &ap->rules[i]);
}

static void parse_action(struct rs_yctx *ctx, const struct rs_ynode *spec,
			 struct rs_authorization_policy *ap)
{
	const struct rs_ynode *action = rs_yaml__get(spec, "action");
	const struct rs_ynode *provider = rs_yaml__get(spec, "provider");
	const struct rs_ynode *rules = rs_yaml__get(spec, "rules");
	/* Absent or `[]`; rules of the wrong type were reported already. */
	bool no_rules = !rules || (rules->type == RS_YNODE_SEQUENCE && rules->n == 0);
	int a = RS_AUTHZ_ALLOW;

	if (action && rs_config__parse_enum(ctx, action, "spec.action", actions, 4, &a))
		ap->action = (enum rs_authz_action)a;
	if (provider && rs_yaml__expect(ctx, provider, "spec.provider", RS_YNODE_MAPPING)) {
		rs_yaml__check_fields(ctx, provider, "spec.provider", provider_fields);
		rs_yaml__str_field(ctx, provider, "spec.provider", "name", true, &ap->provider);
	}
	if (!action)
		action = spec;
	if (ap->action == RS_AUTHZ_CUSTOM) {
		if (!provider)
			rs_yaml__report(ctx, RS_DIAG_ERROR, action, "spec.provider",
					"required when action is CUSTOM");
		else
			/* The external authorizer would decide; ringside has no
			 * ext_authz client, so the policy cannot be enforced. */
			rs_yaml__report(ctx, RS_DIAG_WARNING, provider, NULL,
					"field 'spec.provider' is not implemented yet; "
					"ignored");
		/* Istio: a CUSTOM policy without rules never triggers. */
		if (no_rules)
			rs_yaml__report(ctx, RS_DIAG_ERROR, action, "spec.rules",
					"required when action is CUSTOM (add an empty rule {} "
					"to check every request)");
	} else if (provider) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, provider, "spec.provider",
				"only allowed when action is CUSTOM");
	}
	/* Istio denies nothing with such a policy, but it reads as
	 * "deny all"; the way to write that is an ALLOW with no rules. */
	if (ap->action == RS_AUTHZ_DENY && no_rules)
		rs_yaml__report(ctx, RS_DIAG_WARNING, action, "spec.rules",
				"a DENY policy without rules matches nothing and denies no "
				"request (to deny all, use an ALLOW policy with no rules)");
}

int rs_config__authorization_policy_load(struct rs_yctx *ctx, const struct rs_ynode *root,
					 const char *name, const char *ns, struct rs_config *cfg)
{
	struct rs_authorization_policy ap = {0};
	const struct rs_config__head *prev =
	    rs_config__find(cfg->authorization_policies, cfg->n_authorization_policies,
	                    sizeof *cfg->authorization_policies, NULL, ns, name);
	const struct rs_ynode *spec;
	int r = 0;

	if (!rs_config__begin(ctx, root, prev, name, ns, &ap.name, &ap.ns, &ap.pos))
		goto cleanup;

	/* `spec: {}` (or none): every workload of the namespace, ALLOW, no
	 * rules, so it matches nothing and denies every request those
	 * workloads get unless another ALLOW policy matches. */
	spec = rs_yaml__get(root, "spec");
	if (spec && rs_yaml__expect(ctx, spec, "spec", RS_YNODE_MAPPING)) {
		rs_yaml__check_fields(ctx, spec, "spec", spec_fields);
		rs_config__parse_selector(ctx, spec, &ap.selector);
		rs_config__parse_target_refs(ctx, spec, &ap.target_refs, &ap.ntarget_refs);
		parse_rules(ctx, spec, &ap);
		parse_action(ctx, spec, &ap);
	}

	if (!ctx->rejected)
		r = rs_config__grow(&cfg->authorization_policies, &cfg->n_authorization_policies,
		                    &ap, sizeof ap);
cleanup:
	if (ctx->nomem)
		r = -ENOMEM;
	clear(&ap);
	return r;
}

void rs_config__authorization_policy_free_all(struct rs_config *cfg)
{
	for (size_t i = 0; i < cfg->n_authorization_policies; i++)
		clear(&cfg->authorization_policies[i]);
	free(cfg->authorization_policies);
	cfg->authorization_policies = NULL;
	cfg->n_authorization_policies = 0;
}
