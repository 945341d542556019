#ifndef RINGSIDE_UPSTREAM_H
#define RINGSIDE_UPSTREAM_H

#include "ringside/config-t.h"
#include "ringside/upstream-t.h"

/* Builds one cluster per ServiceEntry host and port, with its endpoints
 * (its own, and the WorkloadEntries its workloadSelector picks; an
 * endpoint's port: its port named like the service port, else targetPort,
 * else the service port), and one per subset of the DestinationRules in
 * force for the host as workload id sees them, with the endpoints whose
 * labels the subset selects. Problems go to diags. Returns 0 or -ENOMEM. */
int rs_clusters_build(const struct rs_config *cfg, const struct rs_identity *id,
		      struct rs_clusters *out, struct rs_diags *diags);
void rs_clusters_free(struct rs_clusters *cs);
/* Index of the cluster for host, port and subset (NULL: the whole service),
 * or -1. */
int rs_clusters_find_subset(const struct rs_clusters *cs, const char *host, uint32_t port,
			    const char *subset);
/* Index of the whole service's cluster for host and port, or -1. */
int rs_clusters_find(const struct rs_clusters *cs, const char *host, uint32_t port);

/* Round robin over a cluster's endpoints with a counter the caller owns (one
 * per shard, so picking needs no shared write). NULL when it has none. */
static inline const struct rs_endpoint *rs_cluster_pick_rr(const struct rs_cluster *c,
							   uint32_t *rr)
{
	if (c->neps == 0)
		return NULL;
	return &c->eps[(*rr)++ % c->neps];
}

#endif
