/* Quiescent-state-based reclamation of published snapshots (rcu.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/rcu.h"

int rs_rcu_init(struct rs_rcu *r, unsigned nreaders, void *obj, uint64_t gen,
		void (*free_obj)(void *obj))
{
	memset(r, 0, sizeof *r);
	r->readers = aligned_alloc(64, (nreaders ? nreaders : 1) * sizeof *r->readers);
	if (!r->readers)
		return -ENOMEM;
	for (unsigned i = 0; i < nreaders; i++) {
		atomic_init(&r->readers[i].oldest, 0);
		atomic_init(&r->readers[i].current, 0);
	}
	r->nreaders = nreaders;
	r->free_obj = free_obj;
	r->gen = gen;
	atomic_init(&r->cur, obj);
	return 0;
}

int rs_rcu_publish(struct rs_rcu *r, void *obj, uint64_t gen)
{
	void *old = atomic_load_explicit(&r->cur, memory_order_relaxed);

	if (r->nretired == r->cap_retired) {
		size_t cap = r->cap_retired ? r->cap_retired * 2 : 8;
		struct rs_rcu_retired *v = realloc(r->retired, cap * sizeof *v);

		if (!v)
			return -ENOMEM;
		r->retired = v;
		r->cap_retired = cap;
	}
	/* The release store orders every write that built obj before any
	 * reader can load the pointer. */
	atomic_store_explicit(&r->cur, obj, memory_order_release);
	r->retired[r->nretired++] = (struct rs_rcu_retired){old, r->gen};
	r->gen = gen;
	return 0;
}

size_t rs_rcu_reclaim(struct rs_rcu *r)
{
	uint64_t min = UINT64_MAX;
	size_t kept = 0;

	if (!r->nretired)
		return 0;
	for (unsigned i = 0; i < r->nreaders; i++) {
		uint64_t o = atomic_load_explicit(&r->readers[i].oldest, memory_order_acquire);

		if (o < min)
			min = o;
	}
	for (size_t i = 0; i < r->nretired; i++) {
		if (r->retired[i].gen < min)
			r->free_obj(r->retired[i].obj);
		else
			r->retired[kept++] = r->retired[i];
	}
	r->nretired = kept;
	return kept;
}

void rs_rcu_fini(struct rs_rcu *r)
{
	for (size_t i = 0; i < r->nretired; i++)
		r->free_obj(r->retired[i].obj);
	if (r->free_obj)
		r->free_obj(atomic_load(&r->cur));
	free(r->retired);
	free(r->readers);
	memset(r, 0, sizeof *r);
}
