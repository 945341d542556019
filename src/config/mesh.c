/* Istio's rules for how resources relate to one another, one implementation
 * each, for the checks across resources (check.c), the workload's policies
 * (select.c) and the cluster builder (upstream/cluster.c). */
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/config-security-t.h"
#include "ringside/config.h"

bool rs_labels_include(const struct rs_kv *labels, size_t nlabels, const struct rs_kv *sel,
		       size_t nsel)
{
	for (size_t i = 0; i < nsel; i++) {
		size_t j = 0;

		while (j < nlabels && (strcmp(labels[j].key, sel[i].key) != 0 ||
				       strcmp(labels[j].value, sel[i].value) != 0))
			j++;
		if (j == nlabels)
			return false;
	}
	return true;
}

size_t rs_host_match(const char *pattern, const char *host)
{
	size_t pl = strlen(pattern), hl = strlen(host);

	if (strcmp(pattern, host) == 0)
		return (size_t)-1;
	if (pattern[0] != '*' || hl < pl)
		return 0;
	return strcmp(host + hl - (pl - 1), pattern + 1) == 0 ? pl : 0;
}

bool rs_dr_visible(const struct rs_destination_rule *dr, const char *ns)
{
	if (dr->nexport_to == 0 || strcmp(dr->ns, ns) == 0 ||
	    strcmp(dr->ns, RS_ROOT_NAMESPACE) == 0)
		return true;
	for (size_t i = 0; i < dr->nexport_to; i++) {
		if (strcmp(dr->export_to[i], "*") == 0 || strcmp(dr->export_to[i], ns) == 0)
			return true;
	}
	return false;
}

/* Istio looks for a client's DestinationRule in the client's namespace
 * first, then in the others that export one to it, then in the root
 * namespace: the lower tier wins whatever the host's specificity. */
static unsigned tier(const struct rs_destination_rule *dr, const char *ns)
{
	if (strcmp(dr->ns, ns) == 0)
		return 0;
	return strcmp(dr->ns, RS_ROOT_NAMESPACE) == 0 ? 2 : 1;
}

struct rs_dr_pick rs_dr_best_match(const struct rs_config *cfg, const char *host, const char *ns)
{
	struct rs_dr_pick best = {0, 0};

	for (size_t i = 0; i < cfg->n_destination_rules; i++) {
		const struct rs_destination_rule *dr = &cfg->destination_rules[i];
		size_t m = dr->host_fqdn ? rs_host_match(dr->host_fqdn, host) : 0;
		unsigned t = tier(dr, ns);

		if (!m || dr->has_workload_selector || !rs_dr_visible(dr, ns))
			continue;
		if (!best.match || t < best.tier || (t == best.tier && m > best.match))
			best = (struct rs_dr_pick){t, m};
	}
	return best;
}

bool rs_dr_applies(const struct rs_destination_rule *dr, const char *host, const char *ns,
		   struct rs_dr_pick best)
{
	return best.match && dr->host_fqdn && !dr->has_workload_selector &&
	       tier(dr, ns) == best.tier && rs_host_match(dr->host_fqdn, host) == best.match &&
	       rs_dr_visible(dr, ns);
}

const struct rs_dr_subset *rs_dr_subset_find(const struct rs_config *cfg, const char *host,
					     const char *ns, const char *name,
					     const struct rs_destination_rule **dr_out)
{
	struct rs_dr_pick best = rs_dr_best_match(cfg, host, ns);

	for (size_t i = 0; i < cfg->n_destination_rules && best.match; i++) {
		const struct rs_destination_rule *dr = &cfg->destination_rules[i];

		if (!rs_dr_applies(dr, host, ns, best))
			continue;
		for (size_t k = 0; k < dr->nsubsets; k++) {
			if (dr->subsets[k].name && strcmp(dr->subsets[k].name, name) == 0) {
				if (dr_out)
					*dr_out = dr;
				return &dr->subsets[k];
			}
		}
	}
	return NULL;
}

bool rs_se_has_host(const struct rs_service_entry *se, const char *host)
{
	for (size_t i = 0; i < se->nhosts; i++) {
		if (strcmp(se->hosts[i], host) == 0)
			return true;
	}
	return false;
}

bool rs_se_selects(const struct rs_service_entry *se, const struct rs_workload_entry *we)
{
	return se->nworkload_selector && strcmp(se->ns, we->ns) == 0 &&
	       rs_labels_include(we->labels, we->nlabels, se->workload_selector,
				 se->nworkload_selector);
}
