/* Timers: a binary min-heap per shard. The loop sleeps in io_uring_enter
 * until the earliest deadline, so a timer costs no submission. */
#include <errno.h>
#include <stdlib.h>

#include "ringside/core.h"

static void place(struct rs_timer_heap *h, uint32_t i, struct rs_timer *t)
{
	h->v[i] = t;
	t->heap_idx = i + 1;
}

static void sift_up(struct rs_timer_heap *h, uint32_t i)
{
	struct rs_timer *t = h->v[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (h->v[p]->at_ns <= t->at_ns)
			break;
		place(h, i, h->v[p]);
		i = p;
	}
	place(h, i, t);
}

static void sift_down(struct rs_timer_heap *h, uint32_t i)
{
	struct rs_timer *t = h->v[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1]->at_ns < h->v[c]->at_ns)
			c++;
		if (t->at_ns <= h->v[c]->at_ns)
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, t);
}

int rs_timer_arm(struct rs_timer_heap *h, struct rs_timer *t, uint64_t at_ns)
{
	if (rs_timer_armed(t)) {
		uint64_t old = t->at_ns;
		uint32_t i = t->heap_idx - 1;

		t->at_ns = at_ns;
		if (at_ns < old)
			sift_up(h, i);
		else
			sift_down(h, i);
		return 0;
	}
	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		struct rs_timer **v = realloc(h->v, cap * sizeof *v);

		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	t->at_ns = at_ns;
	h->v[h->n] = t;
	sift_up(h, h->n++);
	return 0;
}

void rs_timer_cancel(struct rs_timer_heap *h, struct rs_timer *t)
{
	uint32_t i;

	if (!rs_timer_armed(t))
		return;
	i = t->heap_idx - 1;
	t->heap_idx = 0;
	if (i == --h->n)
		return;
	h->v[i] = h->v[h->n];
	h->v[i]->heap_idx = i + 1;
	sift_down(h, i);
	sift_up(h, h->v[i]->heap_idx - 1);
}

uint64_t rs_timer_run(struct rs_timer_heap *h, uint64_t now)
{
	/* Bounded: a callback that re-arms at or before now runs again on the
	 * next loop turn instead of spinning here. */
	uint32_t budget = h->n;

	while (budget-- && h->n && h->v[0]->at_ns <= now) {
		struct rs_timer *t = h->v[0];

		rs_timer_cancel(h, t);
		t->fn(t);
	}
	return h->n ? h->v[0]->at_ns : UINT64_MAX;
}

void rs_timer_heap_free(struct rs_timer_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
