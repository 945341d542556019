/* Types of the proxy: shards (workers), the stream that pairs a downstream
 * request with its upstream attempt, and the HTTP/1.1 connections on both
 * sides. */
#ifndef RINGSIDE_PROXY_T_H
#define RINGSIDE_PROXY_T_H

#include <llhttp.h>
#include <pthread.h>
#include <stdatomic.h>

#include "ringside/config-t.h"
#include "ringside/core.h"
#include "ringside/http-t.h"
#include "ringside/net-t.h"
#include "ringside/rcu.h"
#include "ringside/router.h"
#include "ringside/telemetry-t.h"
#include "ringside/upstream-t.h"

/* Settings frozen at start-up (flags and environment). */
struct rs_proxy_opts {
	unsigned concurrency;
	const char *listen_addr;
	uint16_t outbound_port;
	uint16_t inbound_port;
	uint64_t connect_timeout_ns;     /* upstream connect; Envoy/Istio default 10 s */
	uint64_t route_timeout_ns;       /* response after request end; 0: none (Istio) */
	uint64_t stream_idle_timeout_ns; /* no activity on a request; Envoy 5 min */
	uint64_t idle_timeout_ns;        /* downstream connection without requests; Envoy 1 h */
	uint64_t upstream_idle_timeout_ns; /* pooled upstream connection unused */
	uint64_t drain_timeout_ns;
	uint64_t busy_poll_ns; /* spin for completions before sleeping */
	uint32_t max_header_bytes; /* Envoy max_request_headers_kb 60 */
	uint32_t max_headers;      /* Envoy max_headers_count 100 */
	uint32_t max_connections;  /* downstream, per process; 0: none */
	const char *ns;
	const char *own_id; /* spiffe://<trust domain>/ns/<ns>/sa/<sa> */
	/* HTTP/2 downstream: SETTINGS_MAX_CONCURRENT_STREAMS, the initial
	 * window of each stream and the connection's receive window. */
	uint32_t h2_max_streams;
	uint32_t h2_stream_window;
	uint32_t h2_conn_window;
	unsigned nbufs; /* provided buffers per shard */
	unsigned buf_size;
};

/* What one shard writes for one snapshot, on a cache line of its own: how
 * many of its requests still hold the snapshot, its round-robin positions
 * (one per cluster), then per endpoint (from each cluster's ep_base, E in
 * all) its requests in flight, its consecutive 5xx and its consecutive
 * gateway errors: rr[n], rr[n + e], rr[n + E + e], rr[n + 2E + e]. */
struct rs_snap_shard {
	uint64_t refs;
	uint32_t rr[];
};

/* An immutable compiled configuration. Shards read it without locks; the
 * main thread replaces it by publishing a new one (rcu.h) and frees it once
 * no shard can reach it. Only rs_snap_shard parts are written after build,
 * each by its own shard. */
struct rs_snapshot {
	uint64_t generation;
	int64_t loaded_at; /* Unix time, seconds */
	struct rs_config *cfg; /* owns */
	struct rs_clusters clusters;
	struct rs_router router;
	struct rs_selected selected; /* the policies and Sidecar for this workload */
	/* Inbound mutual TLS from the workload's --cert, --key and --ca as
	 * they were when this snapshot was built (so a reload rotates them);
	 * NULL without them. Owns a reference. */
	struct rs_tls_ctx *inbound_tls;
	struct rs_ejection *eject; /* owns: per endpoint (ep_base), shared by the shards */
	uint64_t *outlier_next; /* owns: per cluster, the main thread's next interval tick */
	unsigned nshards;
	size_t shard_stride; /* bytes from one shard's part to the next */
	unsigned char *shard_parts; /* owns; 64-byte aligned */
};

static inline struct rs_snap_shard *rs_snap_shard(const struct rs_snapshot *s, unsigned shard)
{
	return (struct rs_snap_shard *)(s->shard_parts + (size_t)shard * s->shard_stride);
}

/* State shared by the main thread and the shards, written only by main
 * (except each shard's own rcu reader slot). */
struct rs_proxy_shared {
	struct rs_rcu rcu; /* of struct rs_snapshot */
	atomic_bool drain;
	/* Requests waiting for an upstream connection, over all shards: while
	 * any do, shards close their idle connections of clusters that have
	 * waiters (their tokens go back). Written when waiting starts and
	 * ends; read after each batch. */
	_Atomic uint32_t cb_waiting;
	struct rs_worker *workers; /* borrowed: to wake them */
	unsigned nworkers;
};

struct rs_ds;
struct rs_tls_ctx;
struct rs_us;
struct rs_stream;

/* Idle upstream connections to one endpoint under one TLS setting, on one
 * shard. */
struct rs_pool {
	struct rs_pool *next;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint64_t tls_key; /* rs_tls_ctx_key of the cluster's TLS; 0: plaintext */
	struct rs_tls_resume *tls_resume; /* owns: the last session to resume, or NULL */
	struct rs_us *idle; /* borrowed: the connections own themselves */
	unsigned nidle;
	struct rs_us *h2; /* borrowed: its HTTP/2 connections, busy or not */
};

struct rs_worker {
	struct rs_loop loop;
	unsigned id;
	int cpu;
	pthread_t thread;
	const struct rs_proxy_opts *opts;
	struct rs_proxy_shared *shared;
	void *owner; /* borrowed: whoever started the shard */
	int listen_fd;
	struct rs_listener lsn;
	int inbound_fd; /* -1: no inbound port */
	struct rs_listener lsn_in;
	struct rs_stats *stats; /* owns; cache-line aligned, read by main */
	const struct rs_snapshot *snap; /* the one new requests start on */
	/* Older snapshots that requests of this shard still hold. */
	const struct rs_snapshot **held; /* owns the array */
	unsigned nheld;
	unsigned cap_held;
	struct rs_pool *pools; /* owns */
	struct rs_ds *ds_list; /* borrowed: every downstream connection */
	struct rs_io wake;
	int wake_fd;
	uint64_t wake_val;
	bool draining;
	bool failed;
	struct rs_timer sweep; /* once a second: idle timeouts */
	/* Requests waiting for an upstream connection (http1MaxPendingRequests),
	 * oldest first, and the timer that lets them try again. */
	struct rs_stream *waiting_head, *waiting_tail;
	struct rs_timer kick;
	struct rs_us *shadows; /* borrowed: connections carrying mirrored requests */
	unsigned nshadows;
	struct rs_timer drain_deadline;
	uint32_t flush_gen; /* marks clients flushed once in a pass (upstream.c) */
	uint64_t rng[2];
};

/* Request body bytes a stream keeps so that it can send them again (a
 * retry) or later (waiting for a connection, a fault delay): Envoy's
 * default per-request buffer limit for retries is 64 KiB as well. */
#define RS_REQ_KEEP_MAX (64 * 1024)

/* Why a response did not come from the upstream, as Envoy's response flags. */
enum rs_rflag {
	RS_RFLAG_NONE,
	RS_RFLAG_NR, /* no route */
	RS_RFLAG_UF, /* upstream connection failure */
	RS_RFLAG_UC, /* upstream connection termination */
	RS_RFLAG_UT, /* upstream request timeout */
	RS_RFLAG_UPE, /* upstream protocol error */
	RS_RFLAG_DC, /* downstream connection termination */
	RS_RFLAG_UH, /* no healthy upstream */
	RS_RFLAG_NC, /* no cluster for the route's destination */
	RS_RFLAG_FI, /* fault injected: abort */
	RS_RFLAG_URX, /* the answer of the last try the retry policy allowed */
	RS_RFLAG_UO,  /* upstream overflow: a circuit breaker was open */
};

struct rs_stream {
	struct rs_worker *w;
	struct rs_ds *ds; /* borrowed: the downstream that owns this stream */
	struct rs_h2s *h2s; /* borrowed: its HTTP/2 stream on ds, or NULL (HTTP/1.x) */
	struct rs_us *us; /* borrowed: the upstream carrying it, while it does */
	const struct rs_snapshot *snap;
	const struct rs_table_route *route; /* NULL: the host has no VirtualService */
	uint32_t dest; /* the destination picked in route */
	uint64_t route_timeout_ns; /* --route-timeout, or the route's timeout */
	const struct rs_cluster *cluster;
	const struct rs_endpoint *ep; /* borrowed: the cluster's, or orig_ep */
	uint32_t *active; /* the shard's in-flight count of ep, while it counts this */
	/* A PASSTHROUGH cluster's endpoint when the original destination is
	 * none of the cluster's own (name: orig_name). */
	struct rs_endpoint orig_ep;
	char orig_name[80]; /* "address:port" */
	struct rs_msg req;
	struct rs_msg resp;
	struct rs_msg trailers; /* the response's trailer fields (HTTP/2 upstream) */
	char request_id[40];
	uint64_t t_start;    /* first byte of the request */
	uint64_t t_us_start; /* request head handed to the upstream connection */
	uint64_t t_us_end;   /* last byte of the response from the upstream */
	bool req_done;       /* the whole request was read */
	bool resp_started;   /* a response head was written downstream */
	bool resp_chunked;   /* downstream body is chunk-framed by us */
	bool close_after;    /* close the downstream connection after this */
	bool local;          /* the proxy answered itself */
	bool retried;        /* resent once after a pooled connection closed */
	enum rs_rflag rflag;
	struct rs_timer timeout;   /* the route timeout, over every try */
	struct rs_timer per_try;   /* HTTPRetry.perTryTimeout of the current try */
	struct rs_timer backoff;   /* until the next try, or the end of a fault delay */
	uint32_t retries_done;
	/* Circuit breaker tokens this stream holds (each given back once). */
	bool cb_request; /* http2MaxRequests */
	bool cb_pending; /* http1MaxPendingRequests, while waiting */
	bool cb_retry;   /* maxRetries, while a retry is in flight */
	bool waiting;    /* in the worker's waiting list */
	bool delayed;    /* held by a fault delay (the backoff timer) */
	uint64_t delay_ns; /* the route's fault delay for this request, 0: none */
	int abort_status;  /* the route's fault abort, after the delay; 0: none */
	bool outlier_counted; /* this try's failure was counted already */
	/* The request body kept so far, for another try or for a request
	 * that waits (RS_REQ_KEEP_MAX at most); body_over: it did not fit. */
	char *body;
	uint32_t body_len;
	uint32_t body_cap;
	bool body_over;
	struct rs_stream *wait_prev, *wait_next;
	/* On an HTTP/2 upstream connection (us->h2): the stream's id, the
	 * request body nghttp2 has not taken yet, and the stream's place in
	 * the connection's list. */
	int32_t up_id;
	bool up_eof;      /* the request body is all in up_body */
	bool up_deferred; /* nghttp2 waits for body bytes */
	bool up_blocked;  /* up_body is full: the client's side stopped */
	bool up_refused;  /* the server refused it unprocessed (RFC 9113 §8.7) */
	bool up_malformed; /* we reset it: the server's frames broke the protocol */
	bool up_head_done; /* the final response head came */
	bool up_resp_done;
	bool up_wake;      /* up_body drained: the client's side may read again */
	bool te_trailers; /* the client sent te: trailers (gRPC) */
	/* Inbound: the protocol a Sidecar ingress port declares for the
	 * application (RS_UP_AUTO: none, the client's). */
	enum rs_up_proto inbound_proto;
	bool grpc;        /* content-type application/grpc*: answers go as gRPC statuses */
	bool deadline_hit; /* the grpc-timeout passed */
	int grpc_code;     /* the upstream's grpc-status, read at the response's end; -1 */
	struct rs_timer deadline; /* grpc-timeout, from the request head */
	uint32_t up_unconsumed; /* response bytes not yet given back to the window */
	struct rs_outq up_body;
	struct rs_stream *up_prev, *up_next;
};

struct rs_parse_buf {
	char *p; /* owns: bytes received but not yet parsed */
	uint32_t off;
	uint32_t len;
	uint32_t cap;
};

struct rs_h2;
struct rs_h2s;

/* A downstream connection: HTTP/1.x (llhttp, one stream at a time) or,
 * when its first bytes are the HTTP/2 preface, HTTP/2 (h2: nghttp2, many
 * streams). */
struct rs_ds {
	struct rs_conn c;
	struct rs_worker *w;
	struct rs_ds *prev, *next;
	struct rs_h2 *h2; /* owns: the HTTP/2 session, or NULL */
	bool sniffed;     /* the protocol is known */
	uint32_t flush_gen; /* the worker's flush_gen when last flushed in a pass */
	llhttp_t p;
	struct rs_stream *st; /* owns: the HTTP/1.x request being served */
	struct rs_parse_buf pend;
	bool paused;    /* parser paused (backpressure or pipelined request) */
	bool in_field;  /* last header callback was a field name */
	bool eof;       /* the client half-closed */
	bool driving;      /* inside drive(): the parser is running */
	bool done_pending; /* the response ended inside a parser callback */
	const char *exec_base; /* start of the bytes llhttp is executing */
	char prev_last;        /* last byte of the previous execute */
	int err_status; /* set by a parser callback that refuses the request */
	const char *err_text;
	uint64_t last_active;
	struct rs_timer idle;
	char peer_ip[48];
	bool inbound; /* accepted on the inbound port: goes to the local application */
	bool tls_counted; /* its TLS handshake is in the counters */
	/* SO_ORIGINAL_DST, read at the first request that needs it (a
	 * PASSTHROUGH cluster): 1 read, -1 not redirected, 0 not read yet. */
	int8_t orig_dst_state;
	socklen_t orig_dst_len;
	struct sockaddr_storage orig_dst;
};

struct rs_h2u;

/* An upstream connection, pooled per shard and endpoint: HTTP/1.1, one
 * stream at a time (st), or HTTP/2 (h2), many (streams). */
struct rs_us {
	struct rs_conn c;
	struct rs_worker *w;
	struct rs_pool *pool;
	struct rs_us *prev, *next; /* in pool->idle, or pool->h2 */
	struct rs_h2u *h2; /* owns: the HTTP/2 session, or NULL */
	struct rs_stream *streams; /* borrowed: HTTP/2 streams carried */
	uint32_t nstreams;
	llhttp_t p;
	struct rs_stream *st; /* borrowed, while serving */
	struct rs_parse_buf pend;
	bool paused;
	bool connected;
	bool idle;
	bool reused;
	bool head_req;
	bool resp_done;
	bool skip_interim; /* parsing a 1xx interim response */
	bool end_pending;  /* on_message_complete ran; deliver after execute */
	bool got_bytes;    /* the current request has seen response bytes */
	bool keep_alive;   /* the response allows another request */
	bool shadow;       /* carries a mirrored request: what comes back is dropped */
	bool tls_counted;  /* its handshake is in the counters */
	uint64_t shadow_since;
	struct rs_cluster_state *cb; /* borrowed: the budget of a connection token, or NULL */
	uint32_t nrequests;    /* requests started on this connection */
	uint32_t max_requests; /* maxRequestsPerConnection of the cluster that opened it; 0: none */
	uint64_t idle_timeout_ns; /* http.idleTimeout of that cluster, else --upstream-idle-timeout */
	const char *exec_base;
	char prev_last;
	bool in_field;
	uint64_t idle_since;
};

#endif
