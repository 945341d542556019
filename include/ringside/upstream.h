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

/* Picks an endpoint of c by its load balancer with the shard's counters in
 * ctx (no shared write), avoiding ctx->avoid when another is there; its
 * index in *idx. NULL when the cluster has none. */
const struct rs_endpoint *rs_lb_pick(const struct rs_cluster *c, struct rs_lb_ctx *ctx,
				     uint32_t *idx);
/* Gives each cluster of cs its budgets from the registry (created at first
 * use), set to the limits of its connectionPool; main thread only. 0 or
 * -ENOMEM. */
int rs_cb_attach(struct rs_clusters *cs, unsigned nshards);
/* Frees the registry; every shard must have stopped. */
void rs_cb_registry_free(void);
/* Takes one unit of kind for shard: RS_CB_TAKEN (give it back with
 * rs_cb_release), RS_CB_FREE (no limit: nothing to give back) or RS_CB_FULL
 * (the breaker is open). */
enum { RS_CB_FULL = -1, RS_CB_FREE = 0, RS_CB_TAKEN = 1 };
int rs_cb_acquire(struct rs_cluster_state *s, enum rs_cb_kind kind, unsigned shard);
/* Gives back a unit rs_cb_acquire returned RS_CB_TAKEN for. */
void rs_cb_release(struct rs_cluster_state *s, enum rs_cb_kind kind, unsigned shard);

/* Builds c's consistent-hash ring or Maglev table. 0 or -ENOMEM. */
int rs_lb_build(struct rs_cluster *c);
/* The 64-bit hash consistent hashing uses for a key. */
uint64_t rs_lb_hash(const char *p, size_t n);

#endif
