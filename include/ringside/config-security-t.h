/* Types of the security.istio.io resources (PeerAuthentication,
 * AuthorizationPolicy, RequestAuthentication) and of telemetry.istio.io's
 * Telemetry, as read from YAML. Every string and array is owned by the struct
 * that holds it and freed by rs_config_free(). Lists keep the order written. */
#ifndef RINGSIDE_CONFIG_SECURITY_T_H
#define RINGSIDE_CONFIG_SECURITY_T_H

#include <stdbool.h>

#include "ringside/config-t.h"

/* Istio's root namespace: a policy there without a selector is mesh-wide.
 * Istio lets meshConfig.rootNamespace change it; ringside does not yet. */
#define RS_ROOT_NAMESPACE "istio-system"

/* A list of strings as written. */
struct rs_strs {
	char **v; /* owns */
	size_t n;
	struct rs_pos *pos; /* owns; where each of v was written, or NULL when not kept */
};

/* selector.matchLabels (istio.type.v1beta1.WorkloadSelector). Without a
 * selector, or with an empty matchLabels, the resource applies to every
 * workload of its namespace (of the mesh in the root namespace). */
struct rs_selector {
	bool set;             /* `selector` was written */
	struct rs_kv *labels; /* owns */
	size_t nlabels;
};

/* targetRef / targetRefs[] (istio.type.v1beta1.PolicyTargetReference):
 * parsed, not acted on yet (a warning says so). */
struct rs_target_ref {
	char *group;
	char *kind;
	char *name;
	char *ns; /* NULL when absent: the resource's namespace */
};

/* PeerAuthentication.MutualTLS.Mode. */
enum rs_mtls_mode {
	RS_MTLS_UNSET,      /* inherit from the namespace, then the mesh (then PERMISSIVE) */
	RS_MTLS_DISABLE,    /* plaintext only */
	RS_MTLS_PERMISSIVE, /* mTLS or plaintext */
	RS_MTLS_STRICT,     /* mTLS only */
};

struct rs_port_mtls {
	uint32_t port; /* the workload's port, 1-65535 */
	enum rs_mtls_mode mode;
};

struct rs_peer_authentication {
	char *name;
	char *ns; /* metadata.namespace, "default" when absent */
	struct rs_pos pos;
	struct rs_selector selector;
	enum rs_mtls_mode mode; /* spec.mtls.mode; UNSET when absent */
	struct rs_port_mtls *port_mtls; /* owns: spec.portLevelMtls */
	size_t nport_mtls;
};

enum rs_authz_action {
	RS_AUTHZ_ALLOW,  /* the default */
	RS_AUTHZ_DENY,
	RS_AUTHZ_AUDIT,
	RS_AUTHZ_CUSTOM, /* delegated to provider (ext_authz) */
};

/* AuthorizationPolicy Source: every list is ANDed, values in a list ORed. */
struct rs_authz_source {
	struct rs_strs principals, not_principals;
	struct rs_strs request_principals, not_request_principals;
	struct rs_strs namespaces, not_namespaces;
	struct rs_strs ip_blocks, not_ip_blocks; /* IP or CIDR, checked */
	struct rs_strs remote_ip_blocks, not_remote_ip_blocks;
};

struct rs_authz_operation {
	struct rs_strs hosts, not_hosts;
	uint32_t *ports; /* owns; 1-65535 (written as strings in Istio) */
	struct rs_pos *ports_pos; /* owns; where each of ports was written */
	size_t nports;
	uint32_t *not_ports; /* owns */
	struct rs_pos *not_ports_pos; /* owns */
	size_t nnot_ports;
	struct rs_strs methods, not_methods;
	struct rs_strs paths, not_paths;
};

/* when[]: key such as `request.headers[x-token]`, `source.ip`. */
struct rs_authz_condition {
	char *key;
	struct rs_strs values, not_values;
};

/* A rule matches when any from, any to and every when match; an absent
 * list matches everything. */
struct rs_authz_rule {
	struct rs_authz_source *from; /* owns */
	size_t nfrom;
	struct rs_authz_operation *to; /* owns */
	size_t nto;
	struct rs_authz_condition *when; /* owns */
	size_t nwhen;
};

struct rs_authorization_policy {
	char *name;
	char *ns;
	struct rs_pos pos;
	struct rs_selector selector;
	struct rs_target_ref *target_refs; /* owns: targetRef then targetRefs[] */
	size_t ntarget_refs;
	enum rs_authz_action action;
	char *provider; /* provider.name for CUSTOM, else NULL */
	/* No rules: the policy matches nothing (an ALLOW of `{}` denies all
	 * of the workloads it selects). */
	struct rs_authz_rule *rules; /* owns */
	size_t nrules;
};

/* JWTHeader: where a token is read from. */
struct rs_jwt_header {
	char *name;
	char *prefix; /* NULL when absent, e.g. "Bearer " */
};

/* ClaimToHeader. */
struct rs_jwt_claim_header {
	char *header;
	char *claim;
};

struct rs_jwt_rule {
	char *issuer;
	struct rs_strs audiences;
	char *jwks_uri;
	char *jwks; /* inline JWKS; wins over jwks_uri, as in Istio */
	struct rs_jwt_header *from_headers; /* owns; none: Authorization: Bearer */
	size_t nfrom_headers;
	struct rs_strs from_params; /* none: access_token */
	struct rs_strs from_cookies;
	char *output_payload_to_header;
	bool forward_original_token;
	struct rs_jwt_claim_header *output_claim_to_headers; /* owns */
	size_t noutput_claim_to_headers;
	char *timeout; /* JWKS fetch timeout as written (a duration), NULL when absent */
};

struct rs_request_authentication {
	char *name;
	char *ns;
	struct rs_pos pos;
	struct rs_selector selector;
	struct rs_target_ref *target_refs; /* owns */
	size_t ntarget_refs;
	struct rs_jwt_rule *jwt_rules; /* owns */
	size_t njwt_rules;
};

/* Telemetry's WorkloadMode, in match.mode. */
enum rs_tel_mode {
	RS_TEL_CLIENT_AND_SERVER, /* the default */
	RS_TEL_CLIENT,
	RS_TEL_SERVER,
};

/* A tri-state for fields whose absence means "inherit". */
enum rs_tel_flag {
	RS_TEL_UNSET,
	RS_TEL_FALSE,
	RS_TEL_TRUE,
};

struct rs_tel_access_logging {
	enum rs_tel_mode mode;
	struct rs_strs providers; /* provider names */
	enum rs_tel_flag disabled;
	char *filter; /* filter.expression (CEL), NULL when absent */
};

enum rs_tel_tag_op {
	RS_TEL_TAG_UPSERT, /* the default */
	RS_TEL_TAG_REMOVE,
};

struct rs_tel_tag_override {
	char *name;
	enum rs_tel_tag_op op;
	char *value; /* CEL expression, NULL when absent */
};

struct rs_tel_metric_override {
	/* match.metric (ALL_METRICS, REQUEST_COUNT, ...) or match.customMetric,
	 * as written; NULL for every metric. */
	char *metric;
	enum rs_tel_mode mode;
	enum rs_tel_flag disabled;
	struct rs_tel_tag_override *tags; /* owns */
	size_t ntags;
};

struct rs_tel_metrics {
	struct rs_strs providers;
	struct rs_tel_metric_override *overrides; /* owns */
	size_t noverrides;
	char *reporting_interval; /* as written (a duration), NULL when absent */
};

enum rs_tel_tag_kind {
	RS_TEL_TAG_LITERAL,     /* value */
	RS_TEL_TAG_ENVIRONMENT, /* name, default_value */
	RS_TEL_TAG_HEADER,      /* name, default_value */
};

struct rs_tel_custom_tag {
	char *tag;
	enum rs_tel_tag_kind kind;
	char *value; /* literal value, or the variable's/header's name */
	char *default_value;
};

struct rs_tel_tracing {
	enum rs_tel_mode mode;
	struct rs_strs providers;
	bool has_sampling;
	double random_sampling_percentage; /* 0-100 when has_sampling */
	enum rs_tel_flag disable_span_reporting;
	struct rs_tel_custom_tag *custom_tags; /* owns */
	size_t ncustom_tags;
	enum rs_tel_flag use_request_id_for_trace_sampling;
};

struct rs_telemetry {
	char *name;
	char *ns;
	struct rs_pos pos;
	struct rs_selector selector;
	struct rs_target_ref *target_refs; /* owns */
	size_t ntarget_refs;
	struct rs_tel_access_logging *access_logging; /* owns */
	size_t naccess_logging;
	struct rs_tel_metrics *metrics; /* owns */
	size_t nmetrics;
	struct rs_tel_tracing *tracing; /* owns */
	size_t ntracing;
};

#endif
