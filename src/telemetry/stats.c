/* Per-shard statistics: recording on the shard, merging and printing on the
 * main thread. */
#include <string.h>

#include "ringside/telemetry.h"

void rs_stats_record_request(struct rs_stats *s, int status, uint64_t duration_us,
			     uint64_t added_us)
{
	int cls = status / 100;

	rs_stat_inc(s, RS_C_DS_RQ_TOTAL);
	if (cls >= 1 && cls <= 5)
		rs_stat_inc(s, (enum rs_counter)(RS_C_DS_RQ_1XX + cls - 1));
	rs_hist_record(&s->rq_duration, duration_us);
	rs_hist_record(&s->added, added_us);
	rs_prom_hist_record(&s->rq_duration_prom, duration_us);
	rs_prom_hist_record(&s->added_prom, added_us);
}

void rs_stats_merge(struct rs_stats *dst, const struct rs_stats *src)
{
	for (unsigned i = 0; i < RS_C__COUNT; i++)
		dst->c[i] += __atomic_load_n(&src->c[i], __ATOMIC_RELAXED);
	for (unsigned i = 0; i < RS_GRPC_STATUSES; i++)
		dst->grpc[i] += __atomic_load_n(&src->grpc[i], __ATOMIC_RELAXED);
	rs_hist_merge(&dst->rq_duration, &src->rq_duration);
	rs_hist_merge(&dst->added, &src->added);
	rs_prom_hist_merge(&dst->rq_duration_prom, &src->rq_duration_prom);
	rs_prom_hist_merge(&dst->added_prom, &src->added_prom);
}

struct metric {
	const char *name;
	const char *type;
	const char *help;
	enum rs_counter c;
};

static const struct metric metrics[] = {
	{"ringside_downstream_cx_total", "counter", "Downstream connections accepted.",
	 RS_C_DS_CX_TOTAL},
	{"ringside_downstream_cx_active", "gauge", "Downstream connections open.",
	 RS_C_DS_CX_ACTIVE},
	{"ringside_downstream_cx_overflow_total", "counter",
	 "Downstream connections refused by --max-connections.", RS_C_DS_CX_OVERFLOW},
	{"ringside_downstream_rx_bytes_total", "counter", "Bytes received from downstream.",
	 RS_C_DS_RX_BYTES},
	{"ringside_downstream_tx_bytes_total", "counter", "Bytes sent to downstream.",
	 RS_C_DS_TX_BYTES},
	{"ringside_downstream_rq_active", "gauge", "Downstream requests in flight.",
	 RS_C_DS_RQ_ACTIVE},
	{"ringside_downstream_rq_rejected_total", "counter",
	 "Requests refused for framing errors or limits (400, 431).", RS_C_DS_RQ_REJECTED},
	{"ringside_upstream_cx_total", "counter", "Upstream connections opened.",
	 RS_C_US_CX_TOTAL},
	{"ringside_upstream_cx_active", "gauge", "Upstream connections open.", RS_C_US_CX_ACTIVE},
	{"ringside_upstream_cx_connect_fail_total", "counter",
	 "Upstream connection attempts that failed (refused, unreachable or timed out).",
	 RS_C_US_CX_CONNECT_FAIL},
	{"ringside_upstream_cx_connect_timeout_total", "counter",
	 "Upstream connection attempts that timed out.", RS_C_US_CX_CONNECT_TIMEOUT},
	{"ringside_upstream_cx_reused_total", "counter",
	 "Requests sent on a pooled keep-alive upstream connection.", RS_C_US_CX_REUSED},
	{"ringside_upstream_rq_timeout_total", "counter",
	 "Tries that hit the route timeout or a retry policy's per-try timeout.", RS_C_US_RQ_TIMEOUT},
	{"ringside_upstream_rq_retry_total", "counter",
	 "Tries after the first, sent by a route's retry policy.", RS_C_US_RQ_RETRY},
	{"ringside_upstream_rq_reset_total", "counter",
	 "Upstream connections reset or closed before the response ended.", RS_C_US_RQ_RESET},
	{"ringside_downstream_cx_tls_total", "counter",
	 "Downstream TLS connections that carried a request.", RS_C_DS_CX_TLS},
	{"ringside_downstream_cx_tls_resumed_total", "counter",
	 "Downstream TLS connections whose handshake resumed an earlier session.",
	 RS_C_DS_CX_TLS_RESUMED},
	{"ringside_upstream_cx_tls_total", "counter",
	 "Upstream TLS connections that carried a request.", RS_C_US_CX_TLS},
	{"ringside_upstream_cx_tls_resumed_total", "counter",
	 "Upstream TLS connections whose handshake resumed an earlier session.",
	 RS_C_US_CX_TLS_RESUMED},
	{"ringside_downstream_cx_http2_total", "counter",
	 "Downstream connections that spoke HTTP/2.", RS_C_DS_CX_HTTP2},
	{"ringside_upstream_cx_http2_total", "counter", "Upstream HTTP/2 connections opened.",
	 RS_C_US_CX_HTTP2},
};

static void write_prom_hist(FILE *f, const char *name, const char *help,
			    const struct rs_prom_hist *h)
{
	uint64_t cum = 0;

	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (unsigned i = 0; i < RS_PROM_BOUNDS; i++) {
		cum += h->b[i];
		fprintf(f, "%s_bucket{le=\"%llu\"} %llu\n", name,
			(unsigned long long)rs_prom_bounds_us[i], (unsigned long long)cum);
	}
	cum += h->b[RS_PROM_BOUNDS];
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	fprintf(f, "%s_sum %llu\n%s_count %llu\n", name, (unsigned long long)h->sum, name,
		(unsigned long long)h->count);
}

void rs_stats_write_prometheus(const struct rs_stats *s, FILE *f)
{
	static const char *const cls[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

	fprintf(f, "# HELP ringside_downstream_rq_total Downstream requests answered, by "
		   "response code class.\n# TYPE ringside_downstream_rq_total counter\n");
	for (unsigned i = 0; i < 5; i++)
		fprintf(f, "ringside_downstream_rq_total{response_code_class=\"%s\"} %llu\n",
			cls[i], (unsigned long long)s->c[RS_C_DS_RQ_1XX + i]);
	for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", metrics[i].name,
			metrics[i].help, metrics[i].name, metrics[i].type, metrics[i].name,
			(long long)s->c[metrics[i].c]);
	fprintf(f, "# HELP ringside_grpc_rq_total gRPC calls answered, by grpc-status (the "
		   "upstream's, or the one the proxy answered with).\n"
		   "# TYPE ringside_grpc_rq_total counter\n");
	for (unsigned i = 0; i < RS_GRPC_STATUSES; i++) {
		if (i + 1 == RS_GRPC_STATUSES)
			fprintf(f, "ringside_grpc_rq_total{grpc_status=\"other\"} %llu\n",
				(unsigned long long)s->grpc[i]);
		else
			fprintf(f, "ringside_grpc_rq_total{grpc_status=\"%u\"} %llu\n", i,
				(unsigned long long)s->grpc[i]);
	}
	write_prom_hist(f, "ringside_downstream_rq_duration_microseconds",
			"Time from the first byte of a request to the last byte of its response.",
			&s->rq_duration_prom);
	write_prom_hist(f, "ringside_proxy_added_microseconds",
			"Time the proxy itself added to a request: before the request reached "
			"the upstream plus after the upstream's response ended.",
			&s->added_prom);
}

void rs_stats_write_text(const struct rs_stats *s, FILE *f)
{
	static const double qs[] = {0.5, 0.9, 0.99, 0.999};
	static const char *const qn[] = {"p50", "p90", "p99", "p99.9"};

	fprintf(f, "ringside_downstream_rq_total: %llu\n",
		(unsigned long long)s->c[RS_C_DS_RQ_TOTAL]);
	for (unsigned i = 0; i < 5; i++)
		fprintf(f, "ringside_downstream_rq_%uxx: %llu\n", i + 1,
			(unsigned long long)s->c[RS_C_DS_RQ_1XX + i]);
	for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
		fprintf(f, "%s: %lld\n", metrics[i].name, (long long)s->c[metrics[i].c]);
	for (unsigned i = 0; i < 4; i++)
		fprintf(f, "ringside_downstream_rq_duration_microseconds_%s: %llu\n", qn[i],
			(unsigned long long)rs_hist_quantile(&s->rq_duration, qs[i]));
	for (unsigned i = 0; i < 4; i++)
		fprintf(f, "ringside_proxy_added_microseconds_%s: %llu\n", qn[i],
			(unsigned long long)rs_hist_quantile(&s->added, qs[i]));
	fprintf(f, "ringside_downstream_rq_duration_microseconds_max: %llu\n",
		(unsigned long long)s->rq_duration.max);
	fprintf(f, "ringside_proxy_added_microseconds_max: %llu\n",
		(unsigned long long)s->added.max);
}
