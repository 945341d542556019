/* Which resources apply to this proxy's workload: Istio's workload selector
 * and namespace rules, evaluated once per snapshot against the identity the
 * proxy was started with (--namespace, --service-account, --label). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/config-security-t.h"
#include "ringside/config.h"

bool rs_identity_selected(const struct rs_identity *id, const char *ns, const struct rs_kv *sel,
			  size_t nsel, bool has, bool root_reaches_all)
{
	bool root = strcmp(ns, RS_ROOT_NAMESPACE) == 0;

	if (strcmp(ns, id->ns) != 0 && !(root && (!has || root_reaches_all)))
		return false;
	/* `selector: {}` selects every workload, as no selector does. */
	return !has || rs_labels_include(id->labels, id->nlabels, sel, nsel);
}

/* Appends p to the array *v of *n pointers. */
static int push(const void ***v, size_t *n, const void *p)
{
	const void **nv = realloc(*v, (*n + 1) * sizeof *nv);

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = p;
	*v = nv;
	return 0;
}

#define SELECT(kind, field, root_all)                                                          \
	for (size_t i = 0; i < cfg->n_##field; i++) {                                          \
		const struct kind *r = &cfg->field[i];                                         \
                                                                                               \
		if (rs_identity_selected(id, r->ns, r->selector.labels, r->selector.nlabels,   \
					 r->selector.set, root_all) &&                         \
		    push((const void ***)&out->field, &out->n_##field, r) < 0)                 \
			goto nomem;                                                            \
	}

int rs_config_select(const struct rs_config *cfg, const struct rs_identity *id,
		     struct rs_selected *out)
{
	const struct rs_sidecar *ns_default = NULL, *root_default = NULL;

	memset(out, 0, sizeof *out);
	/* PeerAuthentication with a selector in the root namespace is ignored
	 * outside it (Istio's PeerAuthentication reference). */
	SELECT(rs_peer_authentication, peer_authentications, false)
	SELECT(rs_authorization_policy, authorization_policies, true)
	SELECT(rs_request_authentication, request_authentications, true)
	SELECT(rs_telemetry, telemetries, true)
	for (size_t i = 0; i < cfg->n_sidecars; i++) {
		const struct rs_sidecar *sc = &cfg->sidecars[i];

		if (strcmp(sc->ns, id->ns) == 0 && sc->has_workload_selector) {
			if (!out->sidecar && rs_labels_include(id->labels, id->nlabels,
							       sc->workload_selector,
							       sc->nworkload_selector))
				out->sidecar = sc;
		} else if (strcmp(sc->ns, id->ns) == 0) {
			if (!ns_default)
				ns_default = sc;
		} else if (strcmp(sc->ns, RS_ROOT_NAMESPACE) == 0 && !sc->has_workload_selector) {
			if (!root_default)
				root_default = sc;
		}
	}
	if (!out->sidecar)
		out->sidecar = ns_default ? ns_default : root_default;
	return 0;
nomem:
	rs_selected_free(out);
	return -ENOMEM;
}

void rs_selected_free(struct rs_selected *s)
{
	free(s->peer_authentications);
	free(s->authorization_policies);
	free(s->request_authentications);
	free(s->telemetries);
	memset(s, 0, sizeof *s);
}
