/* Quiescent-state-based reclamation (rcu.h): a retired object is freed only
 * once every reader has reported a generation newer than it, and a reader
 * never sees a freed object. The two-thread test is meant for the ASan build,
 * where reading a freed object fails the run. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/rcu.h"

#define MAGIC  0x5a17c0de5a17c0deULL
#define POISON 0xdeaddeaddeaddeadULL

/* What a publisher builds: immutable once published. */
struct obj {
	uint64_t magic; /* MAGIC while alive, POISON once free_obj ran */
	uint64_t gen;
	/* gen's copies, read one by one by the reader thread: reading takes
	 * long enough for a premature free to land in the middle of it. */
	uint64_t body[32];
};

/* Frees counted by free_obj; the tests run one at a time, and the reader
 * thread of the two-thread test never frees. */
static _Atomic size_t nfreed;
/* The generations freed, in order, for the tests that check the order. */
static uint64_t freed_gen[64];

static struct obj *obj_new(uint64_t gen)
{
	struct obj *o = malloc(sizeof *o);

	assert_non_null(o);
	o->magic = MAGIC;
	o->gen = gen;
	for (size_t i = 0; i < sizeof o->body / sizeof o->body[0]; i++)
		o->body[i] = gen;
	return o;
}

static void free_obj(void *p)
{
	struct obj *o = p;
	size_t i;

	if (!o)
		return;
	assert_true(o->magic == MAGIC); /* never freed twice */
	i = atomic_fetch_add(&nfreed, 1);
	if (i < sizeof freed_gen / sizeof freed_gen[0])
		freed_gen[i] = o->gen;
	o->magic = POISON;
	memset(o->body, 0xde, sizeof o->body);
	free(o);
}

static int reset(void **state)
{
	(void)state;
	atomic_store(&nfreed, 0);
	memset(freed_gen, 0, sizeof freed_gen);
	return 0;
}

/* Nothing is freed while any reader still may hold the retired generation,
 * and it is freed as soon as the last one reports past it. */
static void test_waits_for_every_reader(void **state)
{
	struct rs_rcu r;

	(void)state;
	assert_int_equal(rs_rcu_init(&r, 3, obj_new(1), 1, free_obj), 0);
	assert_int_equal(((struct obj *)rs_rcu_current(&r))->gen, 1);
	for (unsigned i = 0; i < 3; i++)
		rs_rcu_report(&r.readers[i], 1, 1);

	assert_int_equal(rs_rcu_publish(&r, obj_new(2), 2), 0);
	assert_int_equal(((struct obj *)rs_rcu_current(&r))->gen, 2);
	/* Every reader may still be on generation 1. */
	assert_int_equal(rs_rcu_reclaim(&r), 1);
	assert_int_equal(nfreed, 0);

	rs_rcu_report(&r.readers[0], 2, 2);
	rs_rcu_report(&r.readers[2], 2, 2);
	assert_int_equal(rs_rcu_reclaim(&r), 1);
	assert_int_equal(nfreed, 0);

	/* Reporting the retired generation itself is not past it. */
	rs_rcu_report(&r.readers[1], 1, 2);
	assert_int_equal(rs_rcu_reclaim(&r), 1);
	assert_int_equal(nfreed, 0);

	rs_rcu_report(&r.readers[1], 2, 2);
	assert_int_equal(rs_rcu_reclaim(&r), 0);
	assert_int_equal(nfreed, 1);
	assert_int_equal(freed_gen[0], 1);
	/* Reclaiming again frees nothing twice. */
	assert_int_equal(rs_rcu_reclaim(&r), 0);
	assert_int_equal(nfreed, 1);

	rs_rcu_fini(&r);
	assert_int_equal(nfreed, 2);
}

/* A reader that has never reported (0) may hold anything: it blocks every
 * retired object, however old. */
static void test_reader_never_reported_blocks(void **state)
{
	struct rs_rcu r;

	(void)state;
	assert_int_equal(rs_rcu_init(&r, 2, obj_new(1), 1, free_obj), 0);
	rs_rcu_report(&r.readers[0], 5, 5);
	for (uint64_t g = 2; g <= 5; g++)
		assert_int_equal(rs_rcu_publish(&r, obj_new(g), g), 0);
	assert_int_equal(rs_rcu_reclaim(&r), 4);
	assert_int_equal(nfreed, 0);
	assert_int_equal(r.readers[1].oldest, 0);

	rs_rcu_report(&r.readers[1], 5, 5);
	assert_int_equal(rs_rcu_reclaim(&r), 0);
	assert_int_equal(nfreed, 4);
	rs_rcu_fini(&r);
	assert_int_equal(nfreed, 5);
}

/* A stopped reader (UINT64_MAX) holds nothing: with every reader stopped,
 * each retired object goes at the first reclaim. */
static void test_stopped_reader_never_blocks(void **state)
{
	struct rs_rcu r;

	(void)state;
	assert_int_equal(rs_rcu_init(&r, 2, obj_new(1), 1, free_obj), 0);
	rs_rcu_report(&r.readers[0], UINT64_MAX, 1);
	rs_rcu_report(&r.readers[1], 1, 1);
	assert_int_equal(rs_rcu_publish(&r, obj_new(2), 2), 0);
	assert_int_equal(rs_rcu_reclaim(&r), 1);
	assert_int_equal(nfreed, 0);

	/* The other reader moves on; the stopped one is not waited for. */
	rs_rcu_report(&r.readers[1], 2, 2);
	assert_int_equal(rs_rcu_reclaim(&r), 0);
	assert_int_equal(nfreed, 1);

	rs_rcu_report(&r.readers[1], UINT64_MAX, 2);
	for (uint64_t g = 3; g <= 10; g++) {
		assert_int_equal(rs_rcu_publish(&r, obj_new(g), g), 0);
		assert_int_equal(rs_rcu_reclaim(&r), 0);
		assert_int_equal(nfreed, g - 1);
	}
	rs_rcu_fini(&r);
	assert_int_equal(nfreed, 10);
}

/* Several retired objects: as the slowest reader advances, exactly the
 * generations older than it are freed, oldest first. */
static void test_frees_in_order_as_readers_advance(void **state)
{
	struct rs_rcu r;

	(void)state;
	assert_int_equal(rs_rcu_init(&r, 2, obj_new(10), 10, free_obj), 0);
	rs_rcu_report(&r.readers[0], 10, 10);
	rs_rcu_report(&r.readers[1], 10, 10);
	/* Generations need not be consecutive, only increasing; 20 retires
	 * the growth of the retired list past its first size (8). */
	for (uint64_t g = 11; g <= 30; g++)
		assert_int_equal(rs_rcu_publish(&r, obj_new(g), g), 0);
	assert_int_equal(rs_rcu_reclaim(&r), 20);
	assert_int_equal(nfreed, 0);

	rs_rcu_report(&r.readers[0], 30, 30);
	rs_rcu_report(&r.readers[1], 13, 30);
	assert_int_equal(rs_rcu_reclaim(&r), 17);
	assert_int_equal(nfreed, 3);
	assert_int_equal(freed_gen[0], 10);
	assert_int_equal(freed_gen[1], 11);
	assert_int_equal(freed_gen[2], 12);

	/* The slowest reader is now reader 0. */
	rs_rcu_report(&r.readers[1], 30, 30);
	rs_rcu_report(&r.readers[0], 25, 30);
	assert_int_equal(rs_rcu_reclaim(&r), 5);
	assert_int_equal(nfreed, 15);
	for (size_t i = 0; i < 15; i++)
		assert_int_equal(freed_gen[i], 10 + i);

	rs_rcu_report(&r.readers[0], 30, 30);
	assert_int_equal(rs_rcu_reclaim(&r), 0);
	assert_int_equal(nfreed, 20);
	for (size_t i = 0; i < 20; i++)
		assert_int_equal(freed_gen[i], 10 + i);
	/* The current one is never freed by reclaim. */
	assert_int_equal(((struct obj *)rs_rcu_current(&r))->magic, MAGIC);
	rs_rcu_fini(&r);
	assert_int_equal(nfreed, 21);
	assert_int_equal(freed_gen[20], 30);
}

/* With no reader at all nothing can hold a retired object. */
static void test_no_readers(void **state)
{
	struct rs_rcu r;

	(void)state;
	assert_int_equal(rs_rcu_init(&r, 0, obj_new(1), 1, free_obj), 0);
	assert_int_equal(rs_rcu_publish(&r, obj_new(2), 2), 0);
	assert_int_equal(rs_rcu_reclaim(&r), 0);
	assert_int_equal(nfreed, 1);
	rs_rcu_fini(&r);
	assert_int_equal(nfreed, 2);
}

/* fini frees what is still retired and the current object, once each. */
static void test_fini_frees_current_and_retired(void **state)
{
	struct rs_rcu r;

	(void)state;
	assert_int_equal(rs_rcu_init(&r, 1, obj_new(1), 1, free_obj), 0);
	for (uint64_t g = 2; g <= 4; g++)
		assert_int_equal(rs_rcu_publish(&r, obj_new(g), g), 0);
	/* The reader never reported: all three are still waiting. */
	assert_int_equal(rs_rcu_reclaim(&r), 3);
	assert_int_equal(nfreed, 0);
	rs_rcu_fini(&r);
	assert_int_equal(nfreed, 4);
	assert_int_equal(freed_gen[0], 1);
	assert_int_equal(freed_gen[1], 2);
	assert_int_equal(freed_gen[2], 3);
	assert_int_equal(freed_gen[3], 4);
	assert_null(r.readers);
	assert_null(r.retired);
}

#define READS     100000
#define PUBLISHES 2000
#define STEP      (READS / PUBLISHES)

struct reader_arg {
	struct rs_rcu *r;
	struct rs_rcu_reader *rd;
	_Atomic size_t done;        /* reads so far, for the publisher's pace */
	_Atomic uint64_t published; /* the newest generation, for the reader's */
	size_t bad;                 /* reads that found a freed or torn object */
	size_t backward;            /* reads that saw a generation older than the last */
	size_t changes;             /* reads that saw a newer generation than the last */
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	uint64_t last = 0;

	for (size_t i = 0; i < READS; i++) {
		const struct obj *o;
		uint64_t g;

		/* STEP reads a generation at most, or the reader would be
		 * done before the publisher has begun. */
		while (atomic_load_explicit(&a->published, memory_order_relaxed) < i / STEP + 1)
			sched_yield();
		o = rs_rcu_current(a->r);
		g = o->gen;

		if (o->magic != MAGIC)
			a->bad++;
		for (size_t j = 0; j < sizeof o->body / sizeof o->body[0]; j++)
			if (o->body[j] != g)
				a->bad++;
		if (o->magic != MAGIC)
			a->bad++;
		if (g < last)
			a->backward++;
		a->changes += g > last;
		last = g;
		/* Done with every generation older than g; o itself may be
		 * held until the next report. */
		rs_rcu_report(a->rd, g, g);
		atomic_store_explicit(&a->done, i + 1, memory_order_relaxed);
	}
	rs_rcu_report(a->rd, UINT64_MAX, last);
	return NULL;
}

/* A reader thread reads the current object in a loop while the main thread
 * publishes and reclaims, paced so that the two overlap: the reader never
 * sees a freed object (ASan stops on the read; the poison shows in bad in
 * the other build), and at the end every object has been freed once. */
static void test_reader_thread_against_publisher(void **state)
{
	struct reader_arg a = {0};
	struct rs_rcu r;
	pthread_t t;

	(void)state;
	assert_int_equal(rs_rcu_init(&r, 1, obj_new(1), 1, free_obj), 0);
	a.r = &r;
	a.rd = &r.readers[0];
	atomic_init(&a.published, 1);
	assert_int_equal(pthread_create(&t, NULL, reader_main, &a), 0);
	for (uint64_t g = 2; g <= PUBLISHES + 1; g++) {
		/* One publish every STEP reads, halfway through the reader's
		 * share of the previous generation: the reader is busy
		 * reading when the object it reads is retired. */
		while (atomic_load_explicit(&a.done, memory_order_relaxed) <
		       (g - 2) * STEP + STEP / 2)
			sched_yield();
		assert_int_equal(rs_rcu_publish(&r, obj_new(g), g), 0);
		atomic_store_explicit(&a.published, g, memory_order_relaxed);
		rs_rcu_reclaim(&r);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(a.bad, 0);
	assert_int_equal(a.backward, 0);
	/* The reader saw the generations go by, so the test means something. */
	assert_true(a.changes > PUBLISHES / 2);
	/* The reader has stopped: everything retired can go now. */
	assert_int_equal(rs_rcu_reclaim(&r), 0);
	assert_int_equal(nfreed, PUBLISHES);
	rs_rcu_fini(&r);
	assert_int_equal(nfreed, PUBLISHES + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_waits_for_every_reader, reset),
	    cmocka_unit_test_setup(test_reader_never_reported_blocks, reset),
	    cmocka_unit_test_setup(test_stopped_reader_never_blocks, reset),
	    cmocka_unit_test_setup(test_frees_in_order_as_readers_advance, reset),
	    cmocka_unit_test_setup(test_no_readers, reset),
	    cmocka_unit_test_setup(test_fini_frees_current_and_retired, reset),
	    cmocka_unit_test_setup(test_reader_thread_against_publisher, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
