/* PeerAuthentication (security.istio.io): whether a workload's inbound
 * traffic must be mutual TLS. Fields and checks follow Istio's reference
 * (https://istio.io/latest/docs/reference/config/security/peer_authentication/)
 * and its validation (pkg/config/validation ValidatePeerAuthentication). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-security-t.h"
#include "ringside/config.h"
#include "yaml.h"

static const char *const spec_fields[] = {"selector", "mtls", "portLevelMtls", NULL};
static const char *const mtls_fields[] = {"mode", NULL};

static const char *const modes[] = {
	[RS_MTLS_UNSET] = "UNSET",
	[RS_MTLS_DISABLE] = "DISABLE",
	[RS_MTLS_PERMISSIVE] = "PERMISSIVE",
	[RS_MTLS_STRICT] = "STRICT",
};

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

/* Reads an enum written as its Istio name into *out; reports an unknown value
 * with the allowed ones. */
static bool parse_enum(struct rs_yctx *ctx, const struct rs_ynode *v, const char *path,
		       const char *const *names, size_t n, int *out)
{
	char expected[512] = "";

	if (!rs_yaml__expect(ctx, v, path, RS_YNODE_SCALAR))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v->str, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(expected);

		snprintf(expected + len, sizeof expected - len, "%s%s",
			 i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
	}
	rs_yaml__report(ctx, RS_DIAG_ERROR, v, path, "unknown value '%s' (expected %s)", v->str,
			expected);
	return false;
}

static void kvs_free(struct rs_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
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

static void clear(struct rs_peer_authentication *pa)
{
	free(pa->name);
	free(pa->ns);
	kvs_free(pa->selector.labels, pa->selector.nlabels);
	free(pa->port_mtls);
	memset(pa, 0, sizeof *pa);
}

/* A MutualTLS message: `{mode: STRICT}`; absent mode is UNSET. */
static void parse_mtls(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		       enum rs_mtls_mode *mode)
{
	const struct rs_ynode *v;
	char sub[RS_YPATH_MAX];
	int m = RS_MTLS_UNSET;

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, path, mtls_fields);
	v = rs_yaml__get(n, "mode");
	if (v && parse_enum(ctx, v, rs_yaml__path_key(sub, path, "mode"), modes, 4, &m))
		*mode = (enum rs_mtls_mode)m;
}

static void parse_port_level(struct rs_yctx *ctx, const struct rs_ynode *spec,
			     struct rs_peer_authentication *pa)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "portLevelMtls");
	const char *base = "spec.portLevelMtls";
	char path[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, base, RS_YNODE_MAPPING))
		return;
	/* Istio: a namespace- or mesh-wide policy cannot name ports, since
	 * ports only mean something for the workloads a selector picks. */
	if (pa->selector.nlabels == 0)
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, base,
				"requires a selector with labels (a namespace- or mesh-wide "
				"policy cannot set port-level mTLS)");
	if (n->n == 0) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, base, "must have at least one port");
		return;
	}
	rs_yaml__check_fields(ctx, n, base, NULL);
	pa->port_mtls = alloc_items(ctx, n->n, sizeof *pa->port_mtls);
	if (!pa->port_mtls)
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct rs_ypair *p = &n->pairs[i];
		struct rs_port_mtls *pm = &pa->port_mtls[pa->nport_mtls];

		if (p->key->type != RS_YNODE_SCALAR)
			continue;
		rs_yaml__path_key(path, base, p->key->str);
		if (!rs_yaml__u32(ctx, p->key, path, 1, 65535, &pm->port))
			continue;
		pa->nport_mtls++;
		if (rs_yaml__is_null(p->value))
			rs_yaml__report(ctx, RS_DIAG_ERROR, p->key, path,
					"required value is missing");
		else
			parse_mtls(ctx, p->value, path, &pm->mode);
	}
}

static const struct rs_peer_authentication *find(const struct rs_config *cfg, const char *ns,
						 const char *name)
{
	for (size_t i = 0; i < cfg->n_peer_authentications; i++) {
		const struct rs_peer_authentication *pa = &cfg->peer_authentications[i];

		if (strcmp(pa->ns, ns) == 0 && strcmp(pa->name, name) == 0)
			return pa;
	}
	return NULL;
}

static int append(struct rs_config *cfg, struct rs_peer_authentication *pa)
{
	struct rs_peer_authentication *v;

	v = realloc(cfg->peer_authentications, (cfg->n_peer_authentications + 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	cfg->peer_authentications = v;
	v[cfg->n_peer_authentications++] = *pa;
	memset(pa, 0, sizeof *pa);
	return 0;
}

int rs_config__peer_authentication_load(struct rs_yctx *ctx, const struct rs_ynode *root,
					const char *name, const char *ns, struct rs_config *cfg)
{
	struct rs_peer_authentication pa = {0};
	const struct rs_peer_authentication *prev = find(cfg, ns, name);
	const struct rs_ynode *spec, *v;
	int r = 0;

	if (prev) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, root, NULL, "already defined at %s:%d:%d",
				prev->pos.file, prev->pos.line, prev->pos.col);
		goto cleanup;
	}
	pa.name = strdup(name);
	pa.ns = strdup(ns);
	if (!pa.name || !pa.ns) {
		nomem(ctx);
		goto cleanup;
	}
	pa.pos.file = ctx->file;
	pa.pos.line = root->line;
	pa.pos.col = root->col;

	/* No spec is an empty one: mode UNSET, inherited from above. */
	spec = rs_yaml__get(root, "spec");
	if (spec && rs_yaml__expect(ctx, spec, "spec", RS_YNODE_MAPPING)) {
		rs_yaml__check_fields(ctx, spec, "spec", spec_fields);
		parse_selector(ctx, spec, &pa.selector);
		v = rs_yaml__get(spec, "mtls");
		if (v)
			parse_mtls(ctx, v, "spec.mtls", &pa.mode);
		parse_port_level(ctx, spec, &pa);
	}

	if (!ctx->rejected)
		r = append(cfg, &pa);
cleanup:
	if (ctx->nomem)
		r = -ENOMEM;
	clear(&pa);
	return r;
}

void rs_config__peer_authentication_free_all(struct rs_config *cfg)
{
	for (size_t i = 0; i < cfg->n_peer_authentications; i++)
		clear(&cfg->peer_authentications[i]);
	free(cfg->peer_authentications);
	cfg->peer_authentications = NULL;
	cfg->n_peer_authentications = 0;
}
