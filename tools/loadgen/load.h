/* ringside-load: an open-loop HTTP load generator on io_uring.
 *
 * One thread, one ring, N connections. In open-loop mode requests are due at
 * fixed intervals whether or not earlier ones were answered; a due request
 * goes to the first connection that can take it, and its latency counts from
 * the moment it was due (so a stalled server shows in the percentiles instead
 * of slowing the schedule down: "coordinated omission" corrected). The same
 * latency is also kept from the moment the request was actually written. */
#ifndef RINGSIDE_LOADGEN_LOAD_H
#define RINGSIDE_LOADGEN_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- Histogram: nanoseconds, three significant digits, 1 µs to 60 s. ---- */

/* 2^10 linear buckets per power of two: a bucket is at most 1/1024 of its
 * values wide, so every reported value is within 0.1%. Values from 2^36 ns
 * (68.7 s) up fall into the last bucket; max is kept exactly. */
#define LG_HIST_SUB 10
#define LG_HIST_MAX_BITS 36
#define LG_HIST_BUCKETS ((1u << LG_HIST_SUB) + ((LG_HIST_MAX_BITS - LG_HIST_SUB) << LG_HIST_SUB))

struct lg_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min;
	uint64_t max;
	uint64_t b[LG_HIST_BUCKETS];
};

void lg_hist_reset(struct lg_hist *h);
void lg_hist_record(struct lg_hist *h, uint64_t ns);
void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src);
/* Value at quantile q in 0..1, in ns; q >= 1 gives max; 0 when empty. */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);

/* ---- Schedule. ---- */

/* Request i of an open-loop run is due at start + i * 1e9 / rate. rate 0 is
 * closed loop: every request is due as soon as a connection can take it. */
struct lg_sched {
	uint64_t start;  /* ns, CLOCK_MONOTONIC */
	double rate;     /* requests per second over all connections; 0: closed */
	uint64_t issued; /* requests handed to a connection so far */
};

void lg_sched_init(struct lg_sched *s, uint64_t start, double rate);
/* When request i is due. */
uint64_t lg_sched_at(const struct lg_sched *s, uint64_t i);
/* Requests due at `now` and not yet issued (UINT64_MAX when closed loop). */
uint64_t lg_sched_backlog(const struct lg_sched *s, uint64_t now);
/* Takes the next request: returns the time it was due (`now` when closed loop). */
uint64_t lg_sched_take(struct lg_sched *s, uint64_t now);

/* ---- Results. ---- */

enum lg_error {
	LG_E_CONNECT,  /* connect refused, unreachable or timed out */
	LG_E_TLS,      /* handshake or record failure */
	LG_E_RESET,    /* read or write failed (reset by the peer) */
	LG_E_CLOSED,   /* peer closed the connection with a request outstanding */
	LG_E_TIMEOUT,  /* no complete response within --timeout */
	LG_E_PROTOCOL, /* malformed response, or an HTTP/2 stream reset */
	LG_E_MAX
};

extern const char *const lg_error_names[LG_E_MAX];

/* What one phase (warm-up or measurement) observed. Requests count in the
 * phase their due time falls in. */
struct lg_result {
	struct lg_hist corrected;   /* completion - due time */
	struct lg_hist uncorrected; /* completion - time written */
	struct lg_hist lag;         /* time written - due time: the generator's own delay */
	uint64_t sent;
	uint64_t completed;
	uint64_t status[6]; /* [0] other, [1..5] 1xx..5xx */
	uint64_t errors[LG_E_MAX];
	uint64_t connects; /* connections established (and handshaken) */
	uint64_t bytes_in;
	uint64_t bytes_out;
};

void lg_result_reset(struct lg_result *r);
/* Records a response: due, written and completed times in ns. */
void lg_result_done(struct lg_result *r, uint64_t due, uint64_t sent, uint64_t now, int status);

/* ---- Run options. ---- */

enum lg_proto { LG_H1, LG_H2 };

struct lg_opts {
	const char *url;
	char host[256];    /* from the URL: where to connect */
	char port[8];
	char path[2048];   /* from the URL, with the query */
	char authority[300]; /* Host / :authority: the URL's, or a -H Host: header */
	bool tls;
	enum lg_proto proto;
	unsigned connections;
	unsigned streams;  /* HTTP/2 requests in flight per connection */
	double rate;       /* 0: closed loop */
	double duration;   /* seconds measured */
	double warmup;     /* seconds run first and discarded */
	double timeout;    /* seconds a request may take */
	uint64_t per_conn; /* requests per connection before it is replaced; 0: unlimited */
	const char *method;
	size_t body_size;
	const char *headers[64]; /* "Name: value" as given */
	unsigned nheaders;
	const char *cacert, *cert, *key, *sni;
	bool insecure;
	uint64_t spin_ns;  /* busy-wait the last this much before a due time */
	const char *json;  /* file for the JSON report, "-" for stdout */
	bool quiet;
};

struct lg_run {
	struct lg_result warm;
	struct lg_result meas;
	double measured_s;      /* the measurement phase as it ran */
	uint64_t backlog_end;   /* due in the measurement but never written */
	uint64_t inflight_end;  /* written but unanswered when the run ended */
	const char *alpn;       /* negotiated, when TLS */
	uint64_t peak_conns;
};

/* Runs the load; 0, or -1 after printing why it could not start. */
int lg_run(const struct lg_opts *o, struct lg_run *out);

static inline uint64_t lg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
