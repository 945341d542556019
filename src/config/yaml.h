/* Private to src/config/: a YAML document as a small tree that remembers where
 * every node was written, and the helpers that read Istio fields from it and
 * report problems as `file:line:col: Kind/ns/name: message`.
 *
 * The typed model (config-t.h) never points into this tree: a document's tree
 * lives only while its resources are read, so the loaded configuration holds
 * no libyaml memory. */
#ifndef RINGSIDE_CONFIG_YAML_H
#define RINGSIDE_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringside/config-t.h"

enum rs_ynode_type {
	RS_YNODE_SCALAR,   /* str/len hold the text */
	RS_YNODE_SEQUENCE, /* items[0..n) */
	RS_YNODE_MAPPING,  /* pairs[0..n), in the order written */
};

struct rs_ypair;

struct rs_ynode {
	enum rs_ynode_type type;
	int line; /* 1-based, as editors count */
	int col;  /* 1-based, in characters */
	bool plain; /* scalar written without quotes: only then can it mean null */
	bool alias; /* `*name`: a shallow copy of the anchored node; owns nothing but itself */
	char *str;  /* owns (unless alias); NUL-terminated, may contain NUL when quoted "\0" */
	size_t len;
	struct rs_ynode **items; /* owns (unless alias) */
	struct rs_ypair *pairs;  /* owns (unless alias) */
	size_t n;
	size_t weight; /* nodes below and including this one, aliases expanded */
};

struct rs_ypair {
	struct rs_ynode *key; /* owns */
	struct rs_ynode *value; /* owns */
};

/* How one resource is being read: where problems go and whether any of them
 * rejects it. Field readers report through it and never return an error, so
 * a resource parser reads top to bottom and checks `rejected` once. */
struct rs_yctx {
	const char *file;       /* borrowed: the rs_config's file table */
	struct rs_diags *diags; /* borrowed */
	char resource[384];     /* "Kind/ns/name", or "" outside a resource */
	bool rejected;          /* an RS_DIAG_ERROR was reported for this resource */
	bool nomem;             /* an allocation failed: the whole load fails with -ENOMEM */
};

/* Called once per document of a file, with its root (never NULL; an empty
 * document is a null scalar). Returns 0 or -ENOMEM, which stops the file. */
typedef int (*rs_yaml_doc_cb)(const struct rs_ynode *root, void *user_data);

/* Reads a whole file into *text (malloc'd, *len bytes). Returns 0, -ENOMEM,
 * or another negative errno, reported in diags as `file: cannot read: why`. */
int rs_yaml__read_file(const char *file, struct rs_diags *diags, char **text, size_t *len);

/* Parses text (named name in diagnostics) document by document, calling
 * on_doc with each root. Returns 0; -EINVAL for a YAML syntax error,
 * reported in diags at its line:col (documents before it were already
 * delivered); -ENOMEM; or what on_doc returned. */
int rs_yaml__parse_string(const char *name, const char *text, size_t len,
			  struct rs_diags *diags, rs_yaml_doc_cb on_doc, void *user_data);

/* Plain `~`, `null`, `Null`, `NULL` or nothing: YAML's null, which Kubernetes
 * treats as a field that was not written. */
bool rs_yaml__is_null(const struct rs_ynode *n);

/* The value of key in map, or NULL when map is not a mapping, the key is
 * absent or its value is null. */
const struct rs_ynode *rs_yaml__get(const struct rs_ynode *map, const char *key);

/* Field paths as Istio and kubectl print them: `spec.ports[1].number`. The
 * result is truncated to RS_YPATH_MAX; it only ever goes into a message. */
#define RS_YPATH_MAX 256
const char *rs_yaml__path_key(char buf[RS_YPATH_MAX], const char *parent, const char *key);
const char *rs_yaml__path_index(char buf[RS_YPATH_MAX], const char *parent, size_t i);

/* Adds a problem at node's position (the file alone when node is NULL),
 * prefixed with `path: ` when path is non-empty. An error rejects the resource. */
void rs_yaml__report(struct rs_yctx *ctx, enum rs_diag_level level, const struct rs_ynode *node,
		     const char *path, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* True when n has the type; otherwise reports
 * `path: wrong type: expected a mapping, got a sequence` and returns false. */
bool rs_yaml__expect(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		     enum rs_ynode_type type);

/* Readers of one scalar. Each returns true and sets *out, or reports why not
 * (wrong type, out of range, ...) and returns false leaving *out as it was.
 * str duplicates the text into *out (freeing what was there). */
bool rs_yaml__str(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path, char **out);
bool rs_yaml__u32(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path, uint32_t min,
		  uint32_t max, uint32_t *out);
bool rs_yaml__bool(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path, bool *out);

/* Reads map[key] as a string; when it is absent, reports
 * `path.key: required field is missing` at map (if required) and returns false. */
bool rs_yaml__str_field(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			const char *key, bool required, char **out);

/* Reads a sequence of strings into a NULL-free array *out of *n strings. */
bool rs_yaml__str_list(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		       char ***out, size_t *count);

/* Reads a mapping of string to string (Kubernetes labels). */
bool rs_yaml__str_map(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
		      struct rs_kv **out, size_t *count);

/* Checks map's keys against known (NULL-terminated): an unknown key is a
 * warning `unknown field 'path.key'` (ignored, as kubectl's warn mode does),
 * a repeated key is an error, as in Kubernetes' strict decoding. With known
 * NULL the keys are data (a map of names), only checked to be unique strings. */
void rs_yaml__check_fields(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
			   const char *const *known);

/* The pair whose scalar key equals key, or NULL. */
const struct rs_ypair *rs_yaml__find(const struct rs_ynode *map, const char *key);

/* Helpers shared by the kind files, one implementation each (common.c). */
struct rs_strs;
struct rs_selector;
struct rs_target_ref;
struct rs_opt_dur;

/* Marks ctx out of memory (the load fails with -ENOMEM) and returns false. */
bool rs_config__nomem(struct rs_yctx *ctx);
/* calloc for n parsed items; NULL (nothing to free) when n is 0 or on failure. */
void *rs_config__alloc_items(struct rs_yctx *ctx, size_t n, size_t size);
/* Frees the strings of s and leaves it empty. */
void rs_config__strs_clear(struct rs_strs *s);
/* Frees n key/value pairs and the array kv. */
void rs_config__kvs_free(struct rs_kv *kv, size_t n);
/* Frees n strings and the array v. */
void rs_config__strv_free(char **v, size_t n);

/* The fields every kind's struct begins with, in this order (common.c
 * checks each kind at compile time). */
struct rs_config__head {
	char *name;
	char *ns;
	struct rs_pos pos;
};
/* The first of arr[0..n) (of size bytes each) named ns/name and, unless file is NULL, from file. */
const struct rs_config__head *rs_config__find(const void *arr, size_t n, size_t size,
                                              const char *file, const char *ns, const char *name);
/* Moves *item (then zeroed) onto the end of the array *(T **)arrp of *n; 0 or -ENOMEM. */
int rs_config__grow(void *arrp, size_t *n, void *item, size_t size);

/* Reads spec.selector into *sel as Istio's validateWorkloadSelector checks it. */
void rs_config__parse_selector(struct rs_yctx *ctx, const struct rs_ynode *spec,
                               struct rs_selector *sel);
/* Reads spec.targetRef then spec.targetRefs[] into *out (warned: not implemented yet). */
void rs_config__parse_target_refs(struct rs_yctx *ctx, const struct rs_ynode *spec,
                                  struct rs_target_ref **out, size_t *count);
/* Frees the strings of n target refs and the array t. */
void rs_config__target_refs_free(struct rs_target_ref *t, size_t n);

/* v's index in names (n entries or up to a NULL; "" never matches) into *out, else reports. */
bool rs_config__parse_enum(struct rs_yctx *ctx, const struct rs_ynode *v, const char *path,
                           const char *const *names, size_t n, int *out);
/* rs_config__parse_enum on map[key] at path.key; absent leaves *out at its default. */
void rs_config__read_enum(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                          const char *key, const char *const *names, size_t n, int *out);
/* An IPv4 or IPv6 address. */
bool rs_config__is_ip(const char *s);
/* An address or a CIDR block whose prefix length fits the family. */
bool rs_config__is_ip_or_cidr(const char *s);

/* Warns of map's unknown keys, and of set keys in not_implemented (may be NULL). */
void rs_config__check_fields(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                             const char *const *fields, const char *const *not_implemented);
/* host as an FQDN (Istio's short-name rule in ns), newly allocated; NULL on nomem. */
char *rs_config__resolve_host(struct rs_yctx *ctx, const char *host, const char *ns);
/* Go's time.ParseDuration (`10s`, `250ms`, `1h30m`) into *ns; false for anything else. */
bool rs_config__parse_duration(const char *s, uint64_t *ns);
/* Reads map[key] as a duration into *out (set); absent leaves it unset. */
void rs_config__read_duration(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                              const char *key, struct rs_opt_dur *out);

/* Reports `already defined at f:l:c` for a prev, else sets name, ns, pos; false if not started. */
bool rs_config__begin(struct rs_yctx *ctx, const struct rs_ynode *root,
                      const struct rs_config__head *prev, const char *name, const char *ns,
                      char **name_out, char **ns_out, struct rs_pos *pos_out);
/* root's spec, a mapping; NULL when it is absent or not a mapping (reported). */
const struct rs_ynode *rs_config__spec(struct rs_yctx *ctx, const struct rs_ynode *root);

/* Resource parsers, one file per kind. Each reads one resource whose
 * apiVersion/kind/metadata load.c has already checked, reports through ctx,
 * and on success moves the result into cfg. Returns 0 or -ENOMEM. */
int rs_config__service_entry_load(struct rs_yctx *ctx, const struct rs_ynode *root,
				  const char *name, const char *ns, struct rs_config *cfg);
void rs_config__service_entry_clear(struct rs_service_entry *se);

/* The other kinds, one file each (virtual_service.c, ...). */
int rs_config__virtual_service_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
			const char *ns, struct rs_config *cfg);
int rs_config__destination_rule_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
			const char *ns, struct rs_config *cfg);
int rs_config__workload_entry_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
			const char *ns, struct rs_config *cfg);
int rs_config__sidecar_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
			const char *ns, struct rs_config *cfg);
int rs_config__peer_authentication_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
			const char *ns, struct rs_config *cfg);
int rs_config__authorization_policy_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
			const char *ns, struct rs_config *cfg);
int rs_config__request_authentication_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
			const char *ns, struct rs_config *cfg);
int rs_config__telemetry_load(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
			const char *ns, struct rs_config *cfg);
/* Frees cfg->virtual_services and what each entry owns. */
void rs_config__virtual_service_free_all(struct rs_config *cfg);
/* Frees cfg->destination_rules and what each entry owns. */
void rs_config__destination_rule_free_all(struct rs_config *cfg);
/* Frees cfg->workload_entries and what each entry owns. */
void rs_config__workload_entry_free_all(struct rs_config *cfg);
/* Frees cfg->sidecars and what each entry owns. */
void rs_config__sidecar_free_all(struct rs_config *cfg);
/* Frees cfg->peer_authentications and what each entry owns. */
void rs_config__peer_authentication_free_all(struct rs_config *cfg);
/* Frees cfg->authorization_policies and what each entry owns. */
void rs_config__authorization_policy_free_all(struct rs_config *cfg);
/* Frees cfg->request_authentications and what each entry owns. */
void rs_config__request_authentication_free_all(struct rs_config *cfg);
/* Frees cfg->telemetries and what each entry owns. */
void rs_config__telemetry_free_all(struct rs_config *cfg);

/* The checks across resources (check.c), once every file is loaded: a
 * subset no DestinationRule defines (an error), a subset selecting none of
 * its host's known endpoints, a subset two merged DestinationRules define,
 * an AuthorizationPolicy value its own not-list excludes (warnings). */
void rs_config__check(const struct rs_config *cfg, struct rs_diags *diags);


#endif
