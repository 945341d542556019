/* Circuit breakers: per-cluster limits held across the whole proxy with a
 * shard-local fast path (upstream-t.h, struct rs_cluster_state). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/upstream.h"

static struct rs_cluster_state *registry; /* main thread writes; shards read entries */

static struct rs_cluster_state *state_for(const char *name, unsigned nshards)
{
	struct rs_cluster_state *s;

	for (s = registry; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s;
	s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->name = strdup(name);
	s->local = aligned_alloc(64, (nshards ? nshards : 1) * sizeof *s->local);
	if (!s->name || !s->local) {
		free(s->name);
		free(s->local);
		free(s);
		return NULL;
	}
	memset(s->local, 0, (nshards ? nshards : 1) * sizeof *s->local);
	s->nshards = nshards;
	for (int k = 0; k < RS_CB__N; k++) {
		atomic_init(&s->limit[k], RS_CB_UNLIMITED);
		atomic_init(&s->pool[k], 0);
	}
	s->next = registry;
	registry = s;
	return s;
}

static uint32_t opt(const struct rs_opt_u32 *o)
{
	return o->set ? o->v : RS_CB_UNLIMITED;
}

/* A new limit: the pool gains (or loses) the difference, so that the pool,
 * the tokens shards hold and those in use always add up to the limit (to 0
 * while unlimited, when nothing new is counted); tokens in use come back
 * to the pool as they are released, whatever the limit is then. */
static void set_limit(struct rs_cluster_state *s, enum rs_cb_kind k, uint32_t limit)
{
	uint32_t old = atomic_load_explicit(&s->limit[k], memory_order_relaxed);

	if (old == limit)
		return;
	/* From or to unlimited: nothing was (or will be) counted there. */
	atomic_fetch_add_explicit(&s->pool[k],
				  (int64_t)(limit == RS_CB_UNLIMITED ? 0 : limit) -
				      (int64_t)(old == RS_CB_UNLIMITED ? 0 : old),
				  memory_order_relaxed);
	atomic_store_explicit(&s->limit[k], limit, memory_order_release);
}

int rs_cb_attach(struct rs_clusters *cs, unsigned nshards)
{
	for (size_t i = 0; i < cs->n; i++) {
		struct rs_cluster *c = &cs->v[i];
		const struct rs_conn_pool *p = c->pool_cfg;

		c->state = state_for(c->name, nshards);
		if (!c->state)
			return -ENOMEM;
		set_limit(c->state, RS_CB_CONNECTIONS, p ? opt(&p->max_connections) : RS_CB_UNLIMITED);
		set_limit(c->state, RS_CB_PENDING,
			  p ? opt(&p->http1_max_pending_requests) : RS_CB_UNLIMITED);
		set_limit(c->state, RS_CB_REQUESTS, p ? opt(&p->http2_max_requests) : RS_CB_UNLIMITED);
		set_limit(c->state, RS_CB_RETRIES, p ? opt(&p->max_retries) : RS_CB_UNLIMITED);
		c->connect_timeout_ns = p && p->connect_timeout.set ? p->connect_timeout.ns : 0;
		c->max_requests_per_connection =
		    p && p->max_requests_per_connection.set ? p->max_requests_per_connection.v : 0;
	}
	return 0;
}

void rs_cb_registry_free(void)
{
	while (registry) {
		struct rs_cluster_state *s = registry;

		registry = s->next;
		free(s->name);
		free(s->local);
		free(s);
	}
}

/* Tokens a shard takes from the pool at a time: an eighth of its even share,
 * so what shards hold unused stays a small part of the limit. */
static int64_t batch(const struct rs_cluster_state *s, uint32_t limit)
{
	int64_t b = (int64_t)limit / (8 * (int64_t)(s->nshards ? s->nshards : 1));

	return b > 0 ? b : 1;
}

int rs_cb_acquire(struct rs_cluster_state *s, enum rs_cb_kind k, unsigned shard)
{
	uint32_t limit;
	struct rs_cb_local *l;
	int64_t avail, take;

	if (!s)
		return RS_CB_FREE;
	limit = atomic_load_explicit(&s->limit[k], memory_order_relaxed);
	if (limit == RS_CB_UNLIMITED)
		return RS_CB_FREE;
	l = &s->local[shard];
	if (!l->tokens[k]) {
		avail = atomic_load_explicit(&s->pool[k], memory_order_relaxed);
		do {
			if (avail <= 0)
				return RS_CB_FULL;
			take = avail < batch(s, limit) ? avail : batch(s, limit);
		} while (!atomic_compare_exchange_weak_explicit(&s->pool[k], &avail, avail - take,
								memory_order_relaxed,
								memory_order_relaxed));
		l->tokens[k] += (uint32_t)take;
	}
	l->tokens[k]--;
	l->used[k]++;
	return RS_CB_TAKEN;
}

void rs_cb_release(struct rs_cluster_state *s, enum rs_cb_kind k, unsigned shard)
{
	uint32_t limit;
	struct rs_cb_local *l;
	int64_t keep;

	limit = atomic_load_explicit(&s->limit[k], memory_order_relaxed);
	l = &s->local[shard];
	l->used[k]--;
	l->tokens[k]++;
	/* Keep a batch for the next requests only while the pool could still
	 * give every shard one (and the limit stands): near the limit, and for
	 * small limits always, every token goes back, so no shard starves
	 * another. */
	keep = limit != RS_CB_UNLIMITED &&
			       atomic_load_explicit(&s->pool[k], memory_order_relaxed) >=
				   batch(s, limit) * (int64_t)s->nshards
		   ? batch(s, limit)
		   : 0;
	if ((int64_t)l->tokens[k] > keep) {
		atomic_fetch_add_explicit(&s->pool[k], (int64_t)l->tokens[k] - keep,
					  memory_order_relaxed);
		l->tokens[k] = (uint32_t)keep;
	}
}
