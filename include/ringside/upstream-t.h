/* Types of clusters (a service port, or a subset of it) and endpoints. */
#ifndef RINGSIDE_UPSTREAM_T_H
#define RINGSIDE_UPSTREAM_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct rs_lb_settings;
struct rs_conn_pool;
struct rs_outlier_detection;
struct rs_client_tls;
struct rs_tls_ctx;

struct rs_endpoint {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char *name; /* owns: "ip:port" for logs */
	/* Labelled security.istio.io/tlsMode: istio (it has a sidecar): auto
	 * mutual TLS reaches it with ISTIO_MUTUAL when no rule says how. */
	bool sidecar;
};

/* Circuit breakers (DestinationRule connectionPool), per cluster over the
 * whole proxy. */
enum rs_cb_kind {
	RS_CB_CONNECTIONS, /* tcp.maxConnections: upstream connections open */
	RS_CB_PENDING,     /* http.http1MaxPendingRequests: requests waiting for one */
	RS_CB_REQUESTS,    /* http.http2MaxRequests: requests in flight (any protocol) */
	RS_CB_RETRIES,     /* http.maxRetries: retries in flight */
	RS_CB__N,
};

#define RS_CB_UNLIMITED UINT32_MAX

/* A shard's share of a cluster's budgets, on a cache line of its own. */
struct rs_cb_local {
	uint32_t used[RS_CB__N];
	uint32_t tokens[RS_CB__N]; /* held by this shard, not used yet */
} __attribute__((aligned(64)));

/* A cluster's budgets, by cluster name, for the life of the process: they
 * outlast snapshots, as connections opened under one may be closed under
 * another. A limit is split into tokens; a shard takes them from the
 * shared pool in batches and gives back what it does not use, so the
 * request path touches the shared line only every batch and near the
 * limit, and the sum in use never passes the limit. */
struct rs_cluster_state {
	char *name; /* owns */
	_Atomic int64_t pool[RS_CB__N]; /* tokens no shard holds; < 0 after a limit shrank */
	_Atomic uint32_t limit[RS_CB__N];
	/* A shard has requests waiting for a connection of this cluster: the
	 * others close connections they would keep idle, giving their tokens
	 * back (set and cleared by the waiting shards, read on release). */
	_Atomic uint32_t waiting;
	unsigned nshards;
	struct rs_cb_local *local; /* owns: [nshards] */
	struct rs_cluster_state *next; /* the registry's list */
};

/* How a cluster picks an endpoint (DestinationRule loadBalancer). */
enum rs_lb_kind {
	RS_LB_KIND_LEAST_REQUEST, /* Istio's default: the less busy of two random picks */
	RS_LB_KIND_ROUND_ROBIN,
	RS_LB_KIND_RANDOM,
	RS_LB_KIND_RING_HASH,
	RS_LB_KIND_MAGLEV,
	RS_LB_KIND_PASSTHROUGH, /* the request's original destination (the stream picks it) */
	RS_LB_KIND_LOCAL,       /* inbound: the local application (the stream picks it) */
};

/* The protocol a cluster's upstream connections speak. */
enum rs_up_proto {
	RS_UP_AUTO,  /* the client's (Istio's use of the downstream protocol for a
		      * port whose protocol is not declared, and inbound) */
	RS_UP_HTTP1,
	RS_UP_HTTP2, /* HTTP2, GRPC, GRPC-WEB ports; h2UpgradePolicy UPGRADE */
};

struct rs_cluster {
	char *name; /* owns: Istio's form, "outbound|80||reviews.default.svc.cluster.local" */
	char *host; /* owns */
	char *subset; /* owns; NULL for the whole service */
	uint32_t port;
	struct rs_endpoint *eps; /* owns */
	size_t neps;
	/* The traffic policy in force (Istio's precedence: the subset's
	 * port-level, the subset's, the rule's port-level, the rule's);
	 * borrowed from the snapshot's configuration, NULL when unset. */
	const struct rs_lb_settings *lb_cfg;
	const struct rs_conn_pool *pool_cfg;
	const struct rs_outlier_detection *outlier_cfg;
	const struct rs_client_tls *tls_cfg;
	/* TLS origination (SIMPLE, MUTUAL): owned; NULL for plaintext or when
	 * the context could not be built, which tls_error then says, and then
	 * requests fail rather than go out in clear. */
	struct rs_tls_ctx *tls;
	char *tls_error; /* owns */
	/* Istio's auto mutual TLS (no DestinationRule tls): tls is used for the
	 * endpoints with a sidecar only; the others are reached in clear. */
	bool auto_tls;
	enum rs_lb_kind lb;
	enum rs_up_proto proto;
	/* Streams on one HTTP/2 connection at most (http2MaxRequests, which
	 * Envoy's max_concurrent_streams is made from); 0: the peer's limit. */
	uint32_t h2_max_streams;
	struct rs_cluster_state *state; /* borrowed from the registry; NULL: no limits */
	uint64_t connect_timeout_ns;    /* tcp.connectTimeout, 0: the proxy's */
	uint32_t max_requests_per_connection; /* 0: unlimited */
	uint32_t ep_base; /* this cluster's first slot in a shard's per-endpoint counters */
	/* Consistent hashing: the ring's points (sorted hashes, with the
	 * endpoint of each), or Maglev's lookup table (endpoint per slot). */
	uint64_t *ring;  /* owns */
	uint32_t *table; /* owns */
	size_t table_len;
	/* The ring's index of first points by the hash's top bits (64 -
	 * ring_shift of them): ring_lut[b] is the first point whose hash's top
	 * bits are b or more; one entry more than buckets. */
	uint32_t *ring_lut; /* owns */
	unsigned ring_shift;
};

struct rs_clusters {
	struct rs_cluster *v; /* owns */
	size_t n;
	uint32_t neps_total; /* endpoints over all clusters */
	size_t inbound; /* the cluster of inbound requests, "inbound|||" (the last) */
};

/* An endpoint's outlier ejection, seen by every shard: written only when a
 * shard's count of its consecutive errors crosses the threshold. */
struct rs_ejection {
	_Atomic uint64_t until_ns; /* ejected until then (monotonic clock) */
	_Atomic uint32_t times;    /* ejections so far */
};

/* What a pick reads and writes besides the cluster: the shard's counters
 * for it and the request's hash key. */
struct rs_lb_ctx {
	const struct rs_ejection *eject; /* the cluster's endpoints' (NULL: none) */
	uint64_t now;
	uint32_t min_health_pct; /* below this share of healthy endpoints, ejections are ignored */
	uint32_t *rr;     /* the shard's round-robin position for the cluster */
	uint32_t *active; /* the shard's requests in flight per endpoint of the cluster */
	uint64_t *rng;    /* the shard's random state */
	bool has_hash;
	uint64_t hash;
	const struct rs_endpoint *avoid; /* a retry's previous endpoint, or NULL */
};

#endif
