/* Timers on a shard's heap: what the loop sees is the order callbacks run in
 * and the deadline rs_timer_run hands back for the next io_uring_enter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/core.h"

/* Every fired timer appends itself here, so a test reads the firing order. */
struct tt {
	struct rs_timer t; /* first: the callback gets &tt->t */
	int id;
};

static struct tt *fired[2048];
static size_t nfired;

static void on_fire(struct rs_timer *t)
{
	assert_true(nfired < sizeof fired / sizeof fired[0]);
	/* A timer is disarmed before its callback runs, so it may re-arm itself. */
	assert_false(rs_timer_armed(t));
	fired[nfired++] = (struct tt *)t;
}

static int reset(void **state)
{
	nfired = 0;
	return 0;
}

static void tt_init(struct tt *x, int id)
{
	memset(x, 0, sizeof *x);
	x->t.fn = on_fire;
	x->id = id;
}

static void test_fires_in_deadline_order(void **state)
{
	static const uint64_t at[] = {50, 10, 40, 30, 20, 60, 5};
	struct rs_timer_heap h = {0};
	struct tt t[7];

	for (int i = 0; i < 7; i++) {
		tt_init(&t[i], i);
		assert_int_equal(rs_timer_arm(&h, &t[i].t, at[i]), 0);
		assert_true(rs_timer_armed(&t[i].t));
	}
	assert_int_equal(rs_timer_run(&h, 0), 5);
	assert_int_equal(nfired, 0);

	/* Due means at_ns <= now: the timer at exactly 30 runs at 30. */
	assert_int_equal(rs_timer_run(&h, 30), 40);
	assert_int_equal(nfired, 4);
	assert_int_equal(fired[0]->id, 6);
	assert_int_equal(fired[1]->id, 1);
	assert_int_equal(fired[2]->id, 4);
	assert_int_equal(fired[3]->id, 3);
	for (size_t i = 0; i < nfired; i++)
		assert_false(rs_timer_armed(&fired[i]->t));

	assert_int_equal(rs_timer_run(&h, 1000), UINT64_MAX);
	assert_int_equal(nfired, 7);
	assert_int_equal(fired[4]->id, 2);
	assert_int_equal(fired[5]->id, 0);
	assert_int_equal(fired[6]->id, 5);
	rs_timer_heap_free(&h);
}

static void test_empty_heap_has_no_deadline(void **state)
{
	struct rs_timer_heap h = {0};
	struct tt a;

	assert_int_equal(rs_timer_run(&h, 0), UINT64_MAX);
	assert_int_equal(rs_timer_run(&h, UINT64_MAX), UINT64_MAX);

	tt_init(&a, 0);
	assert_int_equal(rs_timer_arm(&h, &a.t, 100), 0);
	rs_timer_cancel(&h, &a.t);
	assert_false(rs_timer_armed(&a.t));
	assert_int_equal(rs_timer_run(&h, 1000), UINT64_MAX);
	assert_int_equal(nfired, 0);
	rs_timer_heap_free(&h);
}

static void test_rearm_moves_timer(void **state)
{
	struct rs_timer_heap h = {0};
	struct tt a, b, c;

	tt_init(&a, 0);
	tt_init(&b, 1);
	tt_init(&c, 2);
	assert_int_equal(rs_timer_arm(&h, &a.t, 10), 0);
	assert_int_equal(rs_timer_arm(&h, &b.t, 20), 0);
	assert_int_equal(rs_timer_arm(&h, &c.t, 30), 0);

	/* Later: a moves behind c, and is queued once, not twice. */
	assert_int_equal(rs_timer_arm(&h, &a.t, 40), 0);
	assert_int_equal(h.n, 3);
	assert_int_equal(rs_timer_run(&h, 0), 20);
	/* Earlier: c moves to the front. */
	assert_int_equal(rs_timer_arm(&h, &c.t, 5), 0);
	assert_int_equal(h.n, 3);
	assert_int_equal(rs_timer_run(&h, 0), 5);

	assert_int_equal(rs_timer_run(&h, 100), UINT64_MAX);
	assert_int_equal(nfired, 3);
	assert_int_equal(fired[0]->id, 2);
	assert_int_equal(fired[1]->id, 1);
	assert_int_equal(fired[2]->id, 0);
	rs_timer_heap_free(&h);
}

static void test_cancel_middle_keeps_order(void **state)
{
	struct rs_timer_heap h = {0};
	struct tt t[15];

	for (int i = 0; i < 15; i++) {
		tt_init(&t[i], i);
		assert_int_equal(rs_timer_arm(&h, &t[i].t, (uint64_t)(i + 1) * 10), 0);
	}
	/* Neither the root nor the last leaf: an element whose replacement (the
	 * last leaf) must sift. */
	rs_timer_cancel(&h, &t[3].t);
	rs_timer_cancel(&h, &t[1].t);
	rs_timer_cancel(&h, &t[1].t); /* twice is harmless */
	assert_false(rs_timer_armed(&t[1].t));
	assert_false(rs_timer_armed(&t[3].t));
	assert_int_equal(h.n, 13);
	assert_int_equal(rs_timer_run(&h, 1000), UINT64_MAX);
	assert_int_equal(nfired, 13);
	for (size_t i = 1; i < nfired; i++)
		assert_true(fired[i - 1]->t.at_ns <= fired[i]->t.at_ns);
	for (size_t i = 0; i < nfired; i++)
		assert_true(fired[i]->id != 1 && fired[i]->id != 3);
	rs_timer_heap_free(&h);
}

/* A cancelled element replaced by the last leaf that is smaller than the
 * cancelled one's parent: the replacement must move up, not down. */
static void test_cancel_replacement_sifts_up(void **state)
{
	/* Heap (by index): 0:1, 1:100, 2:2, 3:101, 4:102, 5:3, 6:4. Cancelling
	 * index 4 (102) moves 4 under 100, which must rise above it. */
	static const uint64_t at[] = {1, 100, 2, 101, 102, 3, 4};
	struct rs_timer_heap h = {0};
	struct tt t[7];

	for (int i = 0; i < 7; i++) {
		tt_init(&t[i], i);
		assert_int_equal(rs_timer_arm(&h, &t[i].t, at[i]), 0);
	}
	assert_int_equal(t[4].t.heap_idx, 5);
	rs_timer_cancel(&h, &t[4].t);
	assert_int_equal(rs_timer_run(&h, 1000), UINT64_MAX);
	assert_int_equal(nfired, 6);
	assert_int_equal(fired[0]->t.at_ns, 1);
	assert_int_equal(fired[1]->t.at_ns, 2);
	assert_int_equal(fired[2]->t.at_ns, 3);
	assert_int_equal(fired[3]->t.at_ns, 4);
	assert_int_equal(fired[4]->t.at_ns, 100);
	assert_int_equal(fired[5]->t.at_ns, 101);
	rs_timer_heap_free(&h);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* 1000 timers armed, re-armed and cancelled at random, then run in steps:
 * the firing order must be the sorted list of the survivors' deadlines, and
 * every step's return the smallest deadline still pending. */
static void test_randomized_against_sort(void **state)
{
	enum { N = 1000 };
	struct rs_timer_heap h = {0};
	static struct tt t[N];
	static uint64_t want[N];
	size_t nwant = 0, k = 0;
	unsigned seed = 12345;

	srand(seed);
	for (int i = 0; i < N; i++) {
		tt_init(&t[i], i);
		assert_int_equal(rs_timer_arm(&h, &t[i].t, 1 + (uint64_t)(rand() % 5000)), 0);
	}
	for (int round = 0; round < 3000; round++) {
		struct tt *x = &t[rand() % N];

		switch (rand() % 3) {
		case 0:
			rs_timer_cancel(&h, &x->t);
			break;
		case 1:
			assert_int_equal(rs_timer_arm(&h, &x->t, 1 + (uint64_t)(rand() % 5000)),
					 0);
			break;
		default:
			if (!rs_timer_armed(&x->t))
				assert_int_equal(
					rs_timer_arm(&h, &x->t, 1 + (uint64_t)(rand() % 5000)), 0);
			break;
		}
	}
	for (int i = 0; i < N; i++)
		if (rs_timer_armed(&t[i].t))
			want[nwant++] = t[i].t.at_ns;
	assert_int_equal(h.n, nwant);
	assert_true(nwant > 0);
	qsort(want, nwant, sizeof want[0], cmp_u64);

	for (uint64_t now = 0; now <= 5000; now += 97) {
		uint64_t next = rs_timer_run(&h, now);

		while (k < nwant && want[k] <= now)
			k++;
		assert_int_equal(nfired, k);
		if (k < nwant)
			assert_int_equal(next, want[k]);
		else
			assert_int_equal(next, UINT64_MAX);
	}
	assert_int_equal(rs_timer_run(&h, 5001), UINT64_MAX);
	assert_int_equal(nfired, nwant);
	for (size_t i = 0; i < nwant; i++)
		assert_int_equal(fired[i]->t.at_ns, want[i]);
	rs_timer_heap_free(&h);
}

/* Callbacks that arm other timers, as a connect timeout arming a retry does. */
static struct rs_timer_heap *cb_heap;
static struct tt chain_b, chain_c;

static void arm_b_now(struct rs_timer *t)
{
	on_fire(t);
	/* Already due: runs on the next rs_timer_run call (the loop's next
	 * turn), never in a loop inside this one. */
	assert_int_equal(rs_timer_arm(cb_heap, &chain_b.t, t->at_ns), 0);
}

static void arm_c_later(struct rs_timer *t)
{
	on_fire(t);
	assert_int_equal(rs_timer_arm(cb_heap, &chain_c.t, 500), 0);
}

static unsigned self_fires;

static void rearm_self_now(struct rs_timer *t)
{
	self_fires++;
	rs_timer_arm(cb_heap, t, t->at_ns);
}

/* A callback that re-arms itself at a deadline already passed must not keep
 * rs_timer_run (and so the shard) spinning. */
static void test_rearm_due_does_not_spin(void **state)
{
	struct rs_timer_heap h = {0};
	struct rs_timer t = {.fn = rearm_self_now};

	(void)state;
	cb_heap = &h;
	self_fires = 0;
	assert_int_equal(rs_timer_arm(&h, &t, 10), 0);
	assert_int_equal(rs_timer_run(&h, 20), 10);
	assert_int_equal(self_fires, 1);
	assert_int_equal(rs_timer_run(&h, 20), 10);
	assert_int_equal(self_fires, 2);
	rs_timer_heap_free(&h);
}

static void test_callback_arms_another(void **state)
{
	struct rs_timer_heap h = {0};
	struct tt a;

	cb_heap = &h;
	tt_init(&a, 0);
	tt_init(&chain_b, 1);
	tt_init(&chain_c, 2);
	a.t.fn = arm_b_now;
	chain_b.t.fn = arm_c_later;

	assert_int_equal(rs_timer_arm(&h, &a.t, 100), 0);
	/* b, armed due by a's callback, waits for the next call; the deadline
	 * returned is already due so the loop does not sleep. */
	assert_int_equal(rs_timer_run(&h, 100), 100);
	assert_int_equal(nfired, 1);
	assert_int_equal(fired[0]->id, 0);
	assert_int_equal(rs_timer_run(&h, 100), 500);
	assert_int_equal(nfired, 2);
	assert_int_equal(fired[1]->id, 1);
	assert_true(rs_timer_armed(&chain_c.t));
	assert_int_equal(rs_timer_run(&h, 499), 500);
	assert_int_equal(rs_timer_run(&h, 500), UINT64_MAX);
	assert_int_equal(nfired, 3);
	assert_int_equal(fired[2]->id, 2);
	rs_timer_heap_free(&h);
}

/* A callback that re-arms itself (a periodic timer) and one that cancels a
 * timer that was due in the same run. */
static struct tt periodic, victim;

static void rearm_self(struct rs_timer *t)
{
	on_fire(t);
	assert_int_equal(rs_timer_arm(cb_heap, t, t->at_ns + 100), 0);
}

static void cancel_victim(struct rs_timer *t)
{
	on_fire(t);
	rs_timer_cancel(cb_heap, &victim.t);
}

static void test_callback_rearms_self_and_cancels(void **state)
{
	struct rs_timer_heap h = {0};
	struct tt killer;

	cb_heap = &h;
	tt_init(&periodic, 0);
	tt_init(&killer, 1);
	tt_init(&victim, 2);
	periodic.t.fn = rearm_self;
	killer.t.fn = cancel_victim;

	assert_int_equal(rs_timer_arm(&h, &periodic.t, 100), 0);
	assert_int_equal(rs_timer_arm(&h, &killer.t, 150), 0);
	assert_int_equal(rs_timer_arm(&h, &victim.t, 160), 0);
	/* At 250: periodic (100), killer (150), periodic again (200). */
	assert_int_equal(rs_timer_run(&h, 250), 300);
	assert_int_equal(nfired, 3);
	assert_int_equal(fired[0]->id, 0);
	assert_int_equal(fired[1]->id, 1);
	assert_int_equal(fired[2]->id, 0);
	assert_false(rs_timer_armed(&victim.t));
	assert_int_equal(h.n, 1);
	rs_timer_cancel(&h, &periodic.t);
	assert_int_equal(rs_timer_run(&h, 10000), UINT64_MAX);
	rs_timer_heap_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_fires_in_deadline_order, reset),
		cmocka_unit_test_setup(test_empty_heap_has_no_deadline, reset),
		cmocka_unit_test_setup(test_rearm_moves_timer, reset),
		cmocka_unit_test_setup(test_cancel_middle_keeps_order, reset),
		cmocka_unit_test_setup(test_cancel_replacement_sifts_up, reset),
		cmocka_unit_test_setup(test_randomized_against_sort, reset),
		cmocka_unit_test_setup(test_callback_arms_another, reset),
		cmocka_unit_test_setup(test_rearm_due_does_not_spin, reset),
		cmocka_unit_test_setup(test_callback_rearms_self_and_cancels, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
