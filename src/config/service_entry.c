/* ServiceEntry (networking.istio.io): the services and endpoints ringside
 * routes to. Field names, defaults and checks follow Istio's reference
 * (https://istio.io/latest/docs/reference/config/networking/service-entry/)
 * and its validation (pkg/config/validation ValidateServiceEntry), so a
 * resource that istiod accepts loads here too. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ringside/config.h"
#include "yaml.h"

static const char *const spec_fields[] = {
	"hosts",     "addresses",        "ports",    "location",        "resolution",
	"endpoints", "workloadSelector", "exportTo", "subjectAltNames", NULL,
};

/* Parsed so a valid resource is not rejected, but not acted on yet. */
static const char *const spec_not_implemented[] = {
	"exportTo",
	"subjectAltNames",
	NULL,
};

static const char *const port_fields[] = {"number", "name", "protocol", "targetPort", NULL};

static const char *const endpoint_fields[] = {
	"address", "ports", "labels", "network", "locality", "weight", "serviceAccount", NULL,
};

/* Istio's protocol names (pkg/config/protocol), matched case-insensitively
 * as Istio does. */
static const char *const protocols[] = {
	"HTTP", "HTTPS", "HTTP2", "HTTP_PROXY", "GRPC",  "GRPC-Web",
	"TCP",  "TLS",   "UDP",   "Mongo",      "MySQL", "Redis",
};

static const char *const locations[] = {
	[RS_SE_MESH_EXTERNAL] = "MESH_EXTERNAL",
	[RS_SE_MESH_INTERNAL] = "MESH_INTERNAL",
};

static const char *const resolutions[] = {
	[RS_SE_RESOLUTION_NONE] = "NONE",
	[RS_SE_RESOLUTION_STATIC] = "STATIC",
	[RS_SE_RESOLUTION_DNS] = "DNS",
	[RS_SE_RESOLUTION_DNS_ROUND_ROBIN] = "DNS_ROUND_ROBIN",
};

#define UNIX_PREFIX "unix://"

static void endpoint_clear(struct rs_se_endpoint *ep)
{
	free(ep->address);
	for (size_t i = 0; i < ep->nports; i++)
		free(ep->ports[i].name);
	free(ep->ports);
	rs_config__kvs_free(ep->labels, ep->nlabels);
	free(ep->network);
	free(ep->locality);
	free(ep->service_account);
}

void rs_config__service_entry_clear(struct rs_service_entry *se)
{
	free(se->name);
	free(se->ns);
	rs_config__strv_free(se->hosts, se->nhosts);
	rs_config__strv_free(se->addresses, se->naddresses);
	for (size_t i = 0; i < se->nports; i++) {
		free(se->ports[i].name);
		free(se->ports[i].protocol);
	}
	free(se->ports);
	for (size_t i = 0; i < se->nendpoints; i++)
		endpoint_clear(&se->endpoints[i]);
	free(se->endpoints);
	rs_config__kvs_free(se->workload_selector, se->nworkload_selector);
	memset(se, 0, sizeof *se);
}

static void parse_hosts(struct rs_yctx *ctx, const struct rs_ynode *spec,
			struct rs_service_entry *se)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "hosts");
	char path[RS_YPATH_MAX];

	if (!n) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, spec, "spec.hosts", "required field is missing");
		return;
	}
	if (!rs_yaml__str_list(ctx, n, "spec.hosts", &se->hosts, &se->nhosts))
		return;
	if (se->nhosts == 0)
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, "spec.hosts", "must list at least one host");
	for (size_t i = 0; i < se->nhosts; i++) {
		rs_yaml__path_index(path, "spec.hosts", i);
		/* A bare `*` would capture every host, so Istio refuses it here
		 * (wildcard prefixes such as `*.example.com` are fine). */
		if (se->hosts[i][0] == '\0')
			rs_yaml__report(ctx, RS_DIAG_ERROR, n->items[i], path, "must not be empty");
		else if (strcmp(se->hosts[i], "*") == 0)
			rs_yaml__report(ctx, RS_DIAG_ERROR, n->items[i], path,
					"'*' is not allowed: name the hosts, or a wildcard "
					"domain such as '*.example.com'");
	}
}

static void parse_addresses(struct rs_yctx *ctx, const struct rs_ynode *spec,
			    struct rs_service_entry *se)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "addresses");
	char path[RS_YPATH_MAX];

	if (!n || !rs_yaml__str_list(ctx, n, "spec.addresses", &se->addresses, &se->naddresses))
		return;
	for (size_t i = 0; i < se->naddresses; i++) {
		if (!rs_config__is_ip_or_cidr(se->addresses[i]))
			rs_yaml__report(ctx, RS_DIAG_ERROR, n->items[i],
					rs_yaml__path_index(path, "spec.addresses", i),
					"'%s' is not an IP address or CIDR block", se->addresses[i]);
	}
}

static void parse_port(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		       struct rs_se_port *port)
{
	const struct rs_ynode *v;
	char sub[RS_YPATH_MAX];

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, path, port_fields);

	rs_yaml__path_key(sub, path, "number");
	v = rs_yaml__get(n, "number");
	if (v)
		rs_yaml__u32(ctx, v, sub, 1, 65535, &port->number);
	else
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, sub, "required field is missing");

	rs_yaml__str_field(ctx, n, path, "name", true, &port->name);

	if (rs_yaml__str_field(ctx, n, path, "protocol", false, &port->protocol)) {
		bool known = false;

		for (size_t i = 0; i < sizeof protocols / sizeof protocols[0]; i++)
			known |= strcasecmp(port->protocol, protocols[i]) == 0;
		if (!known)
			rs_yaml__report(ctx, RS_DIAG_WARNING, rs_yaml__get(n, "protocol"),
					rs_yaml__path_key(sub, path, "protocol"),
					"unknown protocol '%s' (Istio knows HTTP, HTTPS, HTTP2, "
					"HTTP_PROXY, GRPC, GRPC-Web, TCP, TLS, UDP, Mongo, MySQL "
					"and Redis)",
					port->protocol);
	}

	v = rs_yaml__get(n, "targetPort");
	if (v)
		rs_yaml__u32(ctx, v, rs_yaml__path_key(sub, path, "targetPort"), 1, 65535,
			     &port->target_port);
}

static void parse_ports(struct rs_yctx *ctx, const struct rs_ynode *spec,
			struct rs_service_entry *se)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "ports");
	char path[RS_YPATH_MAX], sub[RS_YPATH_MAX], other[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, "spec.ports", RS_YNODE_SEQUENCE) || n->n == 0)
		return;
	se->ports = rs_config__alloc_items(ctx, n->n, sizeof *se->ports);
	if (!se->ports)
		return;
	se->nports = n->n;
	for (size_t i = 0; i < n->n; i++) {
		struct rs_se_port *p = &se->ports[i];

		rs_yaml__path_index(path, "spec.ports", i);
		parse_port(ctx, n->items[i], path, p);
		/* Ports are how routes and endpoints refer to the service, so
		 * each number and each name must mean one port (as in Istio). */
		for (size_t j = 0; j < i; j++) {
			rs_yaml__path_index(other, "spec.ports", j);
			if (p->number && p->number == se->ports[j].number)
				rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n->items[i], "number"),
						rs_yaml__path_key(sub, path, "number"),
						"port %u is already defined by %s", p->number, other);
			if (p->name && se->ports[j].name && strcmp(p->name, se->ports[j].name) == 0)
				rs_yaml__report(ctx, RS_DIAG_ERROR, rs_yaml__get(n->items[i], "name"),
						rs_yaml__path_key(sub, path, "name"),
						"port name '%s' is already used by %s", p->name, other);
		}
	}
}

static bool has_port_named(const struct rs_service_entry *se, const char *name)
{
	for (size_t i = 0; i < se->nports; i++) {
		if (se->ports[i].name && strcmp(se->ports[i].name, name) == 0)
			return true;
	}
	return false;
}

/* WorkloadEntry.ports: a map from service port name to the endpoint's port. */
static void parse_endpoint_ports(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
				 const struct rs_service_entry *se, struct rs_se_endpoint *ep)
{
	char sub[RS_YPATH_MAX];

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING) || n->n == 0)
		return;
	rs_yaml__check_fields(ctx, n, path, NULL);
	ep->ports = rs_config__alloc_items(ctx, n->n, sizeof *ep->ports);
	if (!ep->ports)
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct rs_ypair *p = &n->pairs[i];
		struct rs_named_port *np = &ep->ports[ep->nports];

		if (p->key->type != RS_YNODE_SCALAR)
			continue;
		rs_yaml__path_key(sub, path, p->key->str);
		if (!rs_yaml__str(ctx, p->key, sub, &np->name))
			continue;
		ep->nports++;
		rs_yaml__u32(ctx, p->value, sub, 1, 65535, &np->number);
		/* Istio rejects this; ringside only warns, since the port is
		 * simply never used and the rest of the endpoint still works. */
		if (!has_port_named(se, np->name))
			rs_yaml__report(ctx, RS_DIAG_WARNING, p->key, sub,
					"no port named '%s' in spec.ports; ignored", np->name);
	}
}

static void parse_endpoint(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
			   const struct rs_service_entry *se, struct rs_se_endpoint *ep)
{
	const struct rs_ynode *v;
	char sub[RS_YPATH_MAX];

	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	ep->pos.file = ctx->file;
	ep->pos.line = n->line;
	ep->pos.col = n->col;
	rs_yaml__check_fields(ctx, n, path, endpoint_fields);

	if (rs_yaml__str_field(ctx, n, path, "address", true, &ep->address)) {
		v = rs_yaml__get(n, "address");
		rs_yaml__path_key(sub, path, "address");
		if (ep->address[0] == '\0') {
			rs_yaml__report(ctx, RS_DIAG_ERROR, v, sub, "must not be empty");
		} else if (se->resolution == RS_SE_RESOLUTION_STATIC) {
			/* STATIC means no name resolution at all: the address
			 * must already be something to connect to. */
			bool unix_path = strncmp(ep->address, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0;

			if (unix_path && ep->address[strlen(UNIX_PREFIX)] != '/')
				rs_yaml__report(ctx, RS_DIAG_ERROR, v, sub,
						"'%s' must be unix:// followed by an absolute path",
						ep->address);
			else if (!unix_path && !rs_config__is_ip(ep->address))
				rs_yaml__report(ctx, RS_DIAG_ERROR, v, sub,
						"'%s' is not an IP address or unix:// path, as "
						"resolution STATIC requires",
						ep->address);
		}
	}

	v = rs_yaml__get(n, "ports");
	if (v)
		parse_endpoint_ports(ctx, v, rs_yaml__path_key(sub, path, "ports"), se, ep);
	v = rs_yaml__get(n, "labels");
	if (v)
		rs_yaml__str_map(ctx, v, rs_yaml__path_key(sub, path, "labels"), &ep->labels,
				 &ep->nlabels);
	rs_yaml__str_field(ctx, n, path, "network", false, &ep->network);
	rs_yaml__str_field(ctx, n, path, "locality", false, &ep->locality);
	v = rs_yaml__get(n, "weight");
	if (v)
		rs_yaml__u32(ctx, v, rs_yaml__path_key(sub, path, "weight"), 0, UINT32_MAX,
			     &ep->weight);
	rs_yaml__str_field(ctx, n, path, "serviceAccount", false, &ep->service_account);
}

static void parse_endpoints(struct rs_yctx *ctx, const struct rs_ynode *spec,
			    struct rs_service_entry *se)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "endpoints");
	const struct rs_ynode *res = rs_yaml__get(spec, "resolution");
	char path[RS_YPATH_MAX];

	if (n && rs_yaml__expect(ctx, n, "spec.endpoints", RS_YNODE_SEQUENCE) && n->n) {
		se->endpoints = rs_config__alloc_items(ctx, n->n, sizeof *se->endpoints);
		if (!se->endpoints)
			return;
		se->nendpoints = n->n;
		for (size_t i = 0; i < n->n; i++)
			parse_endpoint(ctx, n->items[i], rs_yaml__path_index(path, "spec.endpoints", i),
				       se, &se->endpoints[i]);
	}
	/* Istio's own rules (ValidateServiceEntry): NONE passes traffic to the
	 * original destination, so endpoints would be silently unused; STATIC
	 * has nothing to resolve, so without endpoints (or a workloadSelector
	 * choosing WorkloadEntries) there is nowhere to send traffic. */
	if (se->resolution == RS_SE_RESOLUTION_NONE && se->nendpoints)
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, "spec.endpoints",
				"must be empty when resolution is NONE");
	if (se->resolution == RS_SE_RESOLUTION_STATIC &&
	    (!n || (n->type == RS_YNODE_SEQUENCE && n->n == 0)) &&
	    !rs_yaml__get(spec, "workloadSelector"))
		rs_yaml__report(ctx, RS_DIAG_ERROR, res, "spec.endpoints",
				"required when resolution is STATIC");
}

/* workloadSelector.labels: which WorkloadEntries of the namespace are this
 * service's endpoints. Still warned as not implemented (the data path does
 * not route to them yet); read for the checks across resources. */
static void parse_workload_selector(struct rs_yctx *ctx, const struct rs_ynode *spec,
				    struct rs_service_entry *se)
{
	static const char *const fields[] = {"labels", NULL};
	const struct rs_ynode *n = rs_yaml__get(spec, "workloadSelector"), *v;

	if (!n || !rs_yaml__expect(ctx, n, "spec.workloadSelector", RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, "spec.workloadSelector", fields);
	se->has_workload_selector = true;
	v = rs_yaml__get(n, "labels");
	if (v)
		rs_yaml__str_map(ctx, v, "spec.workloadSelector.labels", &se->workload_selector,
				 &se->nworkload_selector);
}

int rs_config__service_entry_load(struct rs_yctx *ctx, const struct rs_ynode *root,
				  const char *name, const char *ns, struct rs_config *cfg)
{
	struct rs_service_entry se = {0};
	const struct rs_config__head *prev =
	    rs_config__find(cfg->service_entries, cfg->n_service_entries,
	                    sizeof *cfg->service_entries, NULL, ns, name);
	const struct rs_ynode *spec;
	char path[RS_YPATH_MAX];
	int v, r = 0;

	/* The same name twice is a mistake kubectl would turn into an update;
	 * keeping the first makes the result independent of which is right. */
	if (!rs_config__begin(ctx, root, prev, name, ns, &se.name, &se.ns, &se.pos))
		goto cleanup;

	spec = rs_config__spec(ctx, root);
	if (!spec)
		goto cleanup;
	rs_yaml__check_fields(ctx, spec, "spec", spec_fields);
	/* In the order written, so the warnings read top to bottom. */
	for (size_t i = 0; i < spec->n; i++) {
		const struct rs_ynode *k = spec->pairs[i].key;

		for (const char *const *f = spec_not_implemented; *f; f++) {
			if (k->type == RS_YNODE_SCALAR && strcmp(k->str, *f) == 0)
				rs_yaml__report(ctx, RS_DIAG_WARNING, k, NULL,
						"field '%s' is not implemented yet; ignored",
						rs_yaml__path_key(path, "spec", *f));
		}
	}

	parse_hosts(ctx, spec, &se);
	parse_addresses(ctx, spec, &se);
	parse_ports(ctx, spec, &se);
	v = RS_SE_MESH_EXTERNAL;
	rs_config__read_enum(ctx, spec, "spec", "location", locations, 2, &v);
	se.location = (enum rs_se_location)v;
	v = RS_SE_RESOLUTION_NONE;
	rs_config__read_enum(ctx, spec, "spec", "resolution", resolutions, 4, &v);
	se.resolution = (enum rs_se_resolution)v;
	/* After ports and resolution: endpoint checks depend on both. */
	parse_endpoints(ctx, spec, &se);
	parse_workload_selector(ctx, spec, &se);

	if (!ctx->rejected)
		r = rs_config__grow(&cfg->service_entries, &cfg->n_service_entries, &se, sizeof se);
cleanup:
	if (ctx->nomem)
		r = -ENOMEM;
	rs_config__service_entry_clear(&se);
	return r;
}
