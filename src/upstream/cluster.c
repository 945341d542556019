/* Clusters from ServiceEntry resources. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config.h"
#include "ringside/net.h"
#include "ringside/upstream.h"

static uint32_t endpoint_port(const struct rs_service_entry *se, const struct rs_se_port *sp,
			      const struct rs_se_endpoint *ep)
{
	for (size_t i = 0; i < ep->nports; i++)
		if (sp->name && strcmp(ep->ports[i].name, sp->name) == 0)
			return ep->ports[i].number;
	return sp->target_port ? sp->target_port : sp->number;
}

static int endpoint_init(struct rs_endpoint *e, const char *addr, uint32_t port)
{
	char name[80];
	int ret = rs_sockaddr_parse(addr, (uint16_t)port, &e->addr, &e->addr_len);

	if (ret < 0)
		return ret;
	snprintf(name, sizeof name, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, port);
	e->name = strdup(name);
	return e->name ? 0 : -ENOMEM;
}

int rs_clusters_build(const struct rs_config *cfg, struct rs_clusters *out,
		      struct rs_diags *diags)
{
	size_t n = 0;

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < cfg->n_service_entries; i++)
		n += cfg->service_entries[i].nhosts * cfg->service_entries[i].nports;
	out->v = calloc(n ? n : 1, sizeof *out->v);
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		const struct rs_service_entry *se = &cfg->service_entries[i];
		char res[256];

		snprintf(res, sizeof res, "ServiceEntry/%s/%s", se->ns, se->name);
		if (se->resolution != RS_SE_RESOLUTION_STATIC && se->nendpoints == 0)
			rs_diags_add(diags, RS_DIAG_WARNING, &se->pos, res,
				     "only resolution STATIC with endpoints is routed yet; the "
				     "hosts of this ServiceEntry get no endpoints");
		for (size_t h = 0; h < se->nhosts; h++) {
			for (size_t p = 0; p < se->nports; p++) {
				struct rs_cluster *c = &out->v[out->n];
				const struct rs_se_port *sp = &se->ports[p];
				char name[512];

				if (rs_clusters_find(out, se->hosts[h], sp->number) >= 0) {
					rs_diags_add(diags, RS_DIAG_WARNING, &se->pos, res,
						     "host %s port %u is already defined by an "
						     "earlier ServiceEntry; this one is ignored",
						     se->hosts[h], sp->number);
					continue;
				}
				snprintf(name, sizeof name, "outbound|%u||%s", sp->number,
					 se->hosts[h]);
				c->name = strdup(name);
				c->host = strdup(se->hosts[h]);
				c->port = sp->number;
				c->eps = calloc(se->nendpoints ? se->nendpoints : 1,
						sizeof *c->eps);
				out->n++;
				if (!c->name || !c->host || !c->eps)
					goto nomem;
				for (size_t e = 0; e < se->nendpoints; e++) {
					const struct rs_se_endpoint *ep = &se->endpoints[e];
					int ret = endpoint_init(&c->eps[c->neps], ep->address,
								endpoint_port(se, sp, ep));

					if (ret == -ENOMEM)
						goto nomem;
					if (ret < 0) {
						rs_diags_add(diags, RS_DIAG_WARNING, &ep->pos, res,
							     "endpoint address %s is not an IP "
							     "address; skipped",
							     ep->address);
						continue;
					}
					c->neps++;
				}
			}
		}
	}
	return 0;
nomem:
	rs_clusters_free(out);
	return -ENOMEM;
}

void rs_clusters_free(struct rs_clusters *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		struct rs_cluster *c = &cs->v[i];

		for (size_t e = 0; e < c->neps; e++)
			free(c->eps[e].name);
		free(c->eps);
		free(c->name);
		free(c->host);
	}
	free(cs->v);
	cs->v = NULL;
	cs->n = 0;
}

int rs_clusters_find(const struct rs_clusters *cs, const char *host, uint32_t port)
{
	for (size_t i = 0; i < cs->n; i++)
		if (cs->v[i].port == port && strcmp(cs->v[i].host, host) == 0)
			return (int)i;
	return -1;
}
