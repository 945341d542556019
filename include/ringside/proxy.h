#ifndef RINGSIDE_PROXY_H
#define RINGSIDE_PROXY_H

#include "ringside/proxy-t.h"

/* Builds a snapshot for nshards shards from loaded configuration, for the
 * workload id (takes cfg, even on failure); prev, the snapshot in force or
 * NULL, lends what cannot be rebuilt (certificates mid-rotation). */
int rs_snapshot_build(struct rs_config *cfg, const struct rs_identity *id, uint64_t generation,
		      unsigned nshards, const struct rs_snapshot *prev, struct rs_snapshot **out,
		      struct rs_diags *diags);
/* Main thread, at least once a second: outlierDetection.interval ticks
 * (an endpoint that stayed in through one has its ejection multiplier
 * lowered). */
void rs_snapshot_outlier_tick(struct rs_snapshot *s, uint64_t now);
/* Frees a snapshot (a void * for rs_rcu's free_obj). */
void rs_snapshot_free(void *snapshot);

/* Creates the shard's ring and listener on the calling thread. */
int rs_worker_init(struct rs_worker *w, unsigned id, int cpu, const struct rs_proxy_opts *o,
		   struct rs_proxy_shared *shared);
/* Runs the shard until it has drained; then frees what it owns. */
void *rs_worker_main(void *arg);
/* Called by the main thread: wakes the shard to look at shared state. */
void rs_worker_wake(struct rs_worker *w);

#endif
