/* Consistent-hash picks: the ring's lookup by the hash's top bits finds
 * exactly the point a plain search of the ring finds, keys spread evenly
 * and stick to their endpoint, and a retry moves on to another. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/config-networking-t.h"
#include "ringside/upstream.h"

static struct rs_cluster *cluster(enum rs_lb_kind kind, size_t neps, uint64_t ring_size)
{
	static struct rs_lb_settings s;
	struct rs_cluster *c = calloc(1, sizeof *c);

	assert_non_null(c);
	s = (struct rs_lb_settings){.set = true, .consistent_hash = true,
				    .minimum_ring_size = ring_size};
	c->eps = calloc(neps, sizeof *c->eps);
	assert_non_null(c->eps);
	for (size_t e = 0; e < neps; e++) {
		char name[32];

		snprintf(name, sizeof name, "10.0.%zu.%zu:9080", e / 250, e % 250 + 1);
		c->eps[e].name = strdup(name);
	}
	c->neps = neps;
	c->lb = kind;
	c->lb_cfg = &s;
	assert_int_equal(rs_lb_build(c), 0);
	return c;
}

static void cluster_free(struct rs_cluster *c)
{
	for (size_t e = 0; e < c->neps; e++)
		free(c->eps[e].name);
	free(c->eps);
	free(c->ring);
	free(c->ring_lut);
	free(c->table);
	free(c);
}

static uint32_t pick(const struct rs_cluster *c, uint64_t hash, const struct rs_endpoint *avoid)
{
	uint32_t rr = 0, active[64] = {0}, idx = UINT32_MAX;
	uint64_t rng[2] = {1, 2};
	struct rs_lb_ctx ctx = {.rr = &rr, .active = active, .rng = rng, .has_hash = true,
				.hash = hash, .avoid = avoid};

	assert_non_null(rs_lb_pick(c, &ctx, &idx));
	return idx;
}

/* Envoy's rule by a plain binary search of the whole ring: the first point
 * at or after the hash, wrapping to the first point. */
static uint32_t ring_owner(const struct rs_cluster *c, uint64_t hash)
{
	size_t lo = 0, hi = c->table_len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->ring[mid] < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return c->table[lo == c->table_len ? 0 : lo];
}

static void check_against_scan(size_t neps, uint64_t ring_size)
{
	struct rs_cluster *c = cluster(RS_LB_KIND_RING_HASH, neps, ring_size);
	uint64_t x = 0x243f6a8885a308d3ull;

	for (int i = 0; i < 20000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		assert_int_equal(pick(c, x, NULL), ring_owner(c, x));
	}
	/* The edges: each point itself, one past it, and past the last. */
	for (size_t i = 0; i < c->table_len; i += 7) {
		assert_int_equal(pick(c, c->ring[i], NULL), c->table[i]);
		assert_int_equal(pick(c, c->ring[i] + 1, NULL), ring_owner(c, c->ring[i] + 1));
	}
	assert_int_equal(pick(c, UINT64_MAX, NULL), ring_owner(c, UINT64_MAX));
	assert_int_equal(pick(c, 0, NULL), c->table[0]);
	cluster_free(c);
}

static void test_ring_pick_is_the_first_point_at_or_after_the_hash(void **state)
{
	(void)state;
	check_against_scan(10, 1024);   /* Istio's default size */
	check_against_scan(3, 16);      /* fewer buckets than keys land in */
	check_against_scan(7, 300000);  /* more points than the table has buckets */
}

static void check_spread_and_stickiness(enum rs_lb_kind kind)
{
	struct rs_cluster *c = cluster(kind, 10, 0);
	unsigned count[10] = {0};
	const int n = 100000;

	for (int i = 0; i < n; i++) {
		char key[32];
		int len = snprintf(key, sizeof key, "user-%d", i);
		uint64_t h = rs_lb_hash(key, (size_t)len);
		uint32_t e = pick(c, h, NULL);

		count[e]++;
		assert_int_equal(pick(c, rs_lb_hash(key, (size_t)len), NULL), e);
		/* A retry avoids the endpoint it had. */
		assert_int_not_equal(pick(c, h, &c->eps[e]), e);
	}
	/* Even shares of 10%: a ring of 1024 points varies by a few
	 * percentage points per endpoint (Envoy's too), Maglev by less. */
	for (int e = 0; e < 10; e++) {
		assert_true(count[e] > n / 10 * 0.6);
		assert_true(count[e] < n / 10 * 1.4);
	}
	cluster_free(c);
}

static void test_ring_hash_spreads_and_sticks(void **state)
{
	(void)state;
	check_spread_and_stickiness(RS_LB_KIND_RING_HASH);
}

static void test_maglev_spreads_and_sticks(void **state)
{
	(void)state;
	check_spread_and_stickiness(RS_LB_KIND_MAGLEV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_pick_is_the_first_point_at_or_after_the_hash),
		cmocka_unit_test(test_ring_hash_spreads_and_sticks),
		cmocka_unit_test(test_maglev_spreads_and_sticks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
