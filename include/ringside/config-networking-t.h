/* Types of the networking.istio.io resources (issue 3): VirtualService,
 * DestinationRule, WorkloadEntry and Sidecar as read from YAML.
 *
 * Field names follow Istio's API reference
 * (https://istio.io/latest/docs/reference/config/networking/). Every pointer
 * owns what it points to and is freed by rs_config_free(). Durations are
 * nanoseconds; percentages are doubles in 0-100. An optional scalar that
 * Istio distinguishes from its zero value carries a `set` flag. */
#ifndef RINGSIDE_CONFIG_NETWORKING_T_H
#define RINGSIDE_CONFIG_NETWORKING_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringside/config-t.h"

/* An optional uint32 (a proto3 wrapper or a field whose 0 means "unset"). */
struct rs_opt_u32 {
	bool set;
	uint32_t v;
};

/* An optional duration. */
struct rs_opt_dur {
	bool set;
	uint64_t ns;
};

/* An optional Percent ({value: 12.5}). */
struct rs_opt_pct {
	bool set;
	double v; /* 0-100 */
};

/* StringMatch: exactly one of exact, prefix, regex. */
enum rs_string_match_kind {
	RS_SM_NONE,    /* not written: matches anything */
	RS_SM_EXACT,   /* value equals */
	RS_SM_PREFIX,  /* value starts with */
	RS_SM_REGEX,   /* value matches (whole string, RE2; checked at load) */
	RS_SM_PRESENT, /* `{}` in headers/queryParams: the name is present, any value */
};

struct rs_string_match {
	enum rs_string_match_kind kind;
	char *value; /* owns; NULL for NONE and PRESENT */
};

/* One entry of a map of StringMatch (headers, withoutHeaders, queryParams). */
struct rs_named_match {
	char *name; /* owns; headers are lower-cased as HTTP/2 and Envoy see them */
	struct rs_string_match match;
};

/* Destination: host, subset, port.number. */
struct rs_destination {
	char *host;      /* owns; as written */
	char *host_fqdn; /* owns; short names resolved in the resource's namespace */
	char *subset;    /* owns; NULL when absent */
	struct rs_pos subset_pos; /* where subset was written */
	uint32_t port;   /* 0 when absent */
};

/* Headers.HeaderOperations. */
struct rs_header_ops {
	struct rs_kv *set; /* owns */
	size_t nset;
	struct rs_kv *add; /* owns */
	size_t nadd;
	char **remove; /* owns */
	size_t nremove;
};

/* Headers: request and response operations. */
struct rs_header_rules {
	struct rs_header_ops request;
	struct rs_header_ops response;
};

/* HTTPMatchRequest. */
struct rs_vs_match {
	char *name; /* owns; NULL when absent */
	struct rs_pos pos;
	struct rs_string_match uri;
	struct rs_string_match scheme;
	struct rs_string_match method;
	struct rs_string_match authority;
	struct rs_named_match *headers; /* owns */
	size_t nheaders;
	struct rs_named_match *without_headers; /* owns */
	size_t nwithout_headers;
	struct rs_named_match *query_params; /* owns */
	size_t nquery_params;
	uint32_t port;               /* 0 when absent */
	struct rs_kv *source_labels; /* owns */
	size_t nsource_labels;
	char **gateways; /* owns */
	size_t ngateways;
	bool ignore_uri_case;
	char *source_namespace; /* owns; NULL when absent */
};

/* HTTPRouteDestination. */
struct rs_vs_route_dest {
	struct rs_pos pos;
	struct rs_destination dest;
	uint32_t weight; /* 100 for a single destination written without weight */
	bool weight_set; /* weight was written */
	struct rs_header_rules headers;
};

/* HTTPRedirect. */
struct rs_vs_redirect {
	bool set;
	char *uri;              /* owns; NULL when absent */
	char *authority;        /* owns; NULL when absent */
	uint32_t port;          /* 0 when absent */
	char *scheme;           /* owns; NULL when absent */
	uint32_t redirect_code; /* 301 when absent, as Istio */
};

/* HTTPDirectResponse. */
struct rs_vs_direct_response {
	bool set;
	uint32_t status;
	char *body; /* owns; body.string, or NULL (body.bytes is base64 and decoded later) */
	size_t body_len;
};

/* HTTPRewrite. */
struct rs_vs_rewrite {
	bool set;
	char *uri;       /* owns; NULL when absent */
	char *authority; /* owns; NULL when absent */
};

/* HTTPRetry. */
struct rs_vs_retries {
	bool set;
	uint32_t attempts;
	struct rs_opt_dur per_try_timeout;
	char *retry_on; /* owns; the comma-separated policy as written, NULL when absent */
	bool retry_remote_localities;
};

/* HTTPFaultInjection. */
struct rs_vs_fault {
	bool delay_set;
	uint64_t fixed_delay_ns;
	struct rs_opt_pct delay_percentage; /* unset means 100 as Istio */
	bool abort_set;
	uint32_t abort_http_status;
	struct rs_opt_pct abort_percentage; /* unset means 100 */
};

/* HTTPRoute: one entry of VirtualService.spec.http, in order (first match wins). */
struct rs_vs_http_route {
	struct rs_pos pos;
	char *name;                /* owns; NULL when absent */
	struct rs_vs_match *match; /* owns; none means every request */
	size_t nmatch;
	struct rs_vs_route_dest *route; /* owns */
	size_t nroute;
	struct rs_vs_redirect redirect;
	struct rs_vs_direct_response direct_response;
	struct rs_vs_rewrite rewrite;
	struct rs_opt_dur timeout;
	struct rs_vs_retries retries;
	struct rs_vs_fault fault;
	bool mirror_set;
	struct rs_destination mirror;
	struct rs_opt_pct mirror_percentage;
	struct rs_header_rules headers;
	bool has_cors_policy; /* parsed, not implemented yet */
};

/* TCPRoute or TLSRoute: only the destinations are read, so that the checks
 * across resources see their subsets; the data path does not route TCP or
 * TLS yet. */
struct rs_vs_l4_route {
	struct rs_pos pos;
	struct rs_vs_route_dest *route; /* owns; weights and headers not read */
	size_t nroute;
};

struct rs_virtual_service {
	char *name;
	char *ns;
	struct rs_pos pos;
	char **hosts;      /* owns; as written */
	char **hosts_fqdn; /* owns; resolved in ns, nhosts entries */
	size_t nhosts;
	char **gateways; /* owns */
	size_t ngateways;
	char **export_to; /* owns */
	size_t nexport_to;
	struct rs_vs_http_route *http; /* owns */
	size_t nhttp;
	bool has_tcp; /* spec.tcp was written (not implemented yet: ignored with a warning) */
	bool has_tls; /* spec.tls was written (likewise) */
	struct rs_vs_l4_route *tcp; /* owns; spec.tcp, destinations only */
	size_t ntcp;
	struct rs_vs_l4_route *tls; /* owns; spec.tls, destinations only */
	size_t ntls;
};

/* LoadBalancerSettings.SimpleLB. */
enum rs_lb_simple {
	RS_LB_UNSPECIFIED,
	RS_LB_LEAST_CONN, /* deprecated alias of LEAST_REQUEST in Istio */
	RS_LB_RANDOM,
	RS_LB_PASSTHROUGH,
	RS_LB_ROUND_ROBIN,
	RS_LB_LEAST_REQUEST,
};

/* Which consistentHash key is used. */
enum rs_lb_hash_key {
	RS_LB_HASH_NONE,
	RS_LB_HASH_HEADER,      /* http_header_name */
	RS_LB_HASH_COOKIE,      /* cookie_* */
	RS_LB_HASH_SOURCE_IP,   /* useSourceIp: true */
	RS_LB_HASH_QUERY_PARAM, /* http_query_parameter_name */
};

enum rs_lb_hash_algo {
	RS_LB_HASH_DEFAULT, /* ring hash with Istio's defaults */
	RS_LB_HASH_RING,
	RS_LB_HASH_MAGLEV,
};

/* LoadBalancerSettings. */
struct rs_lb_settings {
	bool set;
	enum rs_lb_simple simple;
	bool consistent_hash; /* consistentHash was written (then simple is UNSPECIFIED) */
	enum rs_lb_hash_key hash_key;
	char *http_header_name;          /* owns */
	char *http_query_parameter_name; /* owns */
	char *cookie_name;               /* owns */
	char *cookie_path;               /* owns */
	struct rs_opt_dur cookie_ttl;
	enum rs_lb_hash_algo hash_algo;
	uint64_t minimum_ring_size; /* ringHash.minimumRingSize, 0 when absent */
	uint64_t maglev_table_size; /* maglev.tableSize, 0 when absent */
};

/* ConnectionPoolSettings.TCPSettings.TcpKeepalive. */
struct rs_tcp_keepalive {
	bool set;
	struct rs_opt_u32 probes;
	struct rs_opt_dur time;
	struct rs_opt_dur interval;
};

enum rs_h2_upgrade_policy {
	RS_H2_UPGRADE_DEFAULT,
	RS_H2_UPGRADE_DO_NOT_UPGRADE,
	RS_H2_UPGRADE_UPGRADE,
};

/* ConnectionPoolSettings. */
struct rs_conn_pool {
	bool set;
	struct rs_opt_u32 max_connections;
	struct rs_opt_dur connect_timeout;
	struct rs_tcp_keepalive tcp_keepalive;
	struct rs_opt_u32 http1_max_pending_requests;
	struct rs_opt_u32 http2_max_requests;
	struct rs_opt_u32 max_requests_per_connection;
	struct rs_opt_u32 max_retries;
	struct rs_opt_dur idle_timeout;
	enum rs_h2_upgrade_policy h2_upgrade_policy;
};

/* OutlierDetection. */
struct rs_outlier_detection {
	bool set;
	struct rs_opt_u32 consecutive_5xx_errors;
	struct rs_opt_u32 consecutive_gateway_errors;
	struct rs_opt_dur interval;
	struct rs_opt_dur base_ejection_time;
	struct rs_opt_u32 max_ejection_percent;
	struct rs_opt_u32 min_health_percent;
};

enum rs_tls_mode {
	RS_TLS_DISABLE,
	RS_TLS_SIMPLE,
	RS_TLS_MUTUAL,
	RS_TLS_ISTIO_MUTUAL,
};

/* ClientTLSSettings. */
struct rs_client_tls {
	bool set;
	enum rs_tls_mode mode;
	char *client_certificate; /* owns; NULL when absent */
	char *private_key;        /* owns */
	char *ca_certificates;    /* owns */
	char *credential_name;    /* owns */
	char **subject_alt_names; /* owns */
	size_t nsubject_alt_names;
	char *sni; /* owns */
	bool insecure_skip_verify;
};

/* TrafficPolicy.PortTrafficPolicy. */
struct rs_port_traffic_policy {
	uint32_t port;
	struct rs_lb_settings load_balancer;
	struct rs_conn_pool connection_pool;
	struct rs_outlier_detection outlier_detection;
	struct rs_client_tls tls;
};

/* TrafficPolicy. */
struct rs_traffic_policy {
	bool set;
	struct rs_lb_settings load_balancer;
	struct rs_conn_pool connection_pool;
	struct rs_outlier_detection outlier_detection;
	struct rs_client_tls tls;
	struct rs_port_traffic_policy *port_level_settings; /* owns */
	size_t nport_level_settings;
};

/* Subset. */
struct rs_dr_subset {
	char *name; /* owns */
	struct rs_pos pos;
	struct rs_pos name_pos;   /* where name was written */
	struct rs_pos labels_pos; /* where labels was written; line 0 when absent */
	struct rs_kv *labels; /* owns */
	size_t nlabels;
	struct rs_traffic_policy traffic_policy;
};

struct rs_destination_rule {
	char *name;
	char *ns;
	struct rs_pos pos;
	char *host;      /* owns; as written */
	char *host_fqdn; /* owns; resolved in ns */
	struct rs_traffic_policy traffic_policy;
	struct rs_dr_subset *subsets; /* owns */
	size_t nsubsets;
	char **export_to; /* owns */
	size_t nexport_to;
	struct rs_kv *workload_selector; /* owns; workloadSelector.matchLabels */
	size_t nworkload_selector;
	bool has_workload_selector;
};

/* WorkloadEntry: one endpoint (a VM, a process) that ServiceEntries select
 * by labels through their workloadSelector. */
struct rs_workload_entry {
	char *name;
	char *ns;
	struct rs_pos pos;
	char *address; /* owns; IP, DNS name or unix:// path; NULL when only network is set */
	struct rs_named_port *ports; /* owns; service port name -> port on this endpoint */
	size_t nports;
	struct rs_kv *labels; /* owns */
	size_t nlabels;
	char *network;         /* owns; NULL when absent */
	char *locality;        /* owns; "region/zone/subzone", NULL when absent */
	uint32_t weight;       /* 0 when absent */
	char *service_account; /* owns; NULL when absent */
};

/* Sidecar.*.captureMode. */
enum rs_capture_mode {
	RS_CAPTURE_DEFAULT,
	RS_CAPTURE_IPTABLES,
	RS_CAPTURE_NONE,
};

/* SidecarPort (Sidecar ingress and egress listeners). */
struct rs_sidecar_port {
	uint32_t number;      /* 0 when absent (egress may omit the port) */
	char *protocol;       /* owns; NULL when absent */
	char *name;           /* owns; NULL when absent */
	uint32_t target_port; /* 0 when absent */
};

/* IstioIngressListener. */
struct rs_sidecar_ingress {
	struct rs_pos pos;
	struct rs_sidecar_port port;
	char *bind; /* owns; NULL when absent */
	enum rs_capture_mode capture_mode;
	char *default_endpoint; /* owns; "127.0.0.1:PORT", "0.0.0.0:PORT" or "unix://..." */
};

/* IstioEgressListener. */
struct rs_sidecar_egress {
	struct rs_pos pos;
	bool has_port;
	struct rs_sidecar_port port;
	char *bind; /* owns; NULL when absent */
	enum rs_capture_mode capture_mode;
	char **hosts; /* owns; "namespace/dnsName" as written */
	size_t nhosts;
};

enum rs_outbound_mode {
	RS_OUTBOUND_UNSET, /* not written: the mesh default applies */
	RS_OUTBOUND_REGISTRY_ONLY,
	RS_OUTBOUND_ALLOW_ANY,
};

struct rs_sidecar {
	char *name;
	char *ns;
	struct rs_pos pos;
	struct rs_kv *workload_selector; /* owns; workloadSelector.labels */
	size_t nworkload_selector;
	bool has_workload_selector;         /* without one it is the namespace's default Sidecar */
	struct rs_sidecar_ingress *ingress; /* owns */
	size_t ningress;
	struct rs_sidecar_egress *egress; /* owns */
	size_t negress;
	enum rs_outbound_mode outbound_mode;
};

#endif
