/* Istio's rules for how resources relate to one another, one implementation
 * each, for the checks across resources (check.c), the workload's policies
 * (select.c) and the cluster builder (upstream/cluster.c). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
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

/* The namespace of the service host belongs to, into buf: the NS of
 * NAME.NS.svc.cluster.local, else that of a ServiceEntry listing it; "" when
 * unknown. */
static void service_ns(const struct rs_config *cfg, const char *host, char buf[64])
{
	static const char suffix[] = ".svc.cluster.local";
	size_t hl = strlen(host), sl = sizeof suffix - 1;
	const char *dot = hl > sl ? memchr(host, '.', hl - sl) : NULL;

	buf[0] = '\0';
	if (dot && strcmp(host + hl - sl, suffix) == 0) {
		size_t len = (size_t)(host + hl - sl - (dot + 1));

		if (len && len < 64 && !memchr(dot + 1, '.', len)) {
			memcpy(buf, dot + 1, len);
			buf[len] = '\0';
		}
		return;
	}
	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		if (rs_se_has_host(&cfg->service_entries[i], host)) {
			snprintf(buf, 64, "%s", cfg->service_entries[i].ns);
			return;
		}
	}
}

/* Istio looks for a client's DestinationRule among those with a
 * workloadSelector that selects it (in its namespace), then those of its
 * namespace, then the service's namespace, then the root namespace: the
 * first tier that has one wins whatever the host's specificity. Rules
 * elsewhere do not apply. UINT_MAX: not a candidate. */
static unsigned tier(const struct rs_destination_rule *dr, const char *ns, const char *svc_ns,
		     const struct rs_identity *id)
{
	if (dr->has_workload_selector)
		return id && strcmp(dr->ns, id->ns) == 0 &&
			       rs_labels_include(id->labels, id->nlabels, dr->workload_selector,
						 dr->nworkload_selector)
			   ? 0
			   : UINT_MAX;
	if (!rs_dr_visible(dr, ns))
		return UINT_MAX;
	if (strcmp(dr->ns, ns) == 0)
		return 1;
	if (svc_ns[0] && strcmp(dr->ns, svc_ns) == 0)
		return 2;
	return strcmp(dr->ns, RS_ROOT_NAMESPACE) == 0 ? 3 : UINT_MAX;
}

static const struct rs_config *sort_cfg; /* for qsort's comparator; main thread only */

static int cmp_host(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(sort_cfg->destination_rules[x].host_fqdn,
		       sort_cfg->destination_rules[y].host_fqdn);

	return c ? c : (x > y) - (x < y);
}

int rs_config__index_drs(struct rs_config *cfg)
{
	size_t n = cfg->n_destination_rules;

	free(cfg->dr_exact);
	free(cfg->dr_wild);
	cfg->n_dr_exact = cfg->n_dr_wild = 0;
	cfg->dr_exact = malloc((n ? n : 1) * sizeof *cfg->dr_exact);
	cfg->dr_wild = malloc((n ? n : 1) * sizeof *cfg->dr_wild);
	if (!cfg->dr_exact || !cfg->dr_wild)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *h = cfg->destination_rules[i].host_fqdn;

		if (!h)
			continue;
		if (h[0] == '*')
			cfg->dr_wild[cfg->n_dr_wild++] = i;
		else
			cfg->dr_exact[cfg->n_dr_exact++] = i;
	}
	sort_cfg = cfg;
	qsort(cfg->dr_exact, cfg->n_dr_exact, sizeof *cfg->dr_exact, cmp_host);
	sort_cfg = NULL;
	return 0;
}

/* The rules whose host may match host, in load order, into out (up to max):
 * those with exactly this host and every wildcard one. */
static size_t candidates(const struct rs_config *cfg, const char *host, size_t *out, size_t max)
{
	size_t lo = 0, hi = cfg->n_dr_exact, w = 0, n = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(cfg->destination_rules[cfg->dr_exact[mid]].host_fqdn, host) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (n < max) {
		bool exact = lo < cfg->n_dr_exact &&
			     strcmp(cfg->destination_rules[cfg->dr_exact[lo]].host_fqdn, host) == 0;
		bool wild = w < cfg->n_dr_wild;

		if (exact && (!wild || cfg->dr_exact[lo] < cfg->dr_wild[w]))
			out[n++] = cfg->dr_exact[lo++];
		else if (wild)
			out[n++] = cfg->dr_wild[w++];
		else
			break;
	}
	return n;
}

struct rs_dr_pick rs_dr_in_force(const struct rs_config *cfg, const char *host, const char *ns,
				 const struct rs_identity *id)
{
	struct rs_dr_pick pick = {0};
	size_t cand[256], ncand = candidates(cfg, host, cand, sizeof cand / sizeof cand[0]);
	unsigned best_tier = UINT_MAX, tiers[256];
	size_t best_match = 0, matches[256];
	char svc_ns[64];

	service_ns(cfg, host, svc_ns);
	for (size_t k = 0; k < ncand; k++) {
		const struct rs_destination_rule *dr = &cfg->destination_rules[cand[k]];

		matches[k] = rs_host_match(dr->host_fqdn, host);
		tiers[k] = matches[k] ? tier(dr, ns, svc_ns, id) : UINT_MAX;
		if (tiers[k] == UINT_MAX)
			continue;
		if (!best_match || tiers[k] < best_tier ||
		    (tiers[k] == best_tier && matches[k] > best_match)) {
			best_tier = tiers[k];
			best_match = matches[k];
		}
	}
	for (size_t k = 0; k < ncand && pick.n < RS_DR_MERGED_MAX; k++)
		if (best_match && tiers[k] == best_tier && matches[k] == best_match)
			pick.idx[pick.n++] = cand[k];
	return pick;
}

const struct rs_dr_subset *rs_dr_subset_find(const struct rs_config *cfg, const char *host,
					     const char *ns, const char *name,
					     const struct rs_destination_rule **dr_out)
{
	struct rs_dr_pick pick = rs_dr_in_force(cfg, host, ns, NULL);

	for (size_t i = 0; i < pick.n; i++) {
		const struct rs_destination_rule *dr = &cfg->destination_rules[pick.idx[i]];

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

enum rs_mtls_mode rs_mtls_mode_for(const struct rs_selected *sel, const char *ns, uint32_t port)
{
	const struct rs_peer_authentication *workload = NULL, *nspace = NULL, *mesh = NULL;

	for (size_t i = 0; i < sel->n_peer_authentications; i++) {
		const struct rs_peer_authentication *pa = sel->peer_authentications[i];

		if (pa->selector.set) {
			if (!workload)
				workload = pa;
		} else if (strcmp(pa->ns, ns) == 0 && strcmp(ns, RS_ROOT_NAMESPACE) != 0) {
			if (!nspace)
				nspace = pa;
		} else if (strcmp(pa->ns, RS_ROOT_NAMESPACE) == 0) {
			if (!mesh)
				mesh = pa;
		}
	}
	for (size_t i = 0; workload && port && i < workload->nport_mtls; i++)
		if (workload->port_mtls[i].port == port && workload->port_mtls[i].mode != RS_MTLS_UNSET)
			return workload->port_mtls[i].mode;
	if (workload && workload->mode != RS_MTLS_UNSET)
		return workload->mode;
	if (nspace && nspace->mode != RS_MTLS_UNSET)
		return nspace->mode;
	if (mesh && mesh->mode != RS_MTLS_UNSET)
		return mesh->mode;
	return RS_MTLS_PERMISSIVE;
}
