/* Routing: the request's authority picks a host, and the host's
 * VirtualService routes for the port (compiled here, matched by the
 * traffic-management issue's router) pick a cluster; today a host and port
 * name their service's cluster. */
#ifndef RINGSIDE_ROUTER_H
#define RINGSIDE_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "ringside/config-t.h"
#include "ringside/upstream-t.h"

struct rs_virtual_service;
struct rs_vs_http_route;

/* The http routes of a host's VirtualService that can match on one port, in
 * the order written (first match wins). */
struct rs_route_table {
	uint32_t port; /* 0: any port the host's services do not list */
	const struct rs_vs_http_route **routes; /* owns the array; borrowed routes */
	uint32_t nroutes;
};

/* One host: the clusters of its ports and its routes. */
struct rs_router_host {
	const char *host; /* borrowed from a cluster or a VirtualService */
	uint32_t hash;
	uint32_t nports;
	uint32_t *port;  /* owns: port numbers */
	int *cluster;    /* owns: cluster index per port */
	int default_idx; /* port 80's cluster, else the only port's, else -1 */
	const struct rs_virtual_service *vs; /* borrowed; NULL: none applies */
	struct rs_route_table *tables; /* owns: one per port, then port 0 */
	uint32_t ntables;
};

struct rs_router {
	const struct rs_clusters *clusters; /* borrowed from the same snapshot */
	char *ns;                           /* owns: the proxy's namespace */
	struct rs_router_host *slots;       /* owns: open addressing by host */
	uint32_t mask;
};

/* Indexes the hosts of cs and, when cfg is not NULL, compiles for each host
 * the VirtualService that applies to it from namespace ns (Istio: one whose
 * gateways include `mesh` or are empty, exported to ns, with the most
 * specific host; among equals the first loaded) into route tables by port.
 * Hosts that only a VirtualService names are indexed too. 0 or -ENOMEM. */
int rs_router_init(struct rs_router *r, const struct rs_clusters *cs,
		   const struct rs_config *cfg, const char *ns);
/* The host's entry for an exact host name, or NULL. */
const struct rs_router_host *rs_router_host(const struct rs_router *r, const char *host);
void rs_router_free(struct rs_router *r);

/* The cluster for an authority ("reviews", "reviews:9080", "[::1]:80"), or -1.
 * Short names resolve in the proxy's namespace as Kubernetes DNS search paths
 * do: `reviews` and `reviews.ns` and `reviews.ns.svc` mean
 * `reviews.ns.svc.cluster.local`. Without a port, a host with one port
 * matches it, else port 80. The host written into host (lower case, without
 * port) is what the 404 message names. */
int rs_router_match(const struct rs_router *r, const char *authority, size_t len, char *host,
		    size_t hostlen);

#endif
