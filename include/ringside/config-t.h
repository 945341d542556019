/* Types of the configuration model: Istio resources as read from YAML.
 *
 * Issue 2 reads ServiceEntry (enough to route); the other kinds come with the
 * configuration issue. Every string is owned by the struct that holds it and
 * freed by rs_config_free(). */
#ifndef RINGSIDE_CONFIG_T_H
#define RINGSIDE_CONFIG_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Position of a YAML node; line and col are 1-based as editors count them. */
struct rs_pos {
	const char *file; /* borrowed from the rs_config's file table */
	int line;
	int col;
};

enum rs_diag_level {
	RS_DIAG_WARNING, /* accepted, but something is ignored or suspicious */
	RS_DIAG_ERROR,   /* the resource (or file) was rejected */
};

/* One problem found while loading; printed as
 * `file:line:col: Kind/namespace/name: message`. */
struct rs_diag {
	enum rs_diag_level level;
	char *file;
	int line;
	int col;
	char *resource; /* "ServiceEntry/default/name" or NULL when not inside one */
	char *msg;
};

struct rs_diags {
	struct rs_diag *v; /* owns */
	size_t n;
	size_t cap;
	size_t errors; /* how many of v are RS_DIAG_ERROR */
};

struct rs_kv {
	char *key;
	char *value;
};

/* ServiceEntry.spec.ports[] (networking.istio.io ServicePort). */
struct rs_se_port {
	uint32_t number;
	char *name;
	char *protocol;       /* HTTP, HTTP2, GRPC, TCP, TLS, ... as written; may be NULL */
	uint32_t target_port; /* 0 when absent */
};

/* A named port on an endpoint: WorkloadEntry.ports map entry. */
struct rs_named_port {
	char *name;
	uint32_t number;
};

/* ServiceEntry.spec.endpoints[] (a WorkloadEntry). */
struct rs_se_endpoint {
	char *address;
	struct rs_named_port *ports; /* owns */
	size_t nports;
	struct rs_kv *labels; /* owns */
	size_t nlabels;
	char *network;
	char *locality;
	uint32_t weight;
	char *service_account;
	struct rs_pos pos;
};

enum rs_se_resolution {
	RS_SE_RESOLUTION_NONE,
	RS_SE_RESOLUTION_STATIC,
	RS_SE_RESOLUTION_DNS,
	RS_SE_RESOLUTION_DNS_ROUND_ROBIN,
};

enum rs_se_location {
	RS_SE_MESH_EXTERNAL,
	RS_SE_MESH_INTERNAL,
};

struct rs_service_entry {
	char *name;
	char *ns; /* metadata.namespace, "default" when absent */
	struct rs_pos pos;
	char **hosts; /* owns; as written (short names are not expanded, as in Istio) */
	size_t nhosts;
	char **addresses;
	size_t naddresses;
	struct rs_se_port *ports;
	size_t nports;
	enum rs_se_location location;
	enum rs_se_resolution resolution;
	struct rs_se_endpoint *endpoints;
	size_t nendpoints;
	/* workloadSelector.labels: the WorkloadEntries of ns it selects are
	 * endpoints too (only the checks across resources use them yet). */
	struct rs_kv *workload_selector; /* owns */
	size_t nworkload_selector;
	bool has_workload_selector;
};

/* The other kinds' types live in config-networking-t.h and
 * config-security-t.h; the configuration holds arrays of them. */
struct rs_virtual_service; /* config-networking-t.h */
struct rs_destination_rule; /* config-networking-t.h */
struct rs_workload_entry; /* config-networking-t.h */
struct rs_sidecar; /* config-networking-t.h */
struct rs_peer_authentication; /* config-security-t.h */
struct rs_authorization_policy; /* config-security-t.h */
struct rs_request_authentication; /* config-security-t.h */
struct rs_telemetry; /* config-security-t.h */

/* A file the loader read. Its text is kept: when a later reload rejects one
 * of its resources, the version read here is loaded again and stays in force. */
struct rs_config_file {
	char *path; /* owns; rs_pos.file of its resources points here */
	char *text; /* owns; NULL when the file could not be read */
	size_t len;
	bool broken; /* unreadable, or a YAML syntax error cut it short */
	bool kept;   /* the text of an earlier load, holding resources kept from it */
};

/* A resource the loader met, in load order: accepted, rejected, or kept
 * from an earlier load because its new version was rejected. */
struct rs_config_res {
	char *id; /* owns: "Kind/namespace/name" */
	struct rs_pos pos; /* where its object begins */
	bool rejected;
	bool kept;
};

/* This proxy's workload, as Istio's sidecar knows it from flags and the
 * environment: what workload selectors are evaluated against. */
struct rs_identity {
	const char *ns;
	const char *service_account;
	const char *trust_domain;
	/* The workload's certificate chain, key and the mesh's roots (--cert,
	 * --key, --ca): what ISTIO_MUTUAL presents and trusts. NULL if unset. */
	const char *cert_file;
	const char *key_file;
	const char *ca_file;
	const struct rs_kv *labels; /* borrowed */
	size_t nlabels;
};

/* The resources of an rs_config that apply to this workload (pointers into
 * it), each list in load order. */
struct rs_selected {
	const struct rs_peer_authentication **peer_authentications; /* owns the array */
	size_t n_peer_authentications;
	const struct rs_authorization_policy **authorization_policies; /* owns the array */
	size_t n_authorization_policies;
	const struct rs_request_authentication **request_authentications; /* owns the array */
	size_t n_request_authentications;
	const struct rs_telemetry **telemetries; /* owns the array */
	size_t n_telemetries;
	const struct rs_sidecar *sidecar; /* the one Sidecar in force, or NULL */
};

struct rs_config {
	struct rs_config_file *files; /* owns: every file read, in load order */
	size_t nfiles;
	struct rs_config_res *resources; /* owns */
	size_t n_resources;
	char **dirs; /* owns: real paths of the directories read (what to watch) */
	size_t ndirs;
	/* DestinationRules by host (mesh.c): indexes of those with an exact
	 * host, sorted by host then load order, and of the wildcard ones. */
	size_t *dr_exact; /* owns */
	size_t n_dr_exact;
	size_t *dr_wild; /* owns */
	size_t n_dr_wild;
	struct rs_service_entry *service_entries; /* owns */
	size_t n_service_entries;
	struct rs_virtual_service *virtual_services; /* owns */
	size_t n_virtual_services;
	struct rs_destination_rule *destination_rules; /* owns */
	size_t n_destination_rules;
	struct rs_workload_entry *workload_entries; /* owns */
	size_t n_workload_entries;
	struct rs_sidecar *sidecars; /* owns */
	size_t n_sidecars;
	struct rs_peer_authentication *peer_authentications; /* owns */
	size_t n_peer_authentications;
	struct rs_authorization_policy *authorization_policies; /* owns */
	size_t n_authorization_policies;
	struct rs_request_authentication *request_authentications; /* owns */
	size_t n_request_authentications;
	struct rs_telemetry *telemetries; /* owns */
	size_t n_telemetries;
};

#endif
