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

static bool nomem(struct rs_yctx *ctx)
{
	ctx->nomem = true;
	ctx->rejected = true;
	return false;
}

/* ports: a map from the service's port name to this endpoint's port. */
static void parse_ports(struct rs_yctx *ctx, const struct rs_ynode *spec,
                        struct rs_workload_entry *we)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "ports");
	char path[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, "spec.ports", RS_YNODE_MAPPING) || n->n == 0)
		return;
	rs_yaml__check_fields(ctx, n, "spec.ports", NULL);
	we->ports = calloc(n->n, sizeof *we->ports);
	if (!we->ports) {
		nomem(ctx);
		return;
	}
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
	for (size_t i = 0; i < we->nlabels; i++) {
		free(we->labels[i].key);
		free(we->labels[i].value);
	}
	free(we->labels);
	free(we->network);
	free(we->locality);
	free(we->service_account);
	memset(we, 0, sizeof *we);
}

static const struct rs_workload_entry *find(const struct rs_config *cfg, const char *ns,
                                            const char *name)
{
	for (size_t i = 0; i < cfg->n_workload_entries; i++) {
		const struct rs_workload_entry *we = &cfg->workload_entries[i];

		if (strcmp(we->ns, ns) == 0 && strcmp(we->name, name) == 0)
			return we;
	}
	return NULL;
}

static int append(struct rs_config *cfg, struct rs_workload_entry *we)
{
	struct rs_workload_entry *v;

	v = realloc(cfg->workload_entries, (cfg->n_workload_entries + 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	cfg->workload_entries = v;
	v[cfg->n_workload_entries++] = *we;
	memset(we, 0, sizeof *we);
	return 0;
}

int rs_config__workload_entry_load(struct rs_yctx *ctx, const struct rs_ynode *root,
                                   const char *name, const char *ns, struct rs_config *cfg)
{
	struct rs_workload_entry we = {0};
	const struct rs_workload_entry *prev = find(cfg, ns, name);
	const struct rs_ynode *spec, *v;
	int r = 0;

	/* As for ServiceEntry: the first of two same-named resources wins. */
	if (prev) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, root, NULL, "already defined at %s:%d:%d",
		                prev->pos.file, prev->pos.line, prev->pos.col);
		goto cleanup;
	}
	we.name = strdup(name);
	we.ns = strdup(ns);
	if (!we.name || !we.ns) {
		nomem(ctx);
		goto cleanup;
	}
	we.pos = (struct rs_pos){ctx->file, root->line, root->col};

	spec = rs_yaml__get(root, "spec");
	if (!spec) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, root, "spec", "required field is missing");
		goto cleanup;
	}
	if (!rs_yaml__expect(ctx, spec, "spec", RS_YNODE_MAPPING))
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
		r = append(cfg, &we);
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
