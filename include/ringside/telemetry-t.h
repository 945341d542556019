/* Types of ringside's statistics: per-shard counters and histograms, written
 * only by their shard and merged by the main thread when scraped. */
#ifndef RINGSIDE_TELEMETRY_T_H
#define RINGSIDE_TELEMETRY_T_H

#include <stdint.h>

/* Log-linear histogram: values below 32 are exact, above they fall into 32
 * linear sub-buckets per power of two (relative error under 3.2%), up to
 * 2^40. Mergeable by adding buckets. */
#define RS_HIST_SUB_BITS 5
#define RS_HIST_SUB (1u << RS_HIST_SUB_BITS)
#define RS_HIST_MAX_BITS 40
#define RS_HIST_BUCKETS (RS_HIST_SUB + (RS_HIST_MAX_BITS - RS_HIST_SUB_BITS) * RS_HIST_SUB)

struct rs_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t max;
	uint64_t b[RS_HIST_BUCKETS];
};

/* Prometheus histogram with fixed upper bounds (microseconds). */
#define RS_PROM_BOUNDS 20
struct rs_prom_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t b[RS_PROM_BOUNDS + 1]; /* last: +Inf */
};

/* Counters and gauges. A gauge is the sum over shards of each shard's own
 * increments and decrements. */
enum rs_counter {
	RS_C_DS_CX_TOTAL,         /* downstream connections accepted */
	RS_C_DS_CX_ACTIVE,        /* gauge: downstream connections open */
	RS_C_DS_RX_BYTES,         /* bytes received from downstream */
	RS_C_DS_TX_BYTES,         /* bytes sent to downstream */
	RS_C_DS_RQ_TOTAL,         /* downstream requests answered */
	RS_C_DS_RQ_1XX,           /* ... by response class */
	RS_C_DS_RQ_2XX,
	RS_C_DS_RQ_3XX,
	RS_C_DS_RQ_4XX,
	RS_C_DS_RQ_5XX,
	RS_C_DS_RQ_ACTIVE,        /* gauge: requests in flight */
	RS_C_DS_RQ_REJECTED,      /* requests refused by framing or limits (400, 431) */
	RS_C_DS_CX_OVERFLOW,      /* connections refused by --max-connections */
	RS_C_US_CX_TOTAL,         /* upstream connections opened */
	RS_C_US_CX_ACTIVE,        /* gauge: upstream connections open */
	RS_C_US_CX_CONNECT_FAIL,  /* upstream connects refused or failed */
	RS_C_US_CX_CONNECT_TIMEOUT, /* upstream connects that timed out */
	RS_C_US_RQ_TIMEOUT,       /* tries that hit the route or per-try timeout */
	RS_C_US_RQ_RESET,         /* upstream reset or closed before the response ended */
	RS_C_US_CX_REUSED,        /* requests sent on a pooled keep-alive connection */
	RS_C_US_RQ_RETRY,         /* tries after the first, by a route's retry policy */
	RS_C_DS_CX_TLS,           /* downstream TLS connections that carried a request */
	RS_C_DS_CX_TLS_RESUMED,   /* ... whose handshake resumed a session */
	RS_C_US_CX_TLS,           /* upstream TLS connections that carried a request */
	RS_C_US_CX_TLS_RESUMED,   /* ... whose handshake resumed a session */
	RS_C_DS_CX_HTTP2,         /* downstream connections that spoke HTTP/2 */
	RS_C_US_CX_HTTP2,         /* upstream HTTP/2 connections opened */
	RS_C__COUNT,
};

/* gRPC statuses 0 (OK) to 16 (UNAUTHENTICATED), then any other. */
#define RS_GRPC_STATUSES 18

struct rs_stats {
	uint64_t c[RS_C__COUNT];
	uint64_t grpc[RS_GRPC_STATUSES]; /* gRPC calls answered, by grpc-status */
	struct rs_hist rq_duration; /* request start to last response byte, µs */
	struct rs_hist added;       /* time the proxy itself added, µs */
	struct rs_prom_hist rq_duration_prom;
	struct rs_prom_hist added_prom;
} __attribute__((aligned(64)));

#endif
