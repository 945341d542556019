/* PeerAuthentication (security.istio.io): whether a workload's inbound
 * traffic must be mutual TLS. Fields and checks follow Istio's reference
 * (https://istio.io/latest/docs/reference/config/security/peer_authentication/)
 * and its validation (pkg/config/validation ValidatePeerAuthentication). */
#include <errno.h>
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


static void clear(struct rs_peer_authentication *pa)
{
	free(pa->name);
	free(pa->ns);
	rs_config__kvs_free(pa->selector.labels, pa->selector.nlabels);
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
	if (v && rs_config__parse_enum(ctx, v, rs_yaml__path_key(sub, path, "mode"), modes, 4, &m))
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
	pa->port_mtls = rs_config__alloc_items(ctx, n->n, sizeof *pa->port_mtls);
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

int rs_config__peer_authentication_load(struct rs_yctx *ctx, const struct rs_ynode *root,
					const char *name, const char *ns, struct rs_config *cfg)
{
	struct rs_peer_authentication pa = {0};
	const struct rs_config__head *prev =
	    rs_config__find(cfg->peer_authentications, cfg->n_peer_authentications,
	                    sizeof *cfg->peer_authentications, NULL, ns, name);
	const struct rs_ynode *spec, *v;
	int r = 0;

	if (!rs_config__begin(ctx, root, prev, name, ns, &pa.name, &pa.ns, &pa.pos))
		goto cleanup;

	/* No spec is an empty one: mode UNSET, inherited from above. */
	spec = rs_yaml__get(root, "spec");
	if (spec && rs_yaml__expect(ctx, spec, "spec", RS_YNODE_MAPPING)) {
		rs_yaml__check_fields(ctx, spec, "spec", spec_fields);
		rs_config__parse_selector(ctx, spec, &pa.selector);
		v = rs_yaml__get(spec, "mtls");
		if (v)
			parse_mtls(ctx, v, "spec.mtls", &pa.mode);
		parse_port_level(ctx, spec, &pa);
	}

	if (!ctx->rejected)
		r = rs_config__grow(&cfg->peer_authentications, &cfg->n_peer_authentications, &pa,
		                    sizeof pa);
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
