/* ringside-load's bookkeeping: three-digit histograms, the open-loop schedule,
 * and latency counted from the due time (coordinated omission corrected). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "load.h"
#include "ringside/telemetry.h"

#define US 1000ull
#define MS 1000000ull
#define S 1000000000ull

static struct lg_hist *hist_new(void)
{
	struct lg_hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	lg_hist_reset(h);
	return h;
}

/* Every value from 1 µs to 60 s lands in a bucket no wider than a thousandth
 * of it, and the quantile of a lone value is that value to three digits. */
static void test_hist_three_digits(void **state)
{
	struct lg_hist *h = hist_new();
	uint64_t v = 1 * US;

	while (v <= 60 * S) {
		unsigned i = rs_loglin_index(v, LG_HIST_SUB);
		uint64_t lo = rs_loglin_lower(i, LG_HIST_SUB), hi = rs_loglin_upper(i, LG_HIST_SUB);
		uint64_t q;

		assert_true(i < LG_HIST_BUCKETS);
		assert_true(lo <= v && v <= hi);
		assert_true((hi - lo + 1) * 1000 <= v);
		lg_hist_reset(h);
		lg_hist_record(h, v + 1); /* not the max: the bucket's bound is reported */
		lg_hist_record(h, v);
		q = lg_hist_quantile(h, 0.0);
		assert_true(q >= v && q - v <= v / 1000);
		v = v * 7 / 5 + 13;
	}
	free(h);
}

static void test_hist_quantiles(void **state)
{
	struct lg_hist *h = hist_new();
	uint64_t q;

	for (uint64_t k = 1; k <= 100000; k++)
		lg_hist_record(h, k * US);
	assert_int_equal(h->count, 100000);
	assert_int_equal(h->min, 1 * US);
	assert_int_equal(h->max, 100000 * US);
	assert_int_equal(h->sum / h->count, 50000 * US + 500);
	q = lg_hist_quantile(h, 0.5);
	assert_true(q >= 50000 * US && q <= 50050 * US);
	q = lg_hist_quantile(h, 0.99);
	assert_true(q >= 99000 * US && q <= 99100 * US);
	q = lg_hist_quantile(h, 0.9999);
	assert_true(q >= 99990 * US && q <= 100000 * US);
	assert_int_equal(lg_hist_quantile(h, 1.0), 100000 * US);
	lg_hist_reset(h);
	assert_int_equal(lg_hist_quantile(h, 0.5), 0);
	free(h);
}

static void test_hist_merge(void **state)
{
	struct lg_hist *a = hist_new(), *b = hist_new(), *both = hist_new();

	for (uint64_t k = 0; k < 5000; k++) {
		uint64_t x = (k * 2654435761u) % (3 * S), y = (k * 40503u) % (50 * MS);

		lg_hist_record(a, x);
		lg_hist_record(b, y);
		lg_hist_record(both, x);
		lg_hist_record(both, y);
	}
	lg_hist_merge(a, b);
	assert_memory_equal(a, both, sizeof(*a));
	free(a);
	free(b);
	free(both);
}

/* Beyond 2^36 ns values share the last bucket, yet the max stays exact. */
static void test_hist_clamp(void **state)
{
	struct lg_hist *h = hist_new();

	lg_hist_record(h, 100 * S);
	assert_int_equal(h->b[LG_HIST_BUCKETS - 1], 1);
	assert_int_equal(lg_hist_quantile(h, 0.5), 100 * S);
	assert_int_equal(lg_hist_quantile(h, 1.0), 100 * S);
	free(h);
}

static void test_sched_due_times(void **state)
{
	struct lg_sched s;

	lg_sched_init(&s, 5 * S, 3);
	assert_int_equal(lg_sched_at(&s, 0), 5 * S);
	assert_int_equal(lg_sched_at(&s, 1), 5 * S + 333333333);
	assert_int_equal(lg_sched_at(&s, 3), 6 * S);
	/* A day at 3/s: no drift from adding a rounded interval. */
	assert_int_equal(lg_sched_at(&s, 3 * 86400), 5 * S + 86400 * S);
}

static void test_sched_backlog(void **state)
{
	struct lg_sched s;

	lg_sched_init(&s, S, 1000);
	assert_int_equal(lg_sched_backlog(&s, S - 1), 0);
	assert_int_equal(lg_sched_backlog(&s, S), 1); /* request 0 is due at the start */
	assert_int_equal(lg_sched_backlog(&s, S + MS - 1), 1);
	assert_int_equal(lg_sched_backlog(&s, S + MS), 2);
	assert_int_equal(lg_sched_take(&s, S + 7 * MS), S);
	assert_int_equal(lg_sched_take(&s, S + 7 * MS), S + MS);
	/* Requests 0..10 are due at 10 ms; two were taken. */
	assert_int_equal(lg_sched_backlog(&s, S + 10 * MS), 9);
	for (unsigned i = 0; i < 9; i++)
		lg_sched_take(&s, S + 10 * MS);
	assert_int_equal(lg_sched_backlog(&s, S + 10 * MS), 0);
	assert_int_equal(lg_sched_backlog(&s, S + 11 * MS), 1);
}

static void test_sched_closed_loop(void **state)
{
	struct lg_sched s;

	lg_sched_init(&s, S, 0);
	assert_int_equal(lg_sched_backlog(&s, S), UINT64_MAX);
	assert_int_equal(lg_sched_take(&s, 42 * S), 42 * S);
	assert_int_equal(s.issued, 1);
}

/* One connection, 1000 requests a second for 10 s to a server that answers in
 * 50 µs but stalls for 100 ms once a second. A request can only be written
 * when the one before it is answered. Counted from the due time, about a
 * tenth of the requests wait through some of a stall, so the p99 shows it;
 * counted from the write, only one request a second does, and the p99 is the
 * 50 µs of a normal answer. */
static void test_stall_shows_when_corrected(void **state)
{
	struct lg_result *r = malloc(sizeof(*r));
	struct lg_sched s;
	uint64_t free_at = 0;

	assert_non_null(r);
	lg_result_reset(r);
	lg_sched_init(&s, 0, 1000);
	for (unsigned i = 0; i < 10000; i++) {
		uint64_t due = lg_sched_take(&s, 0);
		uint64_t sent = due > free_at ? due : free_at;
		uint64_t phase = sent % S, done;

		/* The stall: [500 ms, 600 ms) of every second. */
		if (phase >= 500 * MS && phase < 600 * MS)
			done = sent - phase + 600 * MS + 50 * US;
		else
			done = sent + 50 * US;
		free_at = done;
		lg_result_done(r, due, sent, done, 200);
	}
	assert_int_equal(r->completed, 10000);
	assert_int_equal(r->status[2], 10000);
	assert_true(lg_hist_quantile(&r->corrected, 0.99) >= 80 * MS);
	assert_true(lg_hist_quantile(&r->uncorrected, 0.99) <= 51 * US);
	assert_true(lg_hist_quantile(&r->uncorrected, 1.0) >= 99 * MS);
	assert_true(lg_hist_quantile(&r->lag, 0.99) >= 80 * MS);
	assert_true(lg_hist_quantile(&r->corrected, 0.5) <= 51 * US);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_three_digits),
		cmocka_unit_test(test_hist_quantiles),
		cmocka_unit_test(test_hist_merge),
		cmocka_unit_test(test_hist_clamp),
		cmocka_unit_test(test_sched_due_times),
		cmocka_unit_test(test_sched_backlog),
		cmocka_unit_test(test_sched_closed_loop),
		cmocka_unit_test(test_stall_shows_when_corrected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
