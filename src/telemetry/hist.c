/* Log-linear histograms (see telemetry-t.h) and Prometheus' fixed buckets. */
#include <string.h>

#include "ringside/telemetry.h"

static inline uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void rs_hist_record(struct rs_hist *h, uint64_t v)
{
	unsigned i = rs_hist_index(v);

	rs_stat_add(&h->b[i], 1);
	rs_stat_add(&h->count, 1);
	rs_stat_add(&h->sum, v);
	if (v > ld(&h->max))
		__atomic_store_n(&h->max, v, __ATOMIC_RELAXED);
}

void rs_hist_merge(struct rs_hist *dst, const struct rs_hist *src)
{
	uint64_t m = ld(&src->max);

	for (unsigned i = 0; i < RS_HIST_BUCKETS; i++)
		dst->b[i] += ld(&src->b[i]);
	dst->count += ld(&src->count);
	dst->sum += ld(&src->sum);
	if (m > dst->max)
		dst->max = m;
}

uint64_t rs_loglin_quantile(const uint64_t *b, unsigned nb, unsigned sub, uint64_t max, double q)
{
	uint64_t total = 0, rank, seen = 0;

	for (unsigned i = 0; i < nb; i++)
		total += b[i];
	if (total == 0)
		return 0;
	if (q >= 1)
		return max;
	if (q < 0)
		q = 0;
	rank = (uint64_t)(q * (double)total);
	if (rank >= total)
		rank = total - 1;
	for (unsigned i = 0; i < nb; i++) {
		seen += b[i];
		if (seen > rank) {
			/* The last bucket also holds everything above the range. */
			uint64_t u = i == nb - 1 ? max : rs_loglin_upper(i, sub);

			return u < max ? u : max;
		}
	}
	return max;
}

uint64_t rs_hist_quantile(const struct rs_hist *h, double q)
{
	return rs_loglin_quantile(h->b, RS_HIST_BUCKETS, RS_HIST_SUB_BITS, h->max, q);
}

/* Upper bounds in microseconds, 25 µs to 60 s: fine at the low end, where a
 * sidecar's own latency lives, and up to Envoy's common timeouts. */
const uint64_t rs_prom_bounds_us[RS_PROM_BOUNDS] = {
	25,     50,     100,     250,     500,     1000,    2500,     5000,     10000,    25000,
	50000,  100000, 250000,  500000,  1000000, 2500000, 5000000,  10000000, 30000000, 60000000,
};

void rs_prom_hist_record(struct rs_prom_hist *h, uint64_t v)
{
	unsigned i = 0;

	while (i < RS_PROM_BOUNDS && v > rs_prom_bounds_us[i])
		i++;
	rs_stat_add(&h->b[i], 1);
	rs_stat_add(&h->count, 1);
	rs_stat_add(&h->sum, v);
}

void rs_prom_hist_merge(struct rs_prom_hist *dst, const struct rs_prom_hist *src)
{
	for (unsigned i = 0; i <= RS_PROM_BOUNDS; i++)
		dst->b[i] += ld(&src->b[i]);
	dst->count += ld(&src->count);
	dst->sum += ld(&src->sum);
}
