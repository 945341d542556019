/* The host index and the route tables: which VirtualService applies to a
 * host, its routes per port with their destinations resolved to clusters,
 * and the lookup of a request's authority. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/config.h"
#include "ringside/core.h"
#include "ringside/router.h"
#include "ringside/upstream.h"
#include "internal.h"

/* XXH3, inlined from the library's header: a host name of 30 bytes takes a
 * few nanoseconds, where a byte-at-a-time hash waits on 30 multiplies. */
#define XXH_INLINE_ALL
#include <xxhash.h>

static uint32_t hash_host(const char *s, size_t len)
{
	return (uint32_t)XXH3_64bits(s, len);
}

static struct rs_router_slot *slot_for(const struct rs_router *r, const char *name, uint32_t h)
{
	for (uint32_t i = h & r->mask;; i = (i + 1) & r->mask) {
		struct rs_router_slot *s = &r->slots[i];

		if (!s->name || (s->hash == h && strcmp(s->name, name) == 0))
			return s;
	}
}

static const struct rs_router_host *find(const struct rs_router *r, const char *host,
					 size_t len)
{
	const struct rs_router_slot *s = slot_for(r, host, hash_host(host, len));

	return s->name ? &r->hosts[s->host] : NULL;
}

/* The host named host exactly, added when new (the index has room: see
 * rs_router_init). */
static struct rs_router_host *host_add(struct rs_router *r, const char *host)
{
	uint32_t h = hash_host(host, strlen(host));
	struct rs_router_slot *s = slot_for(r, host, h);
	struct rs_router_host *e;

	if (s->name)
		return &r->hosts[s->host];
	e = &r->hosts[r->nhosts];
	e->host = host;
	e->default_idx = -1;
	*s = (struct rs_router_slot){.name = host, .hash = h, .host = r->nhosts++};
	return e;
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

/* The index of the VirtualService for host: the most specific host match,
 * the first loaded among equals; -1 for none. */
static long vs_for(const struct rs_config *cfg, const char *host, const char *ns)
{
	long best = -1;
	size_t best_m = 0;

	for (size_t i = 0; i < cfg->n_virtual_services; i++) {
		const struct rs_virtual_service *vs = &cfg->virtual_services[i];

		if (!vs_applies(vs, ns))
			continue;
		for (size_t h = 0; h < vs->nhosts; h++) {
			size_t m = rs_host_match(vs->hosts_fqdn[h], host);

			if (m > best_m) {
				best = (long)i;
				best_m = m;
			}
		}
	}
	return best;
}

/* Whether route can match a request on port (0: an unlisted port, which
 * a route can match only through a match without a port). */
static bool route_on_port(const struct rs_route *route, uint32_t port)
{
	if (route->any)
		return true;
	for (uint32_t i = 0; i < route->nmatches; i++)
		if (route->matches[i].port == 0 || (port && route->matches[i].port == port))
			return true;
	return false;
}

/* Whether route goes into the table for port: it can match there, and
 * has a match block left for this workload (or none written). */
static bool on_table(const struct rs_route *route, uint32_t port)
{
	return route_on_port(route, port) && (route->any || route->nmatches);
}

/* The cluster of destination d as a request on port sees it: d's port,
 * else that port when d's host has it, else d's host's default port; then
 * the subset among the clusters the builder put after the whole service's. */
static int dest_cluster(const struct rs_router *r, const struct rs_destination *d, uint32_t port)
{
	const struct rs_router_host *e = rs_router_host(r, d->host_fqdn);
	int whole;

	if (!e)
		return -1;
	whole = rs_router_host_cluster(e, d->port ? d->port : port);
	if (whole < 0 && !d->port)
		whole = e->default_idx;
	if (whole < 0 || !d->subset)
		return whole;
	for (size_t i = (size_t)whole + 1; i < r->clusters->n; i++) {
		const struct rs_cluster *c = &r->clusters->v[i];

		if (!c->subset || c->port != r->clusters->v[whole].port ||
		    strcmp(c->host, r->clusters->v[whole].host) != 0)
			break;
		if (strcmp(c->subset, d->subset) == 0)
			return (int)i;
	}
	return -1;
}

static int compile_table(struct rs_router *r, struct rs_route_table *t,
			 const struct rs_route *routes, size_t n, uint32_t port)
{
	size_t nd = 0, nk = 0;
	int *cl;

	/* The keys first, right after the host's tables: they are what a
	 * request reads next. Then the routes, then their destinations. */
	t->port = port;
	for (size_t i = 0; i < n; i++)
		if (on_table(&routes[i], port))
			nk += rs_router__nkeys(&routes[i]);
	t->keys = rs_arena_alloc(&r->arena, (nk ? nk : 1) * sizeof *t->keys);
	t->routes = rs_arena_alloc(&r->arena, (n ? n : 1) * sizeof *t->routes);
	if (!t->keys || !t->routes)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct rs_table_route *tr;
		const struct rs_vs_http_route *src = routes[i].src;

		if (!on_table(&routes[i], port))
			continue;
		tr = &t->routes[t->nroutes++];
		tr->r = &routes[i];
		tr->ndest = (uint32_t)src->nroute;
		tr->total_weight = routes[i].total_weight;
		tr->mirror = src->mirror_set ? dest_cluster(r, &src->mirror, port) : -1;
		nd += src->nroute;
	}
	rs_router__keys_fill(t);
	/* A route's weights beside its clusters: a pick reads one place. */
	cl = rs_arena_alloc(&r->arena, (nd ? nd : 1) * (sizeof *cl + sizeof(uint32_t)));
	if (!cl)
		return -ENOMEM;
	for (uint32_t j = 0; j < t->nroutes; j++) {
		struct rs_table_route *tr = &t->routes[j];
		const struct rs_vs_http_route *src = tr->r->src;

		tr->cluster = cl;
		tr->weight = (uint32_t *)(cl + tr->ndest);
		cl += 2 * tr->ndest;
		for (size_t k = 0; k < src->nroute; k++) {
			tr->cluster[k] = dest_cluster(r, &src->route[k].dest, port);
			tr->weight[k] = src->route[k].weight;
		}
	}
	return 0;
}

/* The compiled routes of VirtualService vi, compiled at first use. */
static struct rs_route *vs_routes(struct rs_router *r, size_t vi, const struct rs_identity *id)
{
	const struct rs_virtual_service *vs = &r->cfg->virtual_services[vi];
	struct rs_route *v;

	if (r->vs_routes[vi])
		return r->vs_routes[vi];
	v = rs_arena_alloc(&r->arena, (vs->nhttp ? vs->nhttp : 1) * sizeof *v);
	if (!v)
		return NULL;
	for (size_t i = 0; i < vs->nhttp; i++) {
		if (rs_router__route_compile(&v[i], &vs->http[i], id, &r->arena) < 0) {
			while (i--)
				rs_router__route_free(&v[i]);
			return NULL;
		}
	}
	r->vs_routes[vi] = v;
	return v;
}

static int compile_host(struct rs_router *r, struct rs_router_host *e,
			const struct rs_identity *id)
{
	long vi = vs_for(r->cfg, e->host, id->ns);
	const struct rs_route *routes;

	if (vi < 0)
		return 0;
	e->vs = &r->cfg->virtual_services[vi];
	routes = vs_routes(r, (size_t)vi, id);
	e->tables = rs_arena_alloc(&r->arena, (e->nports + 1) * sizeof *e->tables);
	if (!routes || !e->tables)
		return -ENOMEM;
	for (uint32_t k = 0; k <= e->nports; k++) {
		e->ntables = k + 1;
		if (compile_table(r, &e->tables[k], routes, e->vs->nhttp,
				  k < e->nports ? e->port[k] : 0) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Adds the exact hosts only VirtualServices name, so their routes are found
 * (add false: only counts them). */
static size_t vs_only_hosts(struct rs_router *r, const struct rs_config *cfg, bool add)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_virtual_services; i++) {
		const struct rs_virtual_service *vs = &cfg->virtual_services[i];

		for (size_t h = 0; h < vs->nhosts; h++) {
			if (strchr(vs->hosts_fqdn[h], '*'))
				continue;
			n++;
			if (add)
				host_add(r, vs->hosts_fqdn[h]);
		}
	}
	return n;
}

static int add_alias(struct rs_router *r, uint32_t host, const char *name, size_t len)
{
	char *a = strndup(name, len);
	uint32_t h;
	struct rs_router_slot *s;

	if (!a)
		return -ENOMEM;
	h = hash_host(a, len);
	s = slot_for(r, a, h);
	if (s->name) {
		free(a); /* a real host, or an alias already, has the name */
		return 0;
	}
	*s = (struct rs_router_slot){.name = a, .hash = h, .host = host};
	return 0;
}

/* The names Kubernetes' DNS search path resolves to each host of the form
 * NAME.NS.svc.cluster.local (as a pod of namespace ns looks them up):
 * NAME.NS.svc, NAME.NS, and NAME when NS is ns, indexed once so that a
 * lookup is one probe. */
static int add_aliases(struct rs_router *r, const char *ns)
{
	static const char suffix[] = ".svc.cluster.local";
	size_t sl = sizeof suffix - 1, nsl = strlen(ns);

	for (uint32_t i = 0; i < r->nhosts; i++) {
		const char *host = r->hosts[i].host, *dot;
		size_t hl = strlen(host), pl;

		if (hl <= sl || strcmp(host + hl - sl, suffix) != 0)
			continue;
		pl = hl - sl; /* NAME.NS */
		dot = memchr(host, '.', pl);
		if (add_alias(r, i, host, pl + 4) < 0 || /* NAME.NS.svc */
		    (dot && !memchr(dot + 1, '.', pl - (size_t)(dot + 1 - host)) &&
		     (add_alias(r, i, host, pl) < 0 ||
		      ((size_t)(pl - (size_t)(dot + 1 - host)) == nsl &&
		       memcmp(dot + 1, ns, nsl) == 0 && add_alias(r, i, host, (size_t)(dot - host)) < 0))))
			return -ENOMEM;
	}
	return 0;
}

int rs_router_init(struct rs_router *r, const struct rs_clusters *cs,
		   const struct rs_config *cfg, const struct rs_identity *id)
{
	size_t hosts = cfg ? vs_only_hosts(r, cfg, false) : 0;
	uint32_t cap = 16;

	memset(r, 0, sizeof *r);
	r->clusters = cs;
	r->cfg = cfg;
	for (size_t i = 0; i < cs->n; i++)
		hosts += !cs->v[i].subset;
	/* Up to three short names a host besides its own: load under a half. */
	while (cap < hosts * 8)
		cap *= 2;
	r->mask = cap - 1;
	r->ns = strdup(id->ns);
	r->slots = calloc(cap, sizeof *r->slots);
	r->hosts = calloc(hosts ? hosts : 1, sizeof *r->hosts);
	if (!r->ns || !r->slots || !r->hosts)
		goto nomem;
	for (size_t i = 0; i < cs->n; i++) {
		struct rs_router_host *e;
		uint32_t *port;
		int *cl;

		/* Hosts route to the whole service; subsets are picked by routes. */
		if (cs->v[i].subset)
			continue;
		e = host_add(r, cs->v[i].host);
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
	for (uint32_t i = 0; i < r->nhosts; i++) {
		struct rs_router_host *e = &r->hosts[i];

		e->default_idx = e->nports == 1 ? e->cluster[0] : -1;
		for (uint32_t k = 0; k < e->nports; k++)
			if (e->port[k] == 80)
				e->default_idx = e->cluster[k];
	}
	if (!cfg)
		return add_aliases(r, id->ns) < 0 ? (rs_router_free(r), -ENOMEM) : 0;
	r->vs_routes = calloc(cfg->n_virtual_services ? cfg->n_virtual_services : 1,
			      sizeof *r->vs_routes);
	if (!r->vs_routes)
		goto nomem;
	vs_only_hosts(r, cfg, true);
	for (uint32_t i = 0; i < r->nhosts; i++)
		if (compile_host(r, &r->hosts[i], id) < 0)
			goto nomem;
	if (add_aliases(r, id->ns) < 0)
		goto nomem;
	return 0;
nomem:
	rs_router_free(r);
	return -ENOMEM;
}

void rs_router_free(struct rs_router *r)
{
	for (uint32_t i = 0; r->slots && i <= r->mask; i++)
		if (r->slots[i].name && r->slots[i].name != r->hosts[r->slots[i].host].host)
			free((char *)r->slots[i].name); /* a short name */
	for (uint32_t i = 0; r->hosts && i < r->nhosts; i++) {
		struct rs_router_host *e = &r->hosts[i];

		free(e->port);
		free(e->cluster);
	}
	for (size_t i = 0; r->vs_routes && i < r->cfg->n_virtual_services; i++)
		for (size_t k = 0; r->vs_routes[i] && k < r->cfg->virtual_services[i].nhttp; k++)
			rs_router__route_free(&r->vs_routes[i][k]);
	free(r->vs_routes);
	rs_arena_free(&r->arena);
	free(r->hosts);
	free(r->slots);
	free(r->ns);
	r->vs_routes = NULL;
	r->hosts = NULL;
	r->slots = NULL;
	r->ns = NULL;
}

const struct rs_router_host *rs_router_host(const struct rs_router *r, const char *host)
{
	return find(r, host, strlen(host));
}

int rs_router_host_cluster(const struct rs_router_host *e, uint32_t port)
{
	if (!port)
		return e->default_idx;
	for (uint32_t k = 0; k < e->nports; k++)
		if (e->port[k] == port)
			return e->cluster[k];
	return -1;
}

/* The host of an authority and its port (0 when none is written), or false
 * when the authority is malformed or the host does not fit hostlen. */
static bool split_authority(const char *authority, size_t len, char *host, size_t hostlen,
			    size_t *hl_out, uint32_t *port_out)
{
	const char *colon = NULL, *end = authority + len;
	uint32_t port = 0;
	size_t hl;

	if (len && authority[0] == '[') {
		const char *rb = memchr(authority, ']', len);

		if (!rb)
			return false;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return false;
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
			return false;
		for (; p < end; p++) {
			if (!isdigit((unsigned char)*p))
				return false;
			port = port * 10 + (uint32_t)(*p - '0');
			if (port > 65535)
				return false;
		}
		if (port == 0)
			return false;
	}
	if (hl == 0 || hl >= hostlen)
		return false;
	for (size_t i = 0; i < hl; i++)
		host[i] = (char)tolower((unsigned char)authority[i]);
	host[hl] = '\0';
	*hl_out = hl;
	*port_out = port;
	return true;
}

const struct rs_router_host *rs_router_lookup(const struct rs_router *r, const char *authority,
					      size_t len, char *host, size_t hostlen,
					      uint32_t *port)
{
	const struct rs_router_host *e;
	size_t hl;

	if (!split_authority(authority, len, host, hostlen, &hl, port))
		return NULL;
	/* Short names were indexed with the hosts (add_aliases): one probe. */
	e = find(r, host, hl);
	if (e && !*port)
		*port = e->default_idx >= 0 ? r->clusters->v[e->default_idx].port : 80;
	return e;
}

int rs_router_match(const struct rs_router *r, const char *authority, size_t len, char *host,
		    size_t hostlen)
{
	uint32_t port;
	const struct rs_router_host *e = rs_router_lookup(r, authority, len, host, hostlen, &port);

	return e ? rs_router_host_cluster(e, port) : -1;
}

const struct rs_table_route *rs_router_route(const struct rs_router_host *e, uint32_t port,
					     const struct rs_msg *m, const char *scheme,
					     const struct rs_rmatch **matched)
{
	const struct rs_route_table *t = NULL;

	for (uint32_t k = 0; k < e->ntables && !t; k++)
		if (e->tables[k].port == port)
			t = &e->tables[k];
	if (!t && e->ntables)
		t = &e->tables[e->ntables - 1]; /* port 0: the ports not listed */
	return t ? rs_router__first_match(t, m, port, scheme, matched) : NULL;
}
