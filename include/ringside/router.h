/* Routing: the request's authority picks a cluster. VirtualService routes come
 * with the traffic-management issue; for now a host and port name a cluster. */
#ifndef RINGSIDE_ROUTER_H
#define RINGSIDE_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "ringside/upstream-t.h"

/* One host and the clusters of its ports. */
struct rs_router_host {
	const char *host; /* borrowed from a cluster */
	uint32_t hash;
	uint32_t nports;
	uint32_t *port;  /* owns: port numbers */
	int *cluster;    /* owns: cluster index per port */
	int default_idx; /* port 80's cluster, else the only port's, else -1 */
};

struct rs_router {
	const struct rs_clusters *clusters; /* borrowed from the same snapshot */
	char *ns;                           /* owns: the proxy's namespace */
	struct rs_router_host *slots;       /* owns: open addressing by host */
	uint32_t mask;
};

int rs_router_init(struct rs_router *r, const struct rs_clusters *cs, const char *ns);
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
