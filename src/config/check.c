/* Checks across resources, run once after every file is loaded: problems no
 * single resource shows on its own. Each follows the istioctl analyze
 * message it is named for (https://istio.io/latest/docs/reference/config/analysis/),
 * and each stays silent where the files at hand cannot show the whole
 * picture: a host with no DestinationRule loaded may have one elsewhere, and
 * a host with no endpoints described here is typically a Kubernetes service
 * whose pods ringside cannot see. Nothing is allocated here but the
 * diagnostics themselves. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ringside/config-networking-t.h"
#include "ringside/config-security-t.h"
#include "ringside/config.h"
#include "yaml.h"

/* "Kind/ns/name", as load.c names a resource in its messages. */
static const char *resource_name(char buf[384], const char *kind, const char *ns, const char *name)
{
	snprintf(buf, 384, "%s/%s/%s", kind, ns, name);
	return buf;
}

static bool dr_defines(const struct rs_destination_rule *dr, const char *subset)
{
	for (size_t i = 0; i < dr->nsubsets; i++) {
		if (dr->subsets[i].name && strcmp(dr->subsets[i].name, subset) == 0)
			return true;
	}
	return false;
}

/* IST0101 ReferencedResourceNotFound for a destination's subset. Several
 * DestinationRules for one host are merged as Istio merges them (their
 * subsets joined), so the subset may come from any of the most specific
 * ones the VirtualService's namespace sees. */
static void check_destination(const struct rs_config *cfg, const struct rs_virtual_service *vs,
                              const struct rs_destination *d, const char *path, const char *res,
                              struct rs_diags *diags)
{
	const struct rs_destination_rule *hidden = NULL;
	bool any = false;

	if (!d->subset || !d->host_fqdn || strchr(d->host_fqdn, '*'))
		return;
	if (rs_dr_subset_find(cfg, d->host_fqdn, vs->ns, d->subset, NULL))
		return;
	for (size_t i = 0; i < cfg->n_destination_rules; i++) {
		const struct rs_destination_rule *dr = &cfg->destination_rules[i];

		if (!dr->host_fqdn || !rs_host_match(dr->host_fqdn, d->host_fqdn))
			continue;
		any = true;
		if (!hidden && !rs_dr_visible(dr, vs->ns) && dr_defines(dr, d->subset))
			hidden = dr;
	}
	/* No DestinationRule for the host at all: it may be in files not
	 * given (the mission's 02 names subsets of api and has none). */
	if (!any)
		return;
	if (hidden)
		rs_diags_add(
		    diags, RS_DIAG_ERROR, &d->subset_pos, res,
		    "%s: subset '%s' is not defined by any DestinationRule for host %s "
		    "(DestinationRule %s/%s defines it but is not exported to namespace %s)",
		    path, d->subset, d->host_fqdn, hidden->ns, hidden->name, vs->ns);
	else
		rs_diags_add(diags, RS_DIAG_ERROR, &d->subset_pos, res,
		             "%s: subset '%s' is not defined by any DestinationRule for host %s",
		             path, d->subset, d->host_fqdn);
}

static void check_l4_routes(const struct rs_config *cfg, const struct rs_virtual_service *vs,
                            const char *key, const struct rs_vs_l4_route *routes, size_t n,
                            const char *res, struct rs_diags *diags)
{
	char path[RS_YPATH_MAX];

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < routes[i].nroute; j++) {
			snprintf(path, sizeof path, "spec.%s[%zu].route[%zu].destination.subset",
			         key, i, j);
			check_destination(cfg, vs, &routes[i].route[j].dest, path, res, diags);
		}
	}
}

static void check_virtual_service(const struct rs_config *cfg, const struct rs_virtual_service *vs,
                                  struct rs_diags *diags)
{
	char res[384], path[RS_YPATH_MAX];

	resource_name(res, "VirtualService", vs->ns, vs->name);
	for (size_t i = 0; i < vs->nhttp; i++) {
		const struct rs_vs_http_route *h = &vs->http[i];

		for (size_t j = 0; j < h->nroute; j++) {
			snprintf(path, sizeof path, "spec.http[%zu].route[%zu].destination.subset",
			         i, j);
			check_destination(cfg, vs, &h->route[j].dest, path, res, diags);
		}
		if (h->mirror_set) {
			snprintf(path, sizeof path, "spec.http[%zu].mirror.subset", i);
			check_destination(cfg, vs, &h->mirror, path, res, diags);
		}
	}
	check_l4_routes(cfg, vs, "tcp", vs->tcp, vs->ntcp, res, diags);
	check_l4_routes(cfg, vs, "tls", vs->tls, vs->ntls, res, diags);
}

/* Whether a ServiceEntry of host selects we. Istio's workloadSelector picks
 * workloads of the ServiceEntry's own namespace; one without labels is left
 * out, as what it selects is unclear. */
static bool we_selected(const struct rs_config *cfg, const char *host,
                        const struct rs_workload_entry *we)
{
	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		const struct rs_service_entry *se = &cfg->service_entries[i];

		if (rs_se_has_host(se, host) && rs_se_selects(se, we))
			return true;
	}
	return false;
}

/* The endpoints of host described here whose labels include sel (all of
 * them for nsel 0): ServiceEntry endpoints, and the WorkloadEntries the
 * workloadSelector of a ServiceEntry of host picks (each counted once).
 * ServiceEntry hosts are compared as written, as Istio does. */
static size_t count_endpoints(const struct rs_config *cfg, const char *host,
                              const struct rs_kv *sel, size_t nsel)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		const struct rs_service_entry *se = &cfg->service_entries[i];

		if (!rs_se_has_host(se, host))
			continue;
		for (size_t j = 0; j < se->nendpoints; j++)
			n += rs_labels_include(se->endpoints[j].labels, se->endpoints[j].nlabels,
			                       sel, nsel);
	}
	for (size_t i = 0; i < cfg->n_workload_entries; i++) {
		const struct rs_workload_entry *we = &cfg->workload_entries[i];

		n += rs_labels_include(we->labels, we->nlabels, sel, nsel) &&
		     we_selected(cfg, host, we);
	}
	return n;
}

/* Istio merges the DestinationRules of one host in one namespace (pilot's
 * mergeDestinationRule), taking a subset from the first rule that names it
 * and dropping the later ones: the subset of an earlier rule that hides
 * subset i of rule at, or NULL (*first set to its rule). Rules with a
 * workloadSelector are not merged with the others, so they are left out. */
static const struct rs_dr_subset *shadowed_by(const struct rs_config *cfg, size_t at, size_t i,
                                              const struct rs_destination_rule **first)
{
	const struct rs_destination_rule *dr = &cfg->destination_rules[at];
	const char *name = dr->subsets[i].name;

	if (!name || !dr->host_fqdn || dr->has_workload_selector)
		return NULL;
	for (size_t j = 0; j < at; j++) {
		const struct rs_destination_rule *o = &cfg->destination_rules[j];

		if (!o->host_fqdn || o->has_workload_selector || strcmp(o->ns, dr->ns) != 0 ||
		    strcmp(o->host_fqdn, dr->host_fqdn) != 0)
			continue;
		for (size_t k = 0; k < o->nsubsets; k++) {
			if (o->subsets[k].name && strcmp(o->subsets[k].name, name) == 0) {
				*first = o;
				return &o->subsets[k];
			}
		}
	}
	return NULL;
}

static void check_merged_subsets(const struct rs_config *cfg, size_t at, const char *res,
                                 struct rs_diags *diags)
{
	const struct rs_destination_rule *dr = &cfg->destination_rules[at], *first = NULL;

	for (size_t i = 0; i < dr->nsubsets; i++) {
		const struct rs_dr_subset *s = &dr->subsets[i];
		const struct rs_dr_subset *other = shadowed_by(cfg, at, i, &first);

		if (other)
			rs_diags_add(diags, RS_DIAG_WARNING, &s->name_pos, res,
			             "spec.subsets[%zu].name: subset '%s' is also defined by "
			             "DestinationRule %s/%s at %s:%d:%d for the same host; Istio "
			             "keeps that one and ignores this one",
			             i, s->name, first->ns, first->name, other->name_pos.file,
			             other->name_pos.line, other->name_pos.col);
	}
}

/* IST0173 DestinationRuleSubsetNotSelectPods, for the endpoints ringside
 * knows: a subset no endpoint carries the labels of sends its traffic
 * nowhere (503 "no healthy upstream"). A subset that an earlier rule's
 * hides is not used, and already reported as such. */
static void check_subset_endpoints(const struct rs_config *cfg, size_t at, const char *res,
                                   struct rs_diags *diags)
{
	const struct rs_destination_rule *dr = &cfg->destination_rules[at], *first;
	size_t total;

	if (!dr->host_fqdn || strchr(dr->host_fqdn, '*') || !dr->nsubsets)
		return;
	total = count_endpoints(cfg, dr->host_fqdn, NULL, 0);
	if (!total)
		return;
	for (size_t i = 0; i < dr->nsubsets; i++) {
		const struct rs_dr_subset *s = &dr->subsets[i];

		if (!s->name || !s->nlabels || shadowed_by(cfg, at, i, &first) ||
		    count_endpoints(cfg, dr->host_fqdn, s->labels, s->nlabels))
			continue;
		rs_diags_add(diags, RS_DIAG_WARNING, &s->labels_pos, res,
		             "spec.subsets[%zu].labels: subset '%s' selects none of the %zu "
		             "endpoint%s of host %s",
		             i, s->name, total, total == 1 ? "" : "s", dr->host_fqdn);
	}
}

/* How an AuthorizationPolicy list matches its values. */
enum value_kind {
	VALUE_STRING, /* exact, `prefix*`, `*suffix`, `*` (Envoy's StringMatcher) */
	VALUE_NOCASE, /* the same, ignoring case (hosts) */
	VALUE_IP,     /* an address or a CIDR block */
};

/* Whether every value pos can match is excluded by neg. Path templates
 * (`{*}`) are only compared as written. */
static bool str_covers(const char *neg, const char *pos, bool nocase)
{
	size_t nl = strlen(neg), pl = strlen(pos);
	int (*ncmp)(const char *, const char *, size_t) = nocase ? strncasecmp : strncmp;

	if (nl == pl && ncmp(neg, pos, nl) == 0)
		return true;
	if (!nl || !pl || strchr(neg, '{') || strchr(pos, '{'))
		return false;
	if (strcmp(neg, "*") == 0)
		return true;
	/* `ab*` excludes `ab`, `abc` and `abc*`, but not `*b`. */
	if (neg[nl - 1] == '*')
		return pos[0] != '*' && pl >= nl - 1 && ncmp(pos, neg, nl - 1) == 0;
	if (neg[0] == '*')
		return pos[pl - 1] != '*' && pl >= nl - 1 &&
		       ncmp(pos + pl - (nl - 1), neg + 1, nl - 1) == 0;
	return false;
}

struct cidr {
	int family;
	unsigned char addr[16];
	unsigned bits;
};

static bool parse_cidr(const char *s, struct cidr *c)
{
	char ip[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	unsigned bits = 0;

	if (len >= sizeof ip)
		return false;
	memcpy(ip, s, len);
	ip[len] = '\0';
	if (inet_pton(AF_INET, ip, c->addr) == 1) {
		c->family = AF_INET;
		c->bits = 32;
	} else if (inet_pton(AF_INET6, ip, c->addr) == 1) {
		c->family = AF_INET6;
		c->bits = 128;
	} else {
		return false;
	}
	if (slash) {
		/* Already checked by the parser to be a prefix length that fits. */
		for (const char *p = slash + 1; *p >= '0' && *p <= '9'; p++)
			bits = bits * 10 + (unsigned)(*p - '0');
		if (bits > c->bits)
			return false;
		c->bits = bits;
	}
	return true;
}

/* neg's block contains all of pos's. */
static bool ip_covers(const char *neg, const char *pos)
{
	struct cidr n, p;
	unsigned full, rest;

	if (!parse_cidr(neg, &n) || !parse_cidr(pos, &p) || n.family != p.family || n.bits > p.bits)
		return false;
	full = n.bits / 8;
	rest = n.bits % 8;
	if (memcmp(n.addr, p.addr, full) != 0)
		return false;
	return !rest || ((n.addr[full] ^ p.addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/* Reports each value of pos that a value of neg excludes: a list such as
 * namespaces and its notNamespaces are ANDed, so such a value can never
 * match (and when it is the only one, neither can the whole source,
 * operation or condition). */
static void check_lists(const char *res, const char *path, const char *pos_key,
                        const struct rs_strs *pos, const char *neg_key, const struct rs_strs *neg,
                        enum value_kind kind, struct rs_diags *diags)
{
	for (size_t i = 0; i < pos->n && pos->pos; i++) {
		for (size_t j = 0; j < neg->n; j++) {
			const char *p = pos->v[i], *n = neg->v[j];
			bool covered = kind == VALUE_IP ? ip_covers(n, p)
			                                : str_covers(n, p, kind == VALUE_NOCASE);

			if (!covered)
				continue;
			if (strcmp(p, n) == 0)
				rs_diags_add(
				    diags, RS_DIAG_WARNING, &pos->pos[i], res,
				    "%s.%s[%zu]: can never match: '%s' is both in %s and %s", path,
				    pos_key, i, p, pos_key, neg_key);
			else
				rs_diags_add(
				    diags, RS_DIAG_WARNING, &pos->pos[i], res,
				    "%s.%s[%zu]: can never match: '%s' is excluded by '%s' "
				    "in %s",
				    path, pos_key, i, p, n, neg_key);
			break;
		}
	}
}

static void check_source(const struct rs_authz_source *s, const char *path, const char *res,
                         struct rs_diags *diags)
{
	check_lists(res, path, "principals", &s->principals, "notPrincipals", &s->not_principals,
	            VALUE_STRING, diags);
	check_lists(res, path, "requestPrincipals", &s->request_principals, "notRequestPrincipals",
	            &s->not_request_principals, VALUE_STRING, diags);
	check_lists(res, path, "namespaces", &s->namespaces, "notNamespaces", &s->not_namespaces,
	            VALUE_STRING, diags);
	check_lists(res, path, "ipBlocks", &s->ip_blocks, "notIpBlocks", &s->not_ip_blocks,
	            VALUE_IP, diags);
	check_lists(res, path, "remoteIpBlocks", &s->remote_ip_blocks, "notRemoteIpBlocks",
	            &s->not_remote_ip_blocks, VALUE_IP, diags);
}

static void check_operation(const struct rs_authz_operation *o, const char *path, const char *res,
                            struct rs_diags *diags)
{
	/* Istio matches hosts ignoring case. */
	check_lists(res, path, "hosts", &o->hosts, "notHosts", &o->not_hosts, VALUE_NOCASE, diags);
	check_lists(res, path, "methods", &o->methods, "notMethods", &o->not_methods, VALUE_STRING,
	            diags);
	check_lists(res, path, "paths", &o->paths, "notPaths", &o->not_paths, VALUE_STRING, diags);
	for (size_t i = 0; i < o->nports && o->ports_pos; i++) {
		for (size_t j = 0; j < o->nnot_ports; j++) {
			if (o->ports[i] != o->not_ports[j])
				continue;
			rs_diags_add(diags, RS_DIAG_WARNING, &o->ports_pos[i], res,
			             "%s.ports[%zu]: can never match: '%u' is both in ports and "
			             "notPorts",
			             path, i, o->ports[i]);
			break;
		}
	}
}

static void check_authorization_policy(const struct rs_authorization_policy *ap,
                                       struct rs_diags *diags)
{
	char res[384], path[RS_YPATH_MAX];

	resource_name(res, "AuthorizationPolicy", ap->ns, ap->name);
	for (size_t i = 0; i < ap->nrules; i++) {
		const struct rs_authz_rule *r = &ap->rules[i];

		for (size_t j = 0; j < r->nfrom; j++) {
			snprintf(path, sizeof path, "spec.rules[%zu].from[%zu].source", i, j);
			check_source(&r->from[j], path, res, diags);
		}
		for (size_t j = 0; j < r->nto; j++) {
			snprintf(path, sizeof path, "spec.rules[%zu].to[%zu].operation", i, j);
			check_operation(&r->to[j], path, res, diags);
		}
		for (size_t j = 0; j < r->nwhen; j++) {
			const struct rs_authz_condition *c = &r->when[j];
			bool ip = c->key && (strcmp(c->key, "source.ip") == 0 ||
			                     strcmp(c->key, "remote.ip") == 0 ||
			                     strcmp(c->key, "destination.ip") == 0);

			snprintf(path, sizeof path, "spec.rules[%zu].when[%zu]", i, j);
			check_lists(res, path, "values", &c->values, "notValues", &c->not_values,
			            ip ? VALUE_IP : VALUE_STRING, diags);
		}
	}
}

void rs_config__check(const struct rs_config *cfg, struct rs_diags *diags)
{
	char res[384];

	for (size_t i = 0; i < cfg->n_virtual_services; i++)
		check_virtual_service(cfg, &cfg->virtual_services[i], diags);
	for (size_t i = 0; i < cfg->n_destination_rules; i++) {
		const struct rs_destination_rule *dr = &cfg->destination_rules[i];

		resource_name(res, "DestinationRule", dr->ns, dr->name);
		check_merged_subsets(cfg, i, res, diags);
		check_subset_endpoints(cfg, i, res, diags);
	}
	for (size_t i = 0; i < cfg->n_authorization_policies; i++)
		check_authorization_policy(&cfg->authorization_policies[i], diags);
}
