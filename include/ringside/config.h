/* Loading Istio YAML into the typed model (config-t.h). */
#ifndef RINGSIDE_CONFIG_H
#define RINGSIDE_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "ringside/config-security-t.h"
#include "ringside/config-t.h"

/* Loads every path: a file, or a directory read recursively for `*.yaml` and
 * `*.yml` (hidden entries such as a ConfigMap's `..data` are followed once,
 * never listed twice). Multi-document files and `kind: List` are accepted.
 *
 * A broken resource is rejected alone with an RS_DIAG_ERROR in diags; the rest
 * loads. Kinds that this build does not handle yet are skipped with an
 * RS_DIAG_WARNING naming them.
 *
 * Returns 0 and sets *out (even when diags holds errors), or a negative errno
 * when nothing could be read at all (-ENOENT for a missing path, -ENOMEM). */
int rs_config_load(const char *const *paths, size_t npaths, struct rs_config **out,
		   struct rs_diags *diags);

/* After a reload: loads again, from the text prev read, the previous version
 * of every resource that cfg rejected, and of every resource missing from a
 * file of cfg that could not be read to its end (a YAML syntax error, an I/O
 * error). A resource gone from a file that loaded was deleted and stays
 * gone. Each kept resource is noted in cfg->resources (kept) and by a
 * warning in diags. Returns how many were kept, or -ENOMEM. */
int rs_config_keep_last_good(struct rs_config *cfg, const struct rs_config *prev,
			     struct rs_diags *diags);

void rs_config_free(struct rs_config *cfg);

/* Istio's rules for how resources relate (mesh.c). */
struct rs_destination_rule;
struct rs_dr_subset;
struct rs_workload_entry;
/* Kubernetes label selection: every pair of sel is in labels. */
bool rs_labels_include(const struct rs_kv *labels, size_t nlabels, const struct rs_kv *sel,
		       size_t nsel);
/* How specifically pattern (a DestinationRule or Sidecar host) matches host:
 * 0 not at all, then longer wildcards, then SIZE_MAX for the exact name
 * (pilot's most specific host match; `*.example.com`, `*`). */
size_t rs_host_match(const char *pattern, const char *host);
/* Whether namespace ns sees dr: no exportTo (everywhere), `*`, ns itself, or
 * dr in the root namespace. */
bool rs_dr_visible(const struct rs_destination_rule *dr, const char *ns);
/* Which DestinationRules are in force for a host from a client in namespace
 * ns (id: the client workload, or NULL when there is none to select): those
 * of the first tier that has one (rules whose workloadSelector selects id,
 * then the client's namespace, then the service's, then the root
 * namespace; rules elsewhere never apply), and in it those whose host
 * matches most specifically. */
#define RS_DR_MERGED_MAX 32
struct rs_dr_pick {
	size_t n; /* how many rules are in force: 0 none */
	size_t idx[RS_DR_MERGED_MAX]; /* their indexes in cfg->destination_rules, load order */
};
/* The rules in force, to merge in load order (the first RS_DR_MERGED_MAX). */
struct rs_dr_pick rs_dr_in_force(const struct rs_config *cfg, const char *host, const char *ns,
				 const struct rs_identity *id);
/* Indexes cfg's DestinationRules by host for rs_dr_in_force; run after the
 * rules change. 0 or -ENOMEM. */
int rs_config__index_drs(struct rs_config *cfg);
/* The subset named name in force for host from ns (no workload: rules with
 * a workloadSelector left out): the first of the merged rules that defines
 * it (Istio keeps the first), with its rule in *dr_out. */
const struct rs_dr_subset *rs_dr_subset_find(const struct rs_config *cfg, const char *host,
					     const char *ns, const char *name,
					     const struct rs_destination_rule **dr_out);
/* Whether se lists host (as written). */
bool rs_se_has_host(const struct rs_service_entry *se, const char *host);
/* Whether se's workloadSelector picks we (same namespace, labels included). */
bool rs_se_selects(const struct rs_service_entry *se, const struct rs_workload_entry *we);
/* The mutual TLS mode in force for this workload's port (0: unknown) from
 * the PeerAuthentications that select it: the workload's own (with a
 * selector; its portLevelMtls for the port first), else its namespace's,
 * else the mesh's (root namespace); UNSET inherits from the next; in the
 * end PERMISSIVE (istio.io/latest/docs/reference/config/security/
 * peer_authentication/). */
enum rs_mtls_mode rs_mtls_mode_for(const struct rs_selected *sel, const char *ns, uint32_t port);

/* Whether a resource in ns with this workload selector (nsel labels; has:
 * the selector was written) applies to id, by Istio's rules: without a
 * selector, to every workload of its namespace (of every namespace in the
 * root namespace, istio-system); with one, to the workloads of its namespace
 * whose labels include the selector's, and in the root namespace to those of
 * every namespace when root_reaches_all (AuthorizationPolicy,
 * RequestAuthentication, Telemetry; not PeerAuthentication nor Sidecar). */
bool rs_identity_selected(const struct rs_identity *id, const char *ns, const struct rs_kv *sel,
			  size_t nsel, bool has, bool root_reaches_all);

/* Collects the policies that apply to id (see rs_identity_selected) and the
 * Sidecar in force: one in id's namespace whose selector matches, else its
 * namespace's default, else the root namespace's. 0 or -ENOMEM. */
int rs_config_select(const struct rs_config *cfg, const struct rs_identity *id,
		     struct rs_selected *out);
void rs_selected_free(struct rs_selected *s);

/* The configuration as a JSON object (jansson) for admin /config_dump:
 * `files`, and `resources` each with kind, namespace, name, file, line,
 * column, status (active, kept, rejected) and the object as read. NULL when
 * out of memory. */
typedef struct json_t json_t;
json_t *rs_config_dump(const struct rs_config *cfg);

/* Appends a formatted problem to diags. resource may be NULL. */
void rs_diags_add(struct rs_diags *diags, enum rs_diag_level level, const struct rs_pos *pos,
		  const char *resource, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Prints each problem as `file:line:col: Kind/ns/name: message`, one a line. */
void rs_diags_print(const struct rs_diags *diags, FILE *f);

void rs_diags_free(struct rs_diags *diags);

#endif
