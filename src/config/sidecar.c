/* Sidecar (networking.istio.io): which inbound ports a workload's proxy
 * listens on and which hosts it may reach. Field names and checks follow
 * Istio's reference
 * (https://istio.io/latest/docs/reference/config/networking/sidecar/) and
 * its validation (pkg/config/validation ValidateSidecar). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/config.h"
#include "yaml.h"

static const char *const spec_fields[] = {
    "workloadSelector",      "ingress", "egress", "outboundTrafficPolicy",
    "inboundConnectionPool", NULL};
static const char *const spec_not_implemented[] = {"inboundConnectionPool", NULL};
static const char *const selector_fields[] = {"labels", NULL};
static const char *const ingress_fields[] = {
    "port", "bind", "captureMode", "defaultEndpoint", "tls", "connectionPool", NULL};
static const char *const ingress_not_implemented[] = {"tls", "connectionPool", NULL};
static const char *const egress_fields[] = {"port", "bind", "captureMode", "hosts", NULL};
static const char *const port_fields[] = {"number", "protocol", "name", "targetPort", NULL};
static const char *const outbound_fields[] = {"mode", "egressProxy", NULL};
static const char *const outbound_not_implemented[] = {"egressProxy", NULL};

static const char *const capture_modes[] = {
    [RS_CAPTURE_DEFAULT] = "DEFAULT",
    [RS_CAPTURE_IPTABLES] = "IPTABLES",
    [RS_CAPTURE_NONE] = "NONE",
    NULL,
};
/* RS_OUTBOUND_UNSET is not spellable: index 0 is a placeholder. */
static const char *const outbound_modes[] = {
    [RS_OUTBOUND_UNSET] = "",
    [RS_OUTBOUND_REGISTRY_ONLY] = "REGISTRY_ONLY",
    [RS_OUTBOUND_ALLOW_ANY] = "ALLOW_ANY",
    NULL,
};

#define UNIX_PREFIX "unix://"

static void read_port(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                      struct rs_sidecar_port *p)
{
	const struct rs_ynode *v;
	char buf[RS_YPATH_MAX];

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_config__check_fields(ctx, n, path, port_fields, NULL);
	v = rs_yaml__get(n, "number");
	rs_yaml__path_key(buf, path, "number");
	if (v)
		rs_yaml__u32(ctx, v, buf, 1, 65535, &p->number);
	else
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, buf, "required field is missing");
	rs_yaml__str_field(ctx, n, path, "protocol", false, &p->protocol);
	rs_yaml__str_field(ctx, n, path, "name", false, &p->name);
	v = rs_yaml__get(n, "targetPort");
	if (v)
		rs_yaml__u32(ctx, v, rs_yaml__path_key(buf, path, "targetPort"), 1, 65535,
		             &p->target_port);
}

/* bind: an IP address, or a unix:// path (Istio allows both). */
static void read_bind(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path, char **bind)
{
	char buf[RS_YPATH_MAX];

	if (!rs_yaml__str_field(ctx, n, path, "bind", false, bind))
		return;
	if (!rs_config__is_ip(*bind) && strncmp(*bind, UNIX_PREFIX, strlen(UNIX_PREFIX)) != 0)
		rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n, "bind"),
		                rs_yaml__path_key(buf, path, "bind"),
		                "'%s' is not an IP address or unix:// path", *bind);
}

static void parse_ingress(struct rs_yctx *ctx, const struct rs_ynode *spec, struct rs_sidecar *sc)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "ingress");
	char path[RS_YPATH_MAX], buf[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, "spec.ingress", RS_YNODE_SEQUENCE) || n->n == 0)
		return;
	sc->ingress = rs_config__alloc_items(ctx, n->n, sizeof *sc->ingress);
	if (!sc->ingress)
		return;
	sc->ningress = n->n;
	for (size_t i = 0; i < n->n; i++) {
		struct rs_sidecar_ingress *in = &sc->ingress[i];
		const struct rs_ynode *e = n->items[i], *v;
		int mode = RS_CAPTURE_DEFAULT;

		rs_yaml__path_index(path, "spec.ingress", i);
		if (!rs_yaml__expect(ctx, e, path, RS_YNODE_MAPPING))
			continue;
		rs_config__check_fields(ctx, e, path, ingress_fields, ingress_not_implemented);
		in->pos = (struct rs_pos){ctx->file, e->line, e->col};
		v = rs_yaml__get(e, "port");
		rs_yaml__path_key(buf, path, "port");
		if (v)
			read_port(ctx, v, buf, &in->port);
		else
			rs_yaml__report(ctx, RS_DIAG_ERROR, e, buf, "required field is missing");
		for (size_t j = 0; j < i && in->port.number; j++) {
			if (sc->ingress[j].port.number == in->port.number)
				rs_yaml__report(ctx, RS_DIAG_ERROR, v, buf,
				                "port %u is already used by spec.ingress[%zu]",
				                in->port.number, j);
		}
		read_bind(ctx, e, path, &in->bind);
		rs_config__read_enum(ctx, e, path, "captureMode", capture_modes, SIZE_MAX, &mode);
		in->capture_mode = (enum rs_capture_mode)mode;
		rs_yaml__str_field(ctx, e, path, "defaultEndpoint", false, &in->default_endpoint);
	}
}

/* Egress hosts are `namespace/dnsName`: the namespace is a name, `*` (any),
 * `.` (this one) or `~` (none); the DNS name may start with `*`. */
static void check_egress_host(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                              const char *host)
{
	const char *slash = strchr(host, '/');

	if (!slash || slash == host || !slash[1] || strchr(slash + 1, '/'))
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, path,
		                "'%s' must be namespace/dnsName (such as './*' or "
		                "'istio-system/*')",
		                host);
	else if (strchr(slash + 1, '*') && slash[1] != '*')
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, path,
		                "'%s': a wildcard is only allowed as the first label", host);
}

static void parse_egress(struct rs_yctx *ctx, const struct rs_ynode *spec, struct rs_sidecar *sc)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "egress");
	char path[RS_YPATH_MAX], buf[RS_YPATH_MAX], item[RS_YPATH_MAX];
	size_t catch_all = SIZE_MAX;

	if (!n || !rs_yaml__expect(ctx, n, "spec.egress", RS_YNODE_SEQUENCE) || n->n == 0)
		return;
	sc->egress = rs_config__alloc_items(ctx, n->n, sizeof *sc->egress);
	if (!sc->egress)
		return;
	sc->negress = n->n;
	for (size_t i = 0; i < n->n; i++) {
		struct rs_sidecar_egress *eg = &sc->egress[i];
		const struct rs_ynode *e = n->items[i], *v;
		int mode = RS_CAPTURE_DEFAULT;

		rs_yaml__path_index(path, "spec.egress", i);
		if (!rs_yaml__expect(ctx, e, path, RS_YNODE_MAPPING))
			continue;
		rs_config__check_fields(ctx, e, path, egress_fields, NULL);
		eg->pos = (struct rs_pos){ctx->file, e->line, e->col};
		v = rs_yaml__get(e, "port");
		if (v) {
			eg->has_port = true;
			read_port(ctx, v, rs_yaml__path_key(buf, path, "port"), &eg->port);
		} else if (catch_all != SIZE_MAX) {
			/* Istio: one listener without a port catches the rest. */
			rs_yaml__report(ctx, RS_DIAG_ERROR, e, path,
			                "only one egress listener may leave out the port "
			                "(spec.egress[%zu] already does)",
			                catch_all);
		} else {
			catch_all = i;
		}
		read_bind(ctx, e, path, &eg->bind);
		rs_config__read_enum(ctx, e, path, "captureMode", capture_modes, SIZE_MAX, &mode);
		eg->capture_mode = (enum rs_capture_mode)mode;
		v = rs_yaml__get(e, "hosts");
		rs_yaml__path_key(buf, path, "hosts");
		if (!v) {
			rs_yaml__report(ctx, RS_DIAG_ERROR, e, buf, "required field is missing");
			continue;
		}
		if (!rs_yaml__str_list(ctx, v, buf, &eg->hosts, &eg->nhosts))
			continue;
		if (eg->nhosts == 0)
			rs_yaml__report(ctx, RS_DIAG_ERROR, v, buf, "must list at least one host");
		for (size_t j = 0; j < eg->nhosts; j++)
			check_egress_host(ctx, v->items[j], rs_yaml__path_index(item, buf, j),
			                  eg->hosts[j]);
	}
}

static void sidecar_clear(struct rs_sidecar *sc)
{
	free(sc->name);
	free(sc->ns);
	rs_config__kvs_free(sc->workload_selector, sc->nworkload_selector);
	for (size_t i = 0; i < sc->ningress; i++) {
		free(sc->ingress[i].port.protocol);
		free(sc->ingress[i].port.name);
		free(sc->ingress[i].bind);
		free(sc->ingress[i].default_endpoint);
	}
	free(sc->ingress);
	for (size_t i = 0; i < sc->negress; i++) {
		free(sc->egress[i].port.protocol);
		free(sc->egress[i].port.name);
		free(sc->egress[i].bind);
		for (size_t j = 0; j < sc->egress[i].nhosts; j++)
			free(sc->egress[i].hosts[j]);
		free(sc->egress[i].hosts);
	}
	free(sc->egress);
	memset(sc, 0, sizeof *sc);
}

int rs_config__sidecar_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
                            const char *ns, struct rs_config *cfg)
{
	struct rs_sidecar sc = {0};
	const struct rs_config__head *prev =
	    rs_config__find(cfg->sidecars, cfg->n_sidecars, sizeof *cfg->sidecars, NULL, ns, name);
	const struct rs_ynode *spec, *v;
	int r = 0, mode = RS_OUTBOUND_UNSET;

	/* As for ServiceEntry: the first of two same-named resources wins. */
	if (!rs_config__begin(ctx, root, prev, name, ns, &sc.name, &sc.ns, &sc.pos))
		goto cleanup;

	spec = rs_config__spec(ctx, root);
	if (!spec)
		goto cleanup;
	rs_config__check_fields(ctx, spec, "spec", spec_fields, spec_not_implemented);

	v = rs_yaml__get(spec, "workloadSelector");
	if (v && rs_yaml__expect(ctx, v, "spec.workloadSelector", RS_YNODE_MAPPING)) {
		const struct rs_ynode *labels = rs_yaml__get(v, "labels");

		rs_config__check_fields(ctx, v, "spec.workloadSelector", selector_fields, NULL);
		sc.has_workload_selector = true;
		if (labels)
			rs_yaml__str_map(ctx, labels, "spec.workloadSelector.labels",
			                 &sc.workload_selector, &sc.nworkload_selector);
	}
	parse_ingress(ctx, spec, &sc);
	parse_egress(ctx, spec, &sc);
	v = rs_yaml__get(spec, "outboundTrafficPolicy");
	if (v && rs_yaml__expect(ctx, v, "spec.outboundTrafficPolicy", RS_YNODE_MAPPING)) {
		rs_config__check_fields(ctx, v, "spec.outboundTrafficPolicy", outbound_fields,
		                        outbound_not_implemented);
		/* The enum's zero value: written without a mode, the policy is
		 * REGISTRY_ONLY (the mesh-wide default, ALLOW_ANY, applies only
		 * when the whole field is absent). */
		mode = RS_OUTBOUND_REGISTRY_ONLY;
		rs_config__read_enum(ctx, v, "spec.outboundTrafficPolicy", "mode", outbound_modes,
		                     SIZE_MAX, &mode);
	}
	sc.outbound_mode = (enum rs_outbound_mode)mode;
	/* Istio (ValidateSidecar): a Sidecar that says nothing is a mistake. */
	if (!sc.ningress && !sc.negress && !v && !rs_yaml__get(spec, "inboundConnectionPool"))
		rs_yaml__report(ctx, RS_DIAG_ERROR, spec, "spec", "empty configuration provided");

	if (!ctx->rejected)
		r = rs_config__grow(&cfg->sidecars, &cfg->n_sidecars, &sc, sizeof sc);
cleanup:
	if (ctx->nomem)
		r = -ENOMEM;
	sidecar_clear(&sc);
	return r;
}

void rs_config__sidecar_free_all(struct rs_config *cfg)
{
	for (size_t i = 0; i < cfg->n_sidecars; i++)
		sidecar_clear(&cfg->sidecars[i]);
	free(cfg->sidecars);
	cfg->sidecars = NULL;
	cfg->n_sidecars = 0;
}
