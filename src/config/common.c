/* Helpers shared by the resource parsers of src/config/ (one file per kind):
 * allocation failure, freeing of the common model types, and the field
 * readers more than one kind needs. Declared in yaml.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/config-networking-t.h"
#include "ringside/config-security-t.h"
#include "ringside/config.h"
#include "yaml.h"

/* The Kubernetes cluster domain Istio expands short names with. */
#define CLUSTER_DOMAIN "svc.cluster.local"

bool rs_config__nomem(struct rs_yctx *ctx)
{
	ctx->nomem = true;
	ctx->rejected = true;
	return false;
}

void *rs_config__alloc_items(struct rs_yctx *ctx, size_t n, size_t size)
{
	void *v;

	if (n == 0)
		return NULL;
	v = calloc(n, size);
	if (!v)
		rs_config__nomem(ctx);
	return v;
}

void rs_config__strs_clear(struct rs_strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	free(s->pos);
	s->v = NULL;
	s->n = 0;
	s->pos = NULL;
}

void rs_config__kvs_free(struct rs_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

/* rs_config__find reads every kind through struct rs_config__head: each
 * kind's struct must begin with the same three fields. */
#define SAME_HEAD(type)                                                                            \
	_Static_assert(offsetof(struct type, name) == offsetof(struct rs_config__head, name) &&    \
	                   offsetof(struct type, ns) == offsetof(struct rs_config__head, ns) &&    \
	                   offsetof(struct type, pos) == offsetof(struct rs_config__head, pos),    \
	               #type " must begin with name, ns, pos")
SAME_HEAD(rs_service_entry);
SAME_HEAD(rs_virtual_service);
SAME_HEAD(rs_destination_rule);
SAME_HEAD(rs_workload_entry);
SAME_HEAD(rs_sidecar);
SAME_HEAD(rs_peer_authentication);
SAME_HEAD(rs_authorization_policy);
SAME_HEAD(rs_request_authentication);
SAME_HEAD(rs_telemetry);

const struct rs_config__head *rs_config__find(const void *arr, size_t n, size_t size,
                                              const char *file, const char *ns, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		const struct rs_config__head *h =
		    (const struct rs_config__head *)((const char *)arr + i * size);

		if ((!file || h->pos.file == file) && strcmp(h->ns, ns) == 0 &&
		    strcmp(h->name, name) == 0)
			return h;
	}
	return NULL;
}

int rs_config__grow(void *arrp, size_t *n, void *item, size_t size)
{
	void *arr, *v;

	/* One at a time: loading is rare and off the data path, and the
	 * snapshot build compacts what routing needs. memcpy reads and writes
	 * the caller's typed pointer without aliasing it as void *. */
	memcpy(&arr, arrp, sizeof arr);
	v = realloc(arr, (*n + 1) * size);
	if (!v)
		return -ENOMEM;
	memcpy((char *)v + *n * size, item, size);
	memset(item, 0, size);
	memcpy(arrp, &v, sizeof v);
	(*n)++;
	return 0;
}

static const char *const selector_fields[] = {"matchLabels", NULL};

/* spec.selector, as Istio's validateWorkloadSelector checks it. */
void rs_config__parse_selector(struct rs_yctx *ctx, const struct rs_ynode *spec,
                               struct rs_selector *sel)
{
	const struct rs_ynode *n = rs_yaml__get(spec, "selector"), *ml;
	char path[RS_YPATH_MAX];

	if (!n || !rs_yaml__expect(ctx, n, "spec.selector", RS_YNODE_MAPPING))
		return;
	sel->set = true;
	rs_yaml__check_fields(ctx, n, "spec.selector", selector_fields);
	ml = rs_yaml__get(n, "matchLabels");
	if (ml &&
	    !rs_yaml__str_map(ctx, ml, "spec.selector.matchLabels", &sel->labels, &sel->nlabels))
		return;
	/* Istio reads a selector without labels as no selector: every
	 * workload of the namespace. Likely not what was meant, so say so. */
	if (sel->nlabels == 0) {
		rs_yaml__report(ctx, RS_DIAG_WARNING, ml ? ml : n,
		                ml ? "spec.selector.matchLabels" : "spec.selector",
		                "no labels: applies to every workload of the namespace, as Istio "
		                "does without a selector");
		return;
	}
	for (size_t i = 0; i < sel->nlabels; i++) {
		rs_yaml__path_key(path, "spec.selector.matchLabels", sel->labels[i].key);
		if (sel->labels[i].key[0] == '\0')
			rs_yaml__report(ctx, RS_DIAG_ERROR, ml->pairs[i].key, path,
			                "a label name must not be empty");
		else if (strchr(sel->labels[i].key, '*') || strchr(sel->labels[i].value, '*'))
			rs_yaml__report(ctx, RS_DIAG_ERROR, ml->pairs[i].value, path,
			                "wildcards are not supported in a selector");
	}
}

static const char *const target_ref_fields[] = {"group", "kind", "name", "namespace", NULL};

void rs_config__target_refs_free(struct rs_target_ref *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].group);
		free(t[i].kind);
		free(t[i].name);
		free(t[i].ns);
	}
	free(t);
}

static void parse_target_ref(struct rs_yctx *ctx, const struct rs_ynode *n, const char *path,
                             struct rs_target_ref *t)
{
	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_MAPPING))
		return;
	rs_yaml__check_fields(ctx, n, path, target_ref_fields);
	rs_yaml__str_field(ctx, n, path, "group", false, &t->group);
	rs_yaml__str_field(ctx, n, path, "kind", true, &t->kind);
	rs_yaml__str_field(ctx, n, path, "name", true, &t->name);
	rs_yaml__str_field(ctx, n, path, "namespace", false, &t->ns);
}

/* spec.targetRef and spec.targetRefs[] (Gateway API attachment, for
 * waypoints and gateways): parsed so the resource loads, but a sidecar is
 * selected by labels, so the data path does not use them yet. */
void rs_config__parse_target_refs(struct rs_yctx *ctx, const struct rs_ynode *spec,
                                  struct rs_target_ref **out, size_t *count)
{
	const struct rs_ynode *one = rs_yaml__get(spec, "targetRef");
	const struct rs_ynode *many = rs_yaml__get(spec, "targetRefs");
	size_t total = 0;
	char path[RS_YPATH_MAX];

	if (one)
		total++;
	if (many && rs_yaml__expect(ctx, many, "spec.targetRefs", RS_YNODE_SEQUENCE))
		total += many->n;
	else
		many = NULL;
	if (total == 0)
		return;
	*out = rs_config__alloc_items(ctx, total, sizeof **out);
	if (!*out)
		return;
	*count = total;
	if (one) {
		parse_target_ref(ctx, one, "spec.targetRef", &(*out)[0]);
		rs_yaml__report(ctx, RS_DIAG_WARNING, one, NULL,
		                "field 'spec.targetRef' is not implemented yet; ignored");
	}
	if (many) {
		for (size_t i = 0; i < many->n; i++)
			parse_target_ref(ctx, many->items[i],
			                 rs_yaml__path_index(path, "spec.targetRefs", i),
			                 &(*out)[(one ? 1 : 0) + i]);
		rs_yaml__report(ctx, RS_DIAG_WARNING, many, NULL,
		                "field 'spec.targetRefs' is not implemented yet; ignored");
	}
	if (rs_yaml__get(spec, "selector") && (one || many))
		rs_yaml__report(ctx, RS_DIAG_ERROR, one ? one : many,
		                one ? "spec.targetRef" : "spec.targetRefs",
		                "only one of selector or targetRef(s) can be set");
}

bool rs_config__parse_enum(struct rs_yctx *ctx, const struct rs_ynode *v, const char *path,
                           const char *const *names, size_t n, int *out)
{
	char expected[512] = "";
	size_t shown = 0, last = 0;

	if (!rs_yaml__expect(ctx, v, path, RS_YNODE_SCALAR))
		return false;
	/* An empty name holds the place of a value that cannot be written
	 * (an UNSET at index 0): never matched, never offered. */
	for (size_t i = 0; i < n && names[i]; i++) {
		if (!names[i][0])
			continue;
		if (strcmp(v->str, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
		last = i;
	}
	for (size_t i = 0; i < n && names[i]; i++) {
		size_t len = strlen(expected);

		if (!names[i][0])
			continue;
		snprintf(expected + len, sizeof expected - len, "%s%s",
		         shown == 0  ? ""
		         : i == last ? " or "
		                     : ", ",
		         names[i]);
		shown++;
	}
	rs_yaml__report(ctx, RS_DIAG_ERROR, v, path, "unknown value '%s' (expected %s)", v->str,
	                expected);
	return false;
}

void rs_config__read_enum(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                          const char *key, const char *const *names, size_t n, int *out)
{
	const struct rs_ynode *v = rs_yaml__get(map, key);
	char buf[RS_YPATH_MAX];

	if (v)
		rs_config__parse_enum(ctx, v, rs_yaml__path_key(buf, path, key), names, n, out);
}

bool rs_config__is_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool rs_config__is_ip_or_cidr(const char *s)
{
	const char *slash = strchr(s, '/');
	char ip[INET6_ADDRSTRLEN];
	unsigned char buf[sizeof(struct in6_addr)];
	size_t len;
	int max;
	char *end;
	long bits;

	if (!slash)
		return rs_config__is_ip(s);
	len = (size_t)(slash - s);
	if (len >= sizeof ip)
		return false;
	memcpy(ip, s, len);
	ip[len] = '\0';
	if (inet_pton(AF_INET, ip, buf) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, ip, buf) == 1)
		max = 128;
	else
		return false;
	if (slash[1] < '0' || slash[1] > '9')
		return false;
	errno = 0;
	bits = strtol(slash + 1, &end, 10);
	return errno == 0 && *end == '\0' && bits >= 0 && bits <= max;
}

/* Checks map's keys in the order written: an unknown key is a warning (as
 * rs_yaml__check_fields says it), and so is a key that is parsed but that the
 * data path does not implement yet. Repeated and non-string keys are errors. */
void rs_config__check_fields(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                             const char *const *fields, const char *const *not_implemented)
{
	char buf[RS_YPATH_MAX];

	if (!map || map->type != RS_YNODE_MAPPING)
		return;
	/* With no list the keys are only checked to be unique strings. */
	rs_yaml__check_fields(ctx, map, path, NULL);
	for (size_t i = 0; i < map->n; i++) {
		const struct rs_ynode *k = map->pairs[i].key;
		bool known = false, later = false;

		if (k->type != RS_YNODE_SCALAR)
			continue;
		for (const char *const *f = fields; *f && !known; f++)
			known = strcmp(k->str, *f) == 0;
		for (const char *const *f = not_implemented; f && *f && !later; f++)
			later = strcmp(k->str, *f) == 0;
		rs_yaml__path_key(buf, path, k->str);
		if (!known)
			rs_yaml__report(ctx, RS_DIAG_WARNING, k, NULL, "unknown field '%s'", buf);
		else if (later && !rs_yaml__is_null(map->pairs[i].value))
			rs_yaml__report(ctx, RS_DIAG_WARNING, k, NULL,
			                "field '%s' is not implemented yet; ignored", buf);
	}
}

/* Istio's short-name rule (pkg/config/host ResolveShortnameToFQDN): a name
 * without a dot is a Kubernetes service in the resource's namespace; a name
 * with a dot, and `*`, are kept as written. */
char *rs_config__resolve_host(struct rs_yctx *ctx, const char *host, const char *ns)
{
	char *out = NULL;

	if (strchr(host, '.') || strcmp(host, "*") == 0)
		out = strdup(host);
	else if (asprintf(&out, "%s.%s." CLUSTER_DOMAIN, host, ns) < 0)
		out = NULL;
	if (!out)
		rs_config__nomem(ctx);
	return out;
}

/* Go's time.ParseDuration, which Istio's YAML decoding (gogo jsonpb) uses
 * for google.protobuf.Duration: `10s`, `250ms`, `1.5s`, `1h30m`. Negative
 * durations are refused, as Istio's validation does. */
bool rs_config__parse_duration(const char *s, uint64_t *ns)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {
	    {"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
	    {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9},
	};
	double total = 0;

	if (!*s)
		return false;
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return true;
	}
	while (*s) {
		const char *start = s;
		double v = 0, scale = 1, unit = 0;
		size_t best = 0;

		while (*s >= '0' && *s <= '9')
			v = v * 10 + (*s++ - '0');
		if (*s == '.') {
			s++;
			while (*s >= '0' && *s <= '9') {
				scale /= 10;
				v += (*s++ - '0') * scale;
			}
		}
		if (s == start || (s == start + 1 && *start == '.'))
			return false;
		/* The longest unit that matches: `ms` before `m`. */
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			size_t len = strlen(units[i].unit);

			if (len > best && strncmp(s, units[i].unit, len) == 0) {
				best = len;
				unit = units[i].ns;
			}
		}
		if (!best)
			return false;
		total += v * unit;
		s += best;
	}
	if (total > (double)UINT64_MAX / 2)
		return false;
	*ns = (uint64_t)(total + 0.5);
	return true;
}

void rs_config__read_duration(struct rs_yctx *ctx, const struct rs_ynode *map, const char *path,
                              const char *key, struct rs_opt_dur *out)
{
	const struct rs_ynode *v = rs_yaml__get(map, key);
	char buf[RS_YPATH_MAX];

	if (!v)
		return;
	rs_yaml__path_key(buf, path, key);
	if (!rs_yaml__expect(ctx, v, buf, RS_YNODE_SCALAR))
		return;
	if (!rs_config__parse_duration(v->str, &out->ns)) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, v, buf,
		                "'%s' is not a duration (such as 10s, 250ms or 1h30m)", v->str);
		return;
	}
	out->set = true;
}

bool rs_config__begin(struct rs_yctx *ctx, const struct rs_ynode *root,
                      const struct rs_config__head *prev, const char *name, const char *ns,
                      char **name_out, char **ns_out, struct rs_pos *pos_out)
{
	if (prev) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, root, NULL, "already defined at %s:%d:%d",
		                prev->pos.file, prev->pos.line, prev->pos.col);
		return false;
	}
	*name_out = strdup(name);
	*ns_out = strdup(ns);
	if (!*name_out || !*ns_out)
		return rs_config__nomem(ctx);
	*pos_out = (struct rs_pos){ctx->file, root->line, root->col};
	return true;
}

void rs_config__strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

const struct rs_ynode *rs_config__spec(struct rs_yctx *ctx, const struct rs_ynode *root)
{
	const struct rs_ynode *spec = rs_yaml__get(root, "spec");

	if (!spec) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, root, "spec", "required field is missing");
		return NULL;
	}
	if (!rs_yaml__expect(ctx, spec, "spec", RS_YNODE_MAPPING))
		return NULL;
	return spec;
}
