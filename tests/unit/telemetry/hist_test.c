/* Histograms: the log-linear one behind /stats percentiles and the fixed
 * Prometheus buckets behind /metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/telemetry.h"

static struct rs_hist *hist_new(void)
{
	struct rs_hist *h = calloc(1, sizeof *h);

	assert_non_null(h);
	return h;
}

/* --- bucket geometry --- */

static void test_small_values_exact(void **state)
{
	for (unsigned v = 0; v < RS_HIST_SUB; v++) {
		assert_int_equal(rs_hist_index(v), v);
		assert_int_equal(rs_loglin_lower(v, RS_HIST_SUB_BITS), v);
		assert_int_equal(rs_loglin_upper(v, RS_HIST_SUB_BITS), v);
	}
	/* 32..63 are still one value per bucket. */
	for (unsigned v = RS_HIST_SUB; v < 2 * RS_HIST_SUB; v++) {
		unsigned i = rs_hist_index(v);

		assert_int_equal(rs_loglin_lower(i, RS_HIST_SUB_BITS), v);
		assert_int_equal(rs_loglin_upper(i, RS_HIST_SUB_BITS), v);
	}
}

static void test_buckets_contiguous(void **state)
{
	assert_int_equal(rs_loglin_lower(0, RS_HIST_SUB_BITS), 0);
	for (unsigned i = 0; i < RS_HIST_BUCKETS; i++) {
		uint64_t lo = rs_loglin_lower(i, RS_HIST_SUB_BITS), hi = rs_loglin_upper(i, RS_HIST_SUB_BITS);

		assert_true(lo <= hi);
		assert_int_equal(rs_hist_index(lo), i);
		assert_int_equal(rs_hist_index(hi), i);
		if (i + 1 < RS_HIST_BUCKETS)
			assert_int_equal(rs_loglin_lower(i + 1, RS_HIST_SUB_BITS), hi + 1);
		/* Relative width at most 1/32 once buckets are wider than one. */
		if (lo >= RS_HIST_SUB)
			assert_true((hi - lo + 1) * RS_HIST_SUB <= lo);
	}
	/* The last bucket ends at 2^40 - 1; larger values are clamped into it. */
	assert_int_equal(rs_loglin_upper(RS_HIST_BUCKETS - 1, RS_HIST_SUB_BITS), (1ull << RS_HIST_MAX_BITS) - 1);
	assert_int_equal(rs_hist_index(1ull << RS_HIST_MAX_BITS), RS_HIST_BUCKETS - 1);
	assert_int_equal(rs_hist_index(UINT64_MAX), RS_HIST_BUCKETS - 1);
}

static void test_every_value_maps_into_its_bucket(void **state)
{
	/* Every value below 2^20, and for wider buckets the ends, their
	 * neighbours and random values in between. */
	for (uint64_t v = 0; v < (1u << 20); v++) {
		unsigned i = rs_hist_index(v);

		if (rs_loglin_lower(i, RS_HIST_SUB_BITS) > v || rs_loglin_upper(i, RS_HIST_SUB_BITS) < v)
			fail_msg("%llu in bucket %u [%llu, %llu]", (unsigned long long)v, i,
				 (unsigned long long)rs_loglin_lower(i, RS_HIST_SUB_BITS),
				 (unsigned long long)rs_loglin_upper(i, RS_HIST_SUB_BITS));
	}
	srand(1);
	for (unsigned i = 0; i < RS_HIST_BUCKETS; i++) {
		uint64_t lo = rs_loglin_lower(i, RS_HIST_SUB_BITS), hi = rs_loglin_upper(i, RS_HIST_SUB_BITS);

		for (int k = 0; k < 64; k++) {
			uint64_t r = ((uint64_t)rand() << 31) ^ (uint64_t)rand();
			uint64_t v = lo + r % (hi - lo + 1);

			assert_int_equal(rs_hist_index(v), i);
		}
		if (lo > 0)
			assert_int_equal(rs_hist_index(lo - 1), i - 1);
		if (i + 1 < RS_HIST_BUCKETS)
			assert_int_equal(rs_hist_index(hi + 1), i + 1);
	}
}

/* --- recording and quantiles --- */

static void test_empty_quantile_zero(void **state)
{
	struct rs_hist *h = hist_new();

	assert_int_equal(rs_hist_quantile(h, 0), 0);
	assert_int_equal(rs_hist_quantile(h, 0.5), 0);
	assert_int_equal(rs_hist_quantile(h, 0.99), 0);
	assert_int_equal(rs_hist_quantile(h, 1), 0);
	free(h);
}

static void test_uniform_1_to_10000(void **state)
{
	struct rs_hist *h = hist_new();
	uint64_t p50, p99, prev = 0;

	for (uint64_t v = 1; v <= 10000; v++)
		rs_hist_record(h, v);
	assert_int_equal(h->count, 10000);
	assert_int_equal(h->sum, 10000ull * 10001 / 2);
	assert_int_equal(h->max, 10000);

	p50 = rs_hist_quantile(h, 0.5);
	p99 = rs_hist_quantile(h, 0.99);
	assert_true(p50 >= 5000 && p50 <= 5000 + 5000 * 32 / 1000);
	assert_true(p99 >= 9900 && p99 <= 9900 + 9900 * 32 / 1000);
	assert_int_equal(rs_hist_quantile(h, 1.0), 10000);
	assert_int_equal(rs_hist_quantile(h, 0.99999), 10000);
	assert_int_equal(rs_hist_quantile(h, 0), 1);
	/* Quantiles never decrease with q. */
	for (double q = 0; q <= 1.0; q += 0.001) {
		uint64_t v = rs_hist_quantile(h, q);

		assert_true(v >= prev);
		assert_true(v <= 10000);
		prev = v;
	}
	free(h);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Against the exact order statistic of a skewed sample: the answer is never
 * below the true value and at most 1/32 above it. */
static void test_quantile_bounds_exact_rank(void **state)
{
	enum { N = 20000 };
	static const double qs[] = {0, 0.1, 0.5, 0.9, 0.99, 0.999};
	struct rs_hist *h = hist_new();
	static uint64_t v[N];

	srand(42);
	for (int i = 0; i < N; i++) {
		/* Mostly small, a long tail up to ~2^30. */
		v[i] = (uint64_t)rand() % 1000;
		if (rand() % 10 == 0)
			v[i] = (uint64_t)rand() << (rand() % 2);
		rs_hist_record(h, v[i]);
	}
	qsort(v, N, sizeof v[0], cmp_u64);
	for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
		uint64_t want = v[(size_t)(qs[k] * N)];
		uint64_t got = rs_hist_quantile(h, qs[k]);

		if (got < want || got > want + want / RS_HIST_SUB)
			fail_msg("q=%g: got %llu, exact %llu", qs[k], (unsigned long long)got,
				 (unsigned long long)want);
	}
	assert_int_equal(rs_hist_quantile(h, 1), v[N - 1]);
	assert_int_equal(h->max, v[N - 1]);
	free(h);
}

static void test_single_value(void **state)
{
	struct rs_hist *h = hist_new();

	/* The answer is capped at the recorded max, so a lone value is exact
	 * even in a wide bucket. */
	rs_hist_record(h, 123456);
	assert_int_equal(rs_hist_quantile(h, 0), 123456);
	assert_int_equal(rs_hist_quantile(h, 0.5), 123456);
	assert_int_equal(rs_hist_quantile(h, 1), 123456);
	free(h);
}

static void test_merge_equals_recording_both(void **state)
{
	struct rs_hist *a = hist_new(), *b = hist_new(), *both = hist_new(), *empty = hist_new();

	srand(3);
	for (int i = 0; i < 5000; i++) {
		uint64_t x = (uint64_t)rand() % 100000, y = (uint64_t)rand() % 3000000;

		rs_hist_record(a, x);
		rs_hist_record(both, x);
		rs_hist_record(b, y);
		rs_hist_record(both, y);
	}
	rs_hist_merge(a, b);
	assert_memory_equal(a, both, sizeof *a);
	assert_int_equal(rs_hist_quantile(a, 0.9), rs_hist_quantile(both, 0.9));

	/* Into an empty histogram: a copy. Merging an empty one: no change. */
	rs_hist_merge(empty, both);
	assert_memory_equal(empty, both, sizeof *empty);
	memset(b, 0, sizeof *b);
	rs_hist_merge(a, b);
	assert_memory_equal(a, both, sizeof *a);

	/* The max is the larger of the two, whichever side holds it. */
	memset(a, 0, sizeof *a);
	memset(b, 0, sizeof *b);
	rs_hist_record(a, 10);
	rs_hist_record(b, 5);
	rs_hist_merge(a, b);
	assert_int_equal(a->max, 10);
	rs_hist_merge(b, a);
	assert_int_equal(b->max, 10);
	free(a);
	free(b);
	free(both);
	free(empty);
}

/* --- Prometheus buckets --- */

static void test_prom_bounds_ascending(void **state)
{
	for (unsigned i = 1; i < RS_PROM_BOUNDS; i++)
		assert_true(rs_prom_bounds_us[i - 1] < rs_prom_bounds_us[i]);
}

static void test_prom_boundaries(void **state)
{
	for (unsigned i = 0; i < RS_PROM_BOUNDS; i++) {
		struct rs_prom_hist h = {0};
		uint64_t bound = rs_prom_bounds_us[i];

		/* le is "less than or equal": the bound itself is in bucket i. */
		rs_prom_hist_record(&h, bound);
		assert_int_equal(h.b[i], 1);
		rs_prom_hist_record(&h, bound + 1);
		assert_int_equal(h.b[i + 1], 1);
		if (i > 0) {
			/* One above the previous bound is the first value of bucket i. */
			rs_prom_hist_record(&h, rs_prom_bounds_us[i - 1] + 1);
			assert_int_equal(h.b[i], 2);
		}
	}
	{
		struct rs_prom_hist h = {0};

		rs_prom_hist_record(&h, 0);
		rs_prom_hist_record(&h, rs_prom_bounds_us[RS_PROM_BOUNDS - 1] + 1);
		rs_prom_hist_record(&h, UINT64_MAX / 2);
		assert_int_equal(h.b[0], 1);
		assert_int_equal(h.b[RS_PROM_BOUNDS], 2); /* +Inf */
		assert_int_equal(h.count, 3);
		assert_int_equal(h.sum, rs_prom_bounds_us[RS_PROM_BOUNDS - 1] + 1 + UINT64_MAX / 2);
	}
}

static void test_prom_merge(void **state)
{
	struct rs_prom_hist a = {0}, b = {0}, both = {0};

	for (uint64_t v = 0; v < 100000000; v = v * 3 + 7) {
		rs_prom_hist_record(&a, v);
		rs_prom_hist_record(&both, v);
		rs_prom_hist_record(&b, v / 2);
		rs_prom_hist_record(&both, v / 2);
	}
	rs_prom_hist_merge(&a, &b);
	assert_memory_equal(&a, &both, sizeof a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_values_exact),
		cmocka_unit_test(test_buckets_contiguous),
		cmocka_unit_test(test_every_value_maps_into_its_bucket),
		cmocka_unit_test(test_empty_quantile_zero),
		cmocka_unit_test(test_uniform_1_to_10000),
		cmocka_unit_test(test_quantile_bounds_exact_rank),
		cmocka_unit_test(test_single_value),
		cmocka_unit_test(test_merge_equals_recording_both),
		cmocka_unit_test(test_prom_bounds_ascending),
		cmocka_unit_test(test_prom_boundaries),
		cmocka_unit_test(test_prom_merge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
