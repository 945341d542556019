/* Load balancers (DestinationRule loadBalancer): round robin, random, least
 * request by two random choices, and consistent hashing on a ring or a
 * Maglev table, as Envoy implements the policies Istio names. Picking reads
 * the cluster and writes only the calling shard's counters. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/core.h"
#include "ringside/upstream.h"

/* xxHash, inlined from the library's header: Envoy hashes ring keys with
 * xxHash too, and XXH3 takes a few nanoseconds for a short key where a
 * byte-at-a-time hash takes one multiply per byte. */
#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t rs_lb_hash(const char *p, size_t n)
{
	return XXH3_64bits(p, n);
}

static uint32_t below(uint64_t *rng, size_t n)
{
	return (uint32_t)rs_uniform(rs_rng_next(rng), n);
}

/* The first point of c's ring at or after hash, or table_len when hash is
 * past the last. The lookup table over the hash's top bits narrows the
 * search to the points of one bucket, about one for the table's size (a
 * plain binary search over a ring of 1024 points took ten dependent and
 * mispredicted steps). */
static size_t ring_find(const struct rs_cluster *c, uint64_t hash)
{
	uint64_t b = hash >> c->ring_shift;
	size_t lo = c->ring_lut[b], hi = c->ring_lut[b + 1];

	while (hi - lo > 4) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->ring[mid] < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo < hi && c->ring[lo] < hash)
		lo++;
	return lo;
}

/* i is ejected: one of the healthy endpoints, at random, so that they share
 * its traffic evenly; i itself when fewer than minHealthPercent are healthy
 * (Envoy's panic mode); UINT32_MAX when none is and panic mode is off
 * (minHealthPercent 0, Istio's default): no healthy upstream. */
static uint32_t skip_ejected(const struct rs_cluster *c, const struct rs_lb_ctx *ctx, uint32_t i)
{
	size_t n = c->neps, healthy = 0, nth;

	for (size_t j = 0; j < n; j++)
		healthy += atomic_load_explicit(&ctx->eject[j].until_ns, memory_order_relaxed) <=
			   ctx->now;
	if (healthy * 100 < (size_t)ctx->min_health_pct * n)
		return i;
	if (!healthy)
		return UINT32_MAX;
	nth = below(ctx->rng, healthy);
	for (size_t j = 0; j < n; j++)
		if (atomic_load_explicit(&ctx->eject[j].until_ns, memory_order_relaxed) <= ctx->now &&
		    nth-- == 0)
			return (uint32_t)j;
	return i;
}

const struct rs_endpoint *rs_lb_pick(const struct rs_cluster *c, struct rs_lb_ctx *ctx,
				     uint32_t *idx)
{
	size_t n = c->neps;
	uint32_t i = 0, j;

	if (n == 0)
		return NULL;
	switch (c->lb) {
	case RS_LB_KIND_ROUND_ROBIN:
		i = (*ctx->rr)++ % (uint32_t)n;
		if (&c->eps[i] == ctx->avoid && n > 1)
			i = (*ctx->rr)++ % (uint32_t)n;
		break;
	case RS_LB_KIND_RANDOM:
		i = below(ctx->rng, n);
		if (&c->eps[i] == ctx->avoid && n > 1)
			i = (i + 1 + below(ctx->rng, n - 1)) % (uint32_t)n;
		break;
	case RS_LB_KIND_LEAST_REQUEST:
		/* Envoy's default choice count of 2 (power of two choices). */
		i = below(ctx->rng, n);
		if (n > 1) {
			j = (i + 1 + below(ctx->rng, n - 1)) % (uint32_t)n;
			if (&c->eps[i] == ctx->avoid ||
			    (&c->eps[j] != ctx->avoid && ctx->active[j] < ctx->active[i]))
				i = j;
		}
		break;
	case RS_LB_KIND_RING_HASH:
		if (!ctx->has_hash) {
			i = below(ctx->rng, n); /* no key in this request: any endpoint */
			break;
		} else {
			size_t lo = ring_find(c, ctx->hash);

			i = c->table[lo == c->table_len ? 0 : lo];
			/* A retry moves on along the ring to another endpoint. */
			for (size_t k = 1; &c->eps[i] == ctx->avoid && n > 1; k++)
				i = c->table[(lo + k) % c->table_len];
		}
		break;
	case RS_LB_KIND_PASSTHROUGH:
	case RS_LB_KIND_LOCAL:
		/* The endpoint is the request's original destination, or the
		 * local application, which only the stream knows
		 * (proxy/stream.c): none here. */
		return NULL;
	case RS_LB_KIND_MAGLEV:
		if (!ctx->has_hash) {
			i = below(ctx->rng, n);
			break;
		}
		i = c->table[ctx->hash % c->table_len];
		for (size_t k = 1; &c->eps[i] == ctx->avoid && n > 1; k++)
			i = c->table[(ctx->hash + k) % c->table_len];
		break;
	}
	if (ctx->eject && atomic_load_explicit(&ctx->eject[i].until_ns, memory_order_relaxed) > ctx->now)
		i = skip_ejected(c, ctx, i);
	if (i == UINT32_MAX)
		return NULL;
	*idx = i;
	return &c->eps[i];
}

static uint64_t point_hash(const char *name, size_t k)
{
	char key[128];
	int n = snprintf(key, sizeof key, "%s_%zu", name, k);

	return rs_lb_hash(key, (size_t)n);
}

static int cmp_points(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return (x[0] > y[0]) - (x[0] < y[0]);
}

/* The ring's lookup table: for each value of the hash's top `bits` bits, the
 * first point whose hash has them or more, and table_len at the end. About
 * one bucket a point, up to 64 Ki buckets (256 KiB) for the largest rings. */
static int build_ring_lut(struct rs_cluster *c)
{
	unsigned bits = 1;
	size_t nb, at = 0;

	while (bits < 16 && ((size_t)1 << bits) < c->table_len)
		bits++;
	nb = (size_t)1 << bits;
	c->ring_shift = 64 - bits;
	c->ring_lut = malloc((nb + 1) * sizeof *c->ring_lut);
	if (!c->ring_lut)
		return -ENOMEM;
	for (size_t b = 0; b < nb; b++) {
		while (at < c->table_len && (c->ring[at] >> c->ring_shift) < b)
			at++;
		c->ring_lut[b] = (uint32_t)at;
	}
	c->ring_lut[nb] = (uint32_t)c->table_len;
	return 0;
}

/* Envoy's ring hash: each endpoint gets ring_size / n points at the hashes
 * of "address_k"; a key goes to the first point at or after its hash. */
static int build_ring(struct rs_cluster *c)
{
	const struct rs_lb_settings *s = c->lb_cfg;
	size_t size = s && s->minimum_ring_size ? s->minimum_ring_size : 1024, per, len;
	uint64_t *pairs;

	if (size > (1u << 23))
		size = 1u << 23; /* Envoy's maximum ring size */
	per = (size + c->neps - 1) / c->neps;
	len = per * c->neps;
	pairs = malloc(len * 2 * sizeof *pairs);
	c->ring = malloc(len * sizeof *c->ring);
	c->table = malloc(len * sizeof *c->table);
	if (!pairs || !c->ring || !c->table) {
		free(pairs);
		return -ENOMEM;
	}
	for (size_t e = 0, at = 0; e < c->neps; e++) {
		for (size_t k = 0; k < per; k++, at++) {
			pairs[2 * at] = point_hash(c->eps[e].name, k);
			pairs[2 * at + 1] = e;
		}
	}
	qsort(pairs, len, 2 * sizeof *pairs, cmp_points);
	for (size_t i = 0; i < len; i++) {
		c->ring[i] = pairs[2 * i];
		c->table[i] = (uint32_t)pairs[2 * i + 1];
	}
	c->table_len = len;
	free(pairs);
	return build_ring_lut(c);
}

/* Maglev (Eisenbud et al., NSDI 2016, as Envoy implements it): endpoints
 * take turns claiming slots of a prime-sized table in the order of their
 * own permutation, so each owns an equal share and a change moves few. */
static bool prime(size_t n)
{
	if (n < 2)
		return false;
	for (size_t d = 2; d * d <= n; d++)
		if (n % d == 0)
			return false;
	return true;
}

static int build_maglev(struct rs_cluster *c)
{
	const struct rs_lb_settings *s = c->lb_cfg;
	size_t m = s && s->maglev_table_size ? s->maglev_table_size : 65537, filled = 0;

	/* The permutations cover every slot only for a prime size (Istio
	 * requires one); anything else, or a table smaller than the
	 * endpoints, takes the next prime up. */
	if (m < c->neps)
		m = c->neps;
	if (m > 5000011)
		m = 5000011;
	while (!prime(m))
		m++;
	uint64_t *offset = calloc(c->neps, sizeof *offset), *skip = calloc(c->neps, sizeof *skip);
	uint64_t *next = calloc(c->neps, sizeof *next);

	c->table = malloc(m * sizeof *c->table);
	if (!offset || !skip || !next || !c->table) {
		free(offset);
		free(skip);
		free(next);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m; i++)
		c->table[i] = UINT32_MAX;
	for (size_t e = 0; e < c->neps; e++) {
		offset[e] = point_hash(c->eps[e].name, 0) % m;
		skip[e] = point_hash(c->eps[e].name, 1) % (m - 1) + 1;
	}
	while (filled < m) {
		for (size_t e = 0; e < c->neps && filled < m; e++) {
			size_t slot;

			do {
				slot = (offset[e] + next[e]++ * skip[e]) % m;
			} while (c->table[slot] != UINT32_MAX);
			c->table[slot] = (uint32_t)e;
			filled++;
		}
	}
	c->table_len = m;
	free(offset);
	free(skip);
	free(next);
	return 0;
}

int rs_lb_build(struct rs_cluster *c)
{
	if (c->neps == 0)
		return 0;
	if (c->lb == RS_LB_KIND_RING_HASH)
		return build_ring(c);
	if (c->lb == RS_LB_KIND_MAGLEV)
		return build_maglev(c);
	return 0;
}
