/* The load generator's bookkeeping: histograms, the schedule and results.
 * No I/O here, so that tests/unit/loadgen can check it exactly. */
#include <string.h>

#include "load.h"
#include "ringside/telemetry.h"

const char *const lg_error_names[LG_E_MAX] = {
	[LG_E_CONNECT] = "connect", [LG_E_TLS] = "tls",           [LG_E_RESET] = "reset",
	[LG_E_CLOSED] = "closed",   [LG_E_TIMEOUT] = "timeout",   [LG_E_PROTOCOL] = "protocol",
};

void lg_hist_reset(struct lg_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void lg_hist_record(struct lg_hist *h, uint64_t ns)
{
	unsigned i = ns >> LG_HIST_MAX_BITS ? LG_HIST_BUCKETS - 1 : rs_loglin_index(ns, LG_HIST_SUB);

	h->b[i]++;
	h->count++;
	h->sum += ns;
	if (ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
}

void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src)
{
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t lg_hist_quantile(const struct lg_hist *h, double q)
{
	return rs_loglin_quantile(h->b, LG_HIST_BUCKETS, LG_HIST_SUB, h->max, q);
}

void lg_sched_init(struct lg_sched *s, uint64_t start, double rate)
{
	s->start = start;
	s->rate = rate;
	s->issued = 0;
}

uint64_t lg_sched_at(const struct lg_sched *s, uint64_t i)
{
	/* From the start each time, not by adding an interval, so that rounding
	 * never accumulates over a long run. */
	return s->start + (uint64_t)((double)i * 1e9 / s->rate);
}

uint64_t lg_sched_backlog(const struct lg_sched *s, uint64_t now)
{
	uint64_t due;

	if (s->rate <= 0)
		return UINT64_MAX;
	if (now < s->start)
		return 0;
	/* Requests 0..due-1 are due: i * 1e9 / rate <= now - start. */
	due = (uint64_t)((double)(now - s->start) * s->rate / 1e9) + 1;
	while (due > 0 && lg_sched_at(s, due - 1) > now)
		due--;
	while (lg_sched_at(s, due) <= now)
		due++;
	return due > s->issued ? due - s->issued : 0;
}

uint64_t lg_sched_take(struct lg_sched *s, uint64_t now)
{
	uint64_t i = s->issued++;

	return s->rate <= 0 ? now : lg_sched_at(s, i);
}

void lg_result_reset(struct lg_result *r)
{
	memset(r, 0, sizeof(*r));
	lg_hist_reset(&r->corrected);
	lg_hist_reset(&r->uncorrected);
	lg_hist_reset(&r->lag);
}

void lg_result_done(struct lg_result *r, uint64_t due, uint64_t sent, uint64_t now, int status)
{
	unsigned cls = status >= 100 && status < 600 ? (unsigned)status / 100 : 0;

	r->completed++;
	r->status[cls]++;
	lg_hist_record(&r->corrected, now - due);
	lg_hist_record(&r->uncorrected, now - sent);
	lg_hist_record(&r->lag, sent - due);
}
