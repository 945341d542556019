#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/config.h"
#include "ringside/router.h"
#include "ringside/upstream.h"
#include <stdint.h>

static uint32_t hash_host(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static struct rs_router_host *slot_for(const struct rs_router *r, const char *host, uint32_t h)
{
	for (uint32_t i = h & r->mask;; i = (i + 1) & r->mask) {
		struct rs_router_host *e = &r->slots[i];

		if (!e->host || (e->hash == h && strcmp(e->host, host) == 0))
			return e;
	}
}

/* Whether namespace ns sees vs on the mesh (not only on gateways). */
static bool vs_applies(const struct rs_virtual_service *vs, const char *ns)
{
	bool mesh = vs->ngateways == 0, seen = vs->nexport_to == 0;

	for (size_t i = 0; i < vs->ngateways; i++)
		mesh |= strcmp(vs->gateways[i], "mesh") == 0;
	for (size_t i = 0; i < vs->nexport_to; i++) {
		const char *e = vs->export_to[i];

		seen |= strcmp(e, "*") == 0 || strcmp(e, ns) == 0 ||
			(strcmp(e, ".") == 0 && strcmp(vs->ns, ns) == 0);
	}
	return mesh && seen;
}

/* The VirtualService for host: the most specific host match, the first
 * loaded among equals. */
static const struct rs_virtual_service *vs_for(const struct rs_config *cfg, const char *host,
					       const char *ns)
{
	const struct rs_virtual_service *best = NULL;
	size_t best_m = 0;

	for (size_t i = 0; i < cfg->n_virtual_services; i++) {
		const struct rs_virtual_service *vs = &cfg->virtual_services[i];

		if (!vs_applies(vs, ns))
			continue;
		for (size_t h = 0; h < vs->nhosts; h++) {
			size_t m = rs_host_match(vs->hosts_fqdn[h], host);

			if (m > best_m) {
				best = vs;
				best_m = m;
			}
		}
	}
	return best;
}

/* Whether route can match a request on port (0: an unlisted port, which
 * a route can match only through a match without a port). */
static bool route_on_port(const struct rs_vs_http_route *route, uint32_t port)
{
	if (route->nmatch == 0)
		return true;
	for (size_t i = 0; i < route->nmatch; i++)
		if (route->match[i].port == 0 || (port && route->match[i].port == port))
			return true;
	return false;
}

static int compile_table(struct rs_route_table *t, const struct rs_virtual_service *vs,
			 uint32_t port)
{
	t->port = port;
	t->routes = calloc(vs->nhttp ? vs->nhttp : 1, sizeof *t->routes);
	if (!t->routes)
		return -ENOMEM;
	for (size_t i = 0; i < vs->nhttp; i++)
		if (route_on_port(&vs->http[i], port))
			t->routes[t->nroutes++] = &vs->http[i];
	return 0;
}

static int compile_host(struct rs_router_host *e, const struct rs_config *cfg, const char *ns)
{
	e->vs = vs_for(cfg, e->host, ns);
	if (!e->vs)
		return 0;
	e->tables = calloc(e->nports + 1, sizeof *e->tables);
	if (!e->tables)
		return -ENOMEM;
	for (uint32_t k = 0; k <= e->nports; k++) {
		e->ntables = k + 1;
		if (compile_table(&e->tables[k], e->vs, k < e->nports ? e->port[k] : 0) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Adds the exact hosts only VirtualServices name, so their routes are found. */
static size_t vs_only_hosts(struct rs_router *r, const struct rs_config *cfg, bool add)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_virtual_services; i++) {
		const struct rs_virtual_service *vs = &cfg->virtual_services[i];

		for (size_t h = 0; h < vs->nhosts; h++) {
			const char *host = vs->hosts_fqdn[h];
			uint32_t hh = hash_host(host);
			struct rs_router_host *e;

			if (strchr(host, '*'))
				continue;
			n++;
			if (!add)
				continue;
			e = slot_for(r, host, hh);
			if (!e->host) {
				e->host = host;
				e->hash = hh;
				e->default_idx = -1;
			}
		}
	}
	return n;
}

int rs_router_init(struct rs_router *r, const struct rs_clusters *cs,
		   const struct rs_config *cfg, const char *ns)
{
	uint32_t cap = 16;

	memset(r, 0, sizeof *r);
	r->clusters = cs;
	while (cap < (cs->n + (cfg ? vs_only_hosts(r, cfg, false) : 0)) * 2)
		cap *= 2;
	r->mask = cap - 1;
	r->ns = strdup(ns);
	r->slots = calloc(cap, sizeof *r->slots);
	if (!r->ns || !r->slots)
		goto nomem;
	for (size_t i = 0; i < cs->n; i++) {
		struct rs_router_host *e;
		uint32_t h, *port;
		int *cl;

		/* Hosts route to the whole service; subsets are picked by routes. */
		if (cs->v[i].subset)
			continue;
		h = hash_host(cs->v[i].host);
		e = slot_for(r, cs->v[i].host, h);

		if (!e->host) {
			e->host = cs->v[i].host;
			e->hash = h;
		}
		port = realloc(e->port, (e->nports + 1) * sizeof *port);
		if (!port)
			goto nomem;
		e->port = port;
		cl = realloc(e->cluster, (e->nports + 1) * sizeof *cl);
		if (!cl)
			goto nomem;
		e->cluster = cl;
		e->port[e->nports] = cs->v[i].port;
		e->cluster[e->nports] = (int)i;
		e->nports++;
	}
	for (uint32_t i = 0; i <= r->mask; i++) {
		struct rs_router_host *e = &r->slots[i];

		if (!e->host)
			continue;
		e->default_idx = e->nports == 1 ? e->cluster[0] : -1;
		for (uint32_t k = 0; k < e->nports; k++)
			if (e->port[k] == 80)
				e->default_idx = e->cluster[k];
	}
	if (!cfg)
		return 0;
	vs_only_hosts(r, cfg, true);
	for (uint32_t i = 0; i <= r->mask; i++)
		if (r->slots[i].host && compile_host(&r->slots[i], cfg, ns) < 0)
			goto nomem;
	return 0;
nomem:
	rs_router_free(r);
	return -ENOMEM;
}

void rs_router_free(struct rs_router *r)
{
	if (r->slots) {
		for (uint32_t i = 0; i <= r->mask; i++) {
			free(r->slots[i].port);
			free(r->slots[i].cluster);
			for (uint32_t k = 0; k < r->slots[i].ntables; k++)
				free(r->slots[i].tables[k].routes);
			free(r->slots[i].tables);
		}
	}
	free(r->slots);
	free(r->ns);
	r->slots = NULL;
	r->ns = NULL;
}

const struct rs_router_host *rs_router_host(const struct rs_router *r, const char *host)
{
	const struct rs_router_host *e = slot_for(r, host, hash_host(host));

	return e->host ? e : NULL;
}

/* Finds host with a port (0: the host's default port). */
static int find(const struct rs_router *r, const char *host, uint32_t port)
{
	const struct rs_router_host *e = slot_for(r, host, hash_host(host));

	if (!e->host)
		return -1;
	if (!port)
		return e->default_idx;
	for (uint32_t k = 0; k < e->nports; k++)
		if (e->port[k] == port)
			return e->cluster[k];
	return -1;
}

int rs_router_match(const struct rs_router *r, const char *authority, size_t len, char *host,
		    size_t hostlen)
{
	char fq[300];
	const char *colon = NULL;
	size_t hl, dots = 0;
	uint32_t port = 0;
	int idx;

	const char *end = authority + len;

	if (len && authority[0] == '[') {
		const char *rb = memchr(authority, ']', len);

		if (!rb)
			return -1;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -1;
			colon = rb + 1;
		}
		authority++;
		hl = (size_t)(rb - authority);
	} else {
		colon = memchr(authority, ':', len);
		hl = colon ? (size_t)(colon - authority) : len;
	}
	if (colon) {
		const char *p = colon + 1;

		if (p == end)
			return -1;
		for (; p < end; p++) {
			if (!isdigit((unsigned char)*p))
				return -1;
			port = port * 10 + (uint32_t)(*p - '0');
			if (port > 65535)
				return -1;
		}
		if (port == 0)
			return -1;
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	for (size_t i = 0; i < hl; i++) {
		host[i] = (char)tolower((unsigned char)authority[i]);
		dots += host[i] == '.';
	}
	host[hl] = '\0';
	idx = find(r, host, port);
	if (idx >= 0)
		return idx;
	if (dots == 0)
		snprintf(fq, sizeof fq, "%s.%s.svc.cluster.local", host, r->ns);
	else if (dots == 1)
		snprintf(fq, sizeof fq, "%s.svc.cluster.local", host);
	else if (hl > 4 && strcmp(host + hl - 4, ".svc") == 0)
		snprintf(fq, sizeof fq, "%s.cluster.local", host);
	else
		return -1;
	return find(r, fq, port);
}
