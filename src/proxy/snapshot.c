/* Snapshots: the compiled, immutable configuration that shards read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringside/config.h"
#include "ringside/core.h"
#include "ringside/proxy.h"
#include "ringside/tls-session.h"
#include "ringside/upstream.h"

int rs_snapshot_build(struct rs_config *cfg, const struct rs_identity *id, uint64_t generation,
		      unsigned nshards, const struct rs_snapshot *prev, struct rs_snapshot **out,
		      struct rs_diags *diags)
{
	struct rs_snapshot *s = calloc(1, sizeof *s);
	size_t stride;
	int ret = -ENOMEM;

	if (!s) {
		rs_config_free(cfg);
		return -ENOMEM;
	}
	s->generation = generation;
	s->loaded_at = (int64_t)time(NULL);
	s->cfg = cfg;
	s->nshards = nshards;
	ret = rs_clusters_build(cfg, id, &s->clusters, diags);
	if (ret == 0)
		ret = rs_cb_attach(&s->clusters, nshards);
	if (ret < 0)
		goto fail;
	ret = rs_router_init(&s->router, &s->clusters, cfg, id);
	if (ret < 0)
		goto fail;
	ret = rs_config_select(cfg, id, &s->selected);
	if (ret < 0)
		goto fail;
	if (id->cert_file && id->key_file && id->ca_file) {
		char err[200];

		s->inbound_tls = rs_tls_server_ctx_new(id->cert_file, id->key_file, id->ca_file, err,
						       sizeof err);
		/* Mid-rotation (a certificate without its key yet): the last
		 * good files stay in force. */
		if (!s->inbound_tls && prev && prev->inbound_tls) {
			rs_warn("tls: %s; the certificate in force stays", err);
			s->inbound_tls = rs_tls_ctx_ref(prev->inbound_tls);
		} else if (!s->inbound_tls) {
			rs_warn("tls: %s; the inbound port takes no mutual TLS", err);
		}
	}
	/* Each shard's part on cache lines of its own: shards write them on
	 * every request, and must never share a line. */
	stride = sizeof(struct rs_snap_shard) +
		 (s->clusters.n + 3 * (size_t)s->clusters.neps_total) * sizeof(uint32_t);
	stride = (stride + 63) & ~(size_t)63;
	s->shard_stride = stride;
	s->shard_parts = aligned_alloc(64, stride * (nshards ? nshards : 1));
	ret = -ENOMEM;
	if (!s->shard_parts)
		goto fail;
	memset(s->shard_parts, 0, stride * (nshards ? nshards : 1));
	s->eject = calloc(s->clusters.neps_total ? s->clusters.neps_total : 1, sizeof *s->eject);
	s->outlier_next = calloc(s->clusters.n ? s->clusters.n : 1, sizeof *s->outlier_next);
	if (!s->eject || !s->outlier_next)
		goto fail;
	*out = s;
	return 0;
fail:
	rs_snapshot_free(s);
	return ret;
}

void rs_snapshot_outlier_tick(struct rs_snapshot *s, uint64_t now)
{
	for (size_t i = 0; i < s->clusters.n; i++) {
		const struct rs_cluster *c = &s->clusters.v[i];
		const struct rs_outlier_detection *od = c->outlier_cfg;
		uint64_t interval;

		if (!od || now < s->outlier_next[i])
			continue;
		interval = od->interval.set && od->interval.ns ? od->interval.ns : 10000000000ull;
		s->outlier_next[i] = now + interval;
		/* Envoy: an endpoint that stayed in through an interval has its
		 * ejection multiplier lowered by one. */
		for (size_t e = 0; e < c->neps; e++) {
			struct rs_ejection *x = &s->eject[c->ep_base + e];
			uint32_t t = atomic_load_explicit(&x->times, memory_order_relaxed);

			if (t && atomic_load_explicit(&x->until_ns, memory_order_relaxed) <= now)
				atomic_compare_exchange_strong_explicit(&x->times, &t, t - 1,
									memory_order_relaxed,
									memory_order_relaxed);
		}
	}
}

void rs_snapshot_free(void *snapshot)
{
	struct rs_snapshot *s = snapshot;

	if (!s)
		return;
	rs_selected_free(&s->selected);
	rs_tls_ctx_free(s->inbound_tls);
	rs_router_free(&s->router);
	rs_clusters_free(&s->clusters);
	rs_config_free(s->cfg);
	free(s->shard_parts);
	free(s->eject);
	free(s->outlier_next);
	free(s);
}
