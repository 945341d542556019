/* Routing: the request's authority picks a host; the host's VirtualService,
 * compiled into route tables by port, picks a route by the first match; the
 * route's destinations, resolved to clusters when the snapshot is built, are
 * picked by weight. A host no VirtualService covers goes to its service's
 * cluster for the port. */
#ifndef RINGSIDE_ROUTER_H
#define RINGSIDE_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringside/config-networking-t.h"
#include "ringside/config-t.h"
#include "ringside/core-t.h"
#include "ringside/upstream-t.h"

struct rs_msg;
struct rs_regex;

/* A StringMatch, compiled. */
struct rs_smatch {
	enum rs_string_match_kind kind;
	const char *s; /* borrowed from the snapshot's configuration */
	uint32_t len;
	struct rs_regex *re; /* owns, for RS_SM_REGEX */
	/* RS_SM_REGEX: the range of what it can match (borrowed from re);
	 * min NULL when it has none. */
	const char *min, *max;
	uint32_t minlen, maxlen;
};

/* One entry of headers, withoutHeaders or queryParams. Strings and arrays
 * marked "arena" live in the router's arena (rs_router.arena). */
struct rs_nmatch {
	const char *name; /* arena, copied; headers lower-cased by the loader */
	uint32_t nlen;
	struct rs_smatch m;
};

/* Which StringMatch fields of a match block are written (rs_rmatch.fields). */
enum {
	RS_RM_URI = 1u << 0,
	RS_RM_SCHEME = 1u << 1,
	RS_RM_METHOD = 1u << 2,
	RS_RM_AUTHORITY = 1u << 3,
};

/* One HTTPMatchRequest: every field written must match. What every try
 * reads comes first, so that a block that fails on its headers costs one
 * cache line. */
struct rs_rmatch {
	uint32_t port; /* 0: any */
	bool nocase;   /* ignoreUriCase */
	uint8_t fields; /* RS_RM_*: the StringMatches below that are written */
	uint32_t nheaders;
	struct rs_nmatch *headers; /* arena, followed by its names and values */
	uint32_t nwithout;
	struct rs_nmatch *without; /* arena: withoutHeaders, followed by names and values */
	uint32_t nquery;
	struct rs_nmatch *query; /* arena: queryParams, followed by names and values */
	struct rs_smatch uri, scheme, method, authority;
};

/* HTTPRetry.retryOn conditions (Envoy's x-envoy-retry-on and
 * x-envoy-retry-grpc-on names). */
enum {
	RS_RETRY_5XX = 1u << 0,            /* any 5xx, a reset, a connect failure, a timeout */
	RS_RETRY_GATEWAY_ERROR = 1u << 1,  /* 502, 503, 504, a reset, a connect failure */
	RS_RETRY_RESET = 1u << 2,          /* no response: disconnect, reset, timeout */
	RS_RETRY_CONNECT_FAILURE = 1u << 3,
	RS_RETRY_REFUSED_STREAM = 1u << 4, /* HTTP/2 REFUSED_STREAM */
	RS_RETRY_RETRIABLE_4XX = 1u << 5,  /* 409 */
	RS_RETRY_STATUS_CODES = 1u << 6,   /* the codes listed */
	RS_RETRY_GRPC_CANCELLED = 1u << 7,
	RS_RETRY_GRPC_DEADLINE_EXCEEDED = 1u << 8,
	RS_RETRY_GRPC_RESOURCE_EXHAUSTED = 1u << 9,
	RS_RETRY_GRPC_UNAVAILABLE = 1u << 10,
	RS_RETRY_GRPC_INTERNAL = 1u << 11,
};

#define RS_RETRY_CODES_MAX 16

struct rs_retry_policy {
	uint32_t retries; /* HTTPRetry.attempts: tries after the first; 0: none */
	uint32_t on;      /* RS_RETRY_* */
	uint64_t per_try_ns; /* 0: none */
	uint16_t codes[RS_RETRY_CODES_MAX];
	uint32_t ncodes;
};

/* One VirtualService http route, compiled. What it does is read from src. */
struct rs_route {
	const struct rs_vs_http_route *src; /* borrowed */
	struct rs_rmatch *matches; /* arena: one of them must match */
	uint32_t nmatches;
	bool any; /* no match written: every request */
	uint32_t total_weight;
	struct rs_retry_policy retry;
};

/* Parses an Istio retryOn value ("connect-failure,refused-stream,503") into
 * p->on and p->codes; unknown conditions are ignored (validate warns). */
void rs_retry_parse(struct rs_retry_policy *p, const char *retry_on);
/* Istio's retry policy for a route that writes none (and for a host without
 * a VirtualService): 2 retries on connect-failure, refused-stream,
 * unavailable, cancelled and 503. */
void rs_retry_default(struct rs_retry_policy *p);

/* A route as one port of one host sees it. */
struct rs_table_route {
	const struct rs_route *r;
	int *cluster;     /* arena: per destination of r->src->route, its cluster or -1 */
	uint32_t *weight; /* arena, after cluster: each destination's weight */
	uint32_t ndest;
	uint32_t total_weight;
	int mirror; /* the cluster of r->src->mirror, or -1 */
};

/* What a match key checks of the uri (rs_match_key.kind). */
enum {
	RS_MK_ANY,    /* nothing: the block has no uri match, or a regex without a range */
	RS_MK_PREFIX, /* the first bytes under hi; at least len bytes */
	RS_MK_EXACT,  /* the first bytes under hi; exactly len bytes (255: that or more) */
	RS_MK_RANGE,  /* the first eight bytes within [lo, hi] (a regex's range) */
};

/* Flags of a match key. */
enum {
	RS_MK_NOCASE = 1u << 0,   /* ignoreUriCase: compared with the value lower-cased */
	RS_MK_URI_DONE = 1u << 1, /* the key decides the uri match whole (eight bytes or fewer) */
};

/* One match block of a table's routes, reduced to what can be checked
 * without reading the route: its port and the first eight bytes and length
 * of the uri. A key's conditions are necessary for its block to match,
 * never sufficient unless RS_MK_URI_DONE says so for the uri. Keys sit in
 * one array per table, in route then block order, two to a cache line, so
 * that the search for the first match reads memory in sequence and reads
 * a block only when its key lets the request through. */
struct rs_match_key {
	uint64_t lo; /* PREFIX, EXACT: the uri's first bytes, big-endian, zero-padded;
			RANGE: the least value's */
	uint64_t hi; /* PREFIX, EXACT: the mask of those bytes; RANGE: the greatest value's */
	const struct rs_rmatch *block; /* borrowed; NULL: the route has no blocks (matches all) */
	uint32_t route; /* the index of its route in the table */
	uint16_t port;  /* 0: any */
	uint8_t len;    /* PREFIX, EXACT: the uri's length, 255 for that or more */
	uint8_t kind : 2;  /* RS_MK_ANY, ... */
	uint8_t flags : 2; /* RS_MK_NOCASE, RS_MK_URI_DONE */
};

/* The routes of a host's VirtualService that can match on one port, in the
 * order written (first match wins). */
struct rs_route_table {
	uint32_t port; /* 0: any port the host's services do not list */
	struct rs_table_route *routes; /* arena */
	uint32_t nroutes;
	struct rs_match_key *keys; /* arena: a key per block of every route, in order */
	uint32_t nkeys;
};

/* One host: the clusters of its ports and its routes. */
struct rs_router_host {
	const char *host; /* borrowed from a cluster or a VirtualService */
	uint32_t nports;
	int default_idx; /* port 80's cluster, else the only port's, else -1 */
	uint32_t *port;  /* owns: port numbers */
	int *cluster;    /* owns: the whole service's cluster index per port */
	const struct rs_virtual_service *vs; /* borrowed; NULL: none applies */
	struct rs_route_table *tables; /* arena: one per port, then port 0 */
	uint32_t ntables;
};

/* A name in the host index: a host's own, or a short name that Kubernetes'
 * DNS search path resolves to it. Slots are small so that a lookup's
 * probes stay within a cache line or two of a compact array. */
struct rs_router_slot {
	const char *name; /* the host's (borrowed) or a short name's (owns); NULL: empty */
	uint32_t hash;
	uint32_t host; /* the index of its host in rs_router.hosts */
};

struct rs_router {
	const struct rs_clusters *clusters; /* borrowed from the same snapshot */
	const struct rs_config *cfg;        /* borrowed from the same snapshot */
	char *ns;                           /* owns: the proxy's namespace */
	struct rs_router_host *hosts;       /* owns: every host once */
	uint32_t nhosts;
	struct rs_router_slot *slots; /* owns: open addressing by name */
	uint32_t mask;
	struct rs_route **vs_routes; /* owns the array: per cfg VirtualService, compiled
					once (in the arena) */
	/* owns: the compiled routes and the tables, each host's laid out in
	 * the order a request reads them: its VirtualService's routes (at
	 * their first use), its tables, then per table the routes, the keys
	 * and the destinations. */
	struct rs_arena arena;
};

/* Indexes the hosts of cs and, when cfg is not NULL, compiles for each host
 * the VirtualService that applies to it for workload id (Istio: one whose
 * gateways include `mesh` or are empty, exported to id's namespace, with the
 * most specific host; among equals the first loaded) into route tables by
 * port. Match blocks whose sourceLabels or sourceNamespace exclude id are
 * dropped here, as they can never match this proxy's requests. Hosts that
 * only a VirtualService names are indexed too. 0 or -ENOMEM. */
int rs_router_init(struct rs_router *r, const struct rs_clusters *cs,
		   const struct rs_config *cfg, const struct rs_identity *id);
void rs_router_free(struct rs_router *r);
/* The host's entry for an exact host name, or NULL. */
const struct rs_router_host *rs_router_host(const struct rs_router *r, const char *host);

/* The host an authority ("reviews", "reviews:9080", "[::1]:80") names, or
 * NULL. Short names resolve in the proxy's namespace as Kubernetes DNS
 * search paths do: `reviews`, `reviews.ns` and `reviews.ns.svc` mean
 * `reviews.ns.svc.cluster.local`. *port is the port written, else the
 * host's default (port 80, else its only port), else 80. The host written
 * into host (lower case, without port) is what a 404 message names. */
const struct rs_router_host *rs_router_lookup(const struct rs_router *r, const char *authority,
					      size_t len, char *host, size_t hostlen,
					      uint32_t *port);
/* The whole service's cluster of e for port, or -1. */
int rs_router_host_cluster(const struct rs_router_host *e, uint32_t port);
/* rs_router_lookup then rs_router_host_cluster: the cluster or -1. */
int rs_router_match(const struct rs_router *r, const char *authority, size_t len, char *host,
		    size_t hostlen);

/* The first route of e's VirtualService (e->vs set) for port that matches
 * request m, or NULL (Envoy's NR); *matched: the match block that did (NULL
 * for a route without matches). */
const struct rs_table_route *rs_router_route(const struct rs_router_host *e, uint32_t port,
					     const struct rs_msg *m, const char *scheme,
					     const struct rs_rmatch **matched);
/* Whether one compiled route matches m on port, and with which block. */
bool rs_route_matches(const struct rs_route *r, const struct rs_msg *m, uint32_t port,
		      const char *scheme, const struct rs_rmatch **matched);
/* A destination of tr by weight (its index in tr->r->src->route), with x a
 * uniform random number. */
uint32_t rs_route_pick(const struct rs_table_route *tr, uint64_t x);

#endif
