#ifndef RINGSIDE_TELEMETRY_H
#define RINGSIDE_TELEMETRY_H

#include <stdio.h>

#include "ringside/telemetry-t.h"

/* Single-writer increments: a relaxed load and store, not a read-modify-write,
 * because only the owning shard writes and the reader tolerates a value that
 * is one update behind. */
static inline void rs_stat_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void rs_stat_inc(struct rs_stats *s, enum rs_counter c)
{
	rs_stat_add(&s->c[c], 1);
}

static inline void rs_stat_dec(struct rs_stats *s, enum rs_counter c)
{
	rs_stat_add(&s->c[c], (uint64_t)-1);
}

/* Log-linear bucketing, shared by the shard histograms (5 sub-bits) and the
 * load generator's (10 sub-bits, three significant digits): values below
 * 2^sub are their own bucket; above, each power of two is cut into 2^sub
 * buckets of equal width, so a bucket is at most 2^-sub of its values wide. */
static inline unsigned rs_loglin_index(uint64_t v, unsigned sub)
{
	unsigned e;

	if (v < (1ull << sub))
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* floor(log2 v) >= sub */
	return (1u << sub) + ((e - sub) << sub) + (unsigned)((v >> (e - sub)) - (1ull << sub));
}

/* Smallest value in bucket idx. */
static inline uint64_t rs_loglin_lower(unsigned idx, unsigned sub)
{
	unsigned n = 1u << sub;

	if (idx < n)
		return idx;
	return (uint64_t)(n + (idx - n) % n) << ((idx - n) / n);
}

/* Largest value in bucket idx. */
static inline uint64_t rs_loglin_upper(unsigned idx, unsigned sub)
{
	unsigned n = 1u << sub;

	if (idx < n)
		return idx;
	return rs_loglin_lower(idx, sub) + (1ull << ((idx - n) / n)) - 1;
}

/* The value at quantile q (0..1) of nb buckets: the upper bound of the bucket
 * holding that rank, capped at max. 0 when the buckets are empty. */
uint64_t rs_loglin_quantile(const uint64_t *b, unsigned nb, unsigned sub, uint64_t max, double q);

static inline unsigned rs_hist_index(uint64_t v)
{
	if (v >= (1ull << RS_HIST_MAX_BITS))
		return RS_HIST_BUCKETS - 1;
	return rs_loglin_index(v, RS_HIST_SUB_BITS);
}
void rs_hist_record(struct rs_hist *h, uint64_t v);
/* Adds src into dst; src may be written concurrently by its shard. */
void rs_hist_merge(struct rs_hist *dst, const struct rs_hist *src);
/* The value at quantile q (0..1): the upper bound of the bucket holding that
 * rank, capped at the recorded max. 0 for an empty histogram. */
uint64_t rs_hist_quantile(const struct rs_hist *h, double q);

extern const uint64_t rs_prom_bounds_us[RS_PROM_BOUNDS];
void rs_prom_hist_record(struct rs_prom_hist *h, uint64_t v);
void rs_prom_hist_merge(struct rs_prom_hist *dst, const struct rs_prom_hist *src);

void rs_stats_record_request(struct rs_stats *s, int status, uint64_t duration_us,
			     uint64_t added_us);
void rs_stats_merge(struct rs_stats *dst, const struct rs_stats *src);
/* Prometheus text exposition format (version 0.0.4). */
void rs_stats_write_prometheus(const struct rs_stats *s, FILE *f);
/* Admin /stats: one `name: value` a line, with latency percentiles. */
void rs_stats_write_text(const struct rs_stats *s, FILE *f);

#endif
