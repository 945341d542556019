/* WorkloadEntry (networking.istio.io): an endpoint outside Kubernetes' own
 * pods, which a ServiceEntry selects by its labels. Field names and checks
 * follow Istio's reference
 * (https://istio.io/latest/docs/reference/config/networking/workload-entry/)
 * and its validation (pkg/config/validation ValidateWorkloadEntry). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/config.h"
#include "yaml.h"

static const char *const spec_fields[] = {"address",  "ports",  "labels",         "network",
                                          "locality", "weight", "serviceAccount", NULL};

#define UNIX_PREFIX "unix://"

/* ports: a map from the service's port name to this endpoint's port. */
static void parse_ports(struct rs_yctx *ctx, const struct rs_ynode *spec,
                        struct rs_workload_entry *we)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "ports");
	char path[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, "spec.ports", RS_YNODE_MAPPING) || n->n == 0)
		return;
	rs_yaml__check_fields(ctx, n, "spec.ports", NULL);
	we->ports = rs_config__alloc_items(ctx, n->n, sizeof *we->ports);
	if (!we->ports)
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct rs_ypair *p = &n->pairs[i];
		struct rs_named_port *np = &we->ports[we->nports];

		if (p->key->type != RS_YNODE_SCALAR)
			continue;
		rs_yaml__path_key(path, "spec.ports", p->key->str);
		if (!rs_yaml__str(ctx, p->key, path, &np->name))
			continue;
		we->nports++;
		rs_yaml__u32(ctx, p->value, path, 1, 65535, &np->number);
	}
}

static void parse_address(struct rs_yctx *ctx, const struct rs_ynode *spec,
                          struct rs_workload_entry *we)
{
	const struct rs_ynode *v = rs_yaml__get(spec, "address");

	/* Istio: the address may be left out only for a workload on another
	 * network, reached through that network's gateway. */
	if (!v) {
		if (!we->network)
			rs_yaml__report(ctx, RS_DIAG_ERROR, spec, "spec.address",
			                "required field is missing (unless spec.network is set)");
		return;
	}
	if (!rs_yaml__str(ctx, v, "spec.address", &we->address))
		return;
	if (we->address[0] == '\0')
		rs_yaml__report(ctx, RS_DIAG_ERROR, v, "spec.address", "must not be empty");
	else if (strncmp(we->address, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0 &&
	         we->address[strlen(UNIX_PREFIX)] != '/')
		rs_yaml__report(ctx, RS_DIAG_ERROR, v, "spec.address",
		                "'%s' must be unix:// followed by an absolute path", we->address);
	else if (strncmp(we->address, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0 && we->nports)
		rs_yaml__report(ctx, RS_DIAG_ERROR, v, "spec.address",
		                "a unix:// address cannot have spec.ports");
}

static void workload_entry_clear(struct rs_workload_entry *we)
{
	free(we->name);
	free(we->ns);
	free(we->address);
	for (size_t i = 0; i < we->nports; i++)
		free(we->ports[i].name);
	free(we->ports);
	rs_config__kvs_free(we->labels, we->nlabels);
	free(we->network);
	free(we->locality);
	free(we->service_account);
	memset(we, 0, sizeof *we);
}

int rs_config__workload_entry_load(struct rs_yctx *ctx, const struct rs_ynode *root,
                                   const char *name, const char *ns, struct rs_config *cfg)
{
	struct rs_workload_entry we = {0};
	const struct rs_config__head *prev =
	    rs_config__find(cfg->workload_entries, cfg->n_workload_entries,
	                    sizeof *cfg->workload_entries, NULL, ns, name);
	const struct rs_ynode *spec, *v;
	int r = 0;

	/* As for ServiceEntry: the first of two same-named resources wins. */
	if (!rs_config__begin(ctx, root, prev, name, ns, &we.name, &we.ns, &we.pos))
		goto cleanup;

	spec = rs_config__spec(ctx, root);
	if (!spec)
		goto cleanup;
	rs_yaml__check_fields(ctx, spec, "spec", spec_fields);

	rs_yaml__str_field(ctx, spec, "spec", "network", false, &we.network);
	parse_ports(ctx, spec, &we);
	/* After network and ports: whether an address is needed, and which,
	 * depends on both. */
	parse_address(ctx, spec, &we);
	v = rs_yaml__get(spec, "labels");
	if (v)
		rs_yaml__str_map(ctx, v, "spec.labels", &we.labels, &we.nlabels);
	rs_yaml__str_field(ctx, spec, "spec", "locality", false, &we.locality);
	v = rs_yaml__get(spec, "weight");
	if (v)
		rs_yaml__u32(ctx, v, "spec.weight", 0, UINT32_MAX, &we.weight);
	rs_yaml__str_field(ctx, spec, "spec", "serviceAccount", false, &we.service_account);

	if (!ctx->rejected)
		r = rs_config__grow(&cfg->workload_entries, &cfg->n_workload_entries, &we,
		                    sizeof we);
cleanup:
	if (ctx->nomem)
		r = -ENOMEM;
	workload_entry_clear(&we);
	return r;
}

void rs_config__workload_entry_free_all(struct rs_config *cfg)
{
	for (size_t i = 0; i < cfg->n_workload_entries; i++)
		workload_entry_clear(&cfg->workload_entries[i]);
	free(cfg->workload_entries);
	cfg->workload_entries = NULL;
	cfg->n_workload_entries = 0;
}
