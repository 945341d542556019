/* Publish and retire of immutable objects that shards read without locks:
 * quiescent-state-based reclamation (QSBR).
 *
 * The main thread publishes a new object with one atomic pointer store and
 * retires the one it replaces. Each reader (a shard) reports the oldest
 * generation it may still reference, after it has let go of older ones; a
 * retired object is freed once every reader has reported a newer one. The
 * read side is a load and, when something changed, one store to the reader's
 * own cache line: no read-modify-write, no lock. */
#ifndef RINGSIDE_RCU_H
#define RINGSIDE_RCU_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct rs_rcu_reader {
	/* The oldest generation this reader may still reference: 0 until it
	 * first reports, UINT64_MAX once it has stopped. */
	_Atomic uint64_t oldest;
	/* The generation its new requests start on (for status only). */
	_Atomic uint64_t current;
} __attribute__((aligned(64)));

struct rs_rcu_retired {
	void *obj;
	uint64_t gen;
};

struct rs_rcu {
	_Atomic(void *) cur;
	uint64_t gen; /* cur's generation; main thread only */
	struct rs_rcu_reader *readers; /* owns: nreaders */
	unsigned nreaders;
	struct rs_rcu_retired *retired; /* owns; main thread only */
	size_t nretired;
	size_t cap_retired;
	void (*free_obj)(void *obj);
};

/* Sets up nreaders readers and the first object (generation gen). */
int rs_rcu_init(struct rs_rcu *r, unsigned nreaders, void *obj, uint64_t gen,
		void (*free_obj)(void *obj));

/* Makes obj (of generation gen, greater than the current one) current and
 * retires the previous object. Returns 0, or -ENOMEM with nothing changed. */
int rs_rcu_publish(struct rs_rcu *r, void *obj, uint64_t gen);

/* Frees every retired object that no reader can reach any more. Returns how
 * many are still waiting. */
size_t rs_rcu_reclaim(struct rs_rcu *r);

/* Frees everything, the current object too; readers must have stopped. */
void rs_rcu_fini(struct rs_rcu *r);

/* The current object, for a reader. */
static inline void *rs_rcu_current(struct rs_rcu *r)
{
	return atomic_load_explicit(&r->cur, memory_order_acquire);
}

/* A reader's quiescent point: it starts new work on generation current and
 * no longer references any generation older than oldest. */
static inline void rs_rcu_report(struct rs_rcu_reader *rd, uint64_t oldest, uint64_t current)
{
	atomic_store_explicit(&rd->current, current, memory_order_relaxed);
	atomic_store_explicit(&rd->oldest, oldest, memory_order_release);
}

#endif
