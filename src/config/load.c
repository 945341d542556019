/* From paths to the typed model: which files to read, in which order, and
 * which resource parser each document goes to. The YAML itself is yaml.c's,
 * each kind's fields are its own file's (service_entry.c, ...). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ringside/config.h"
#include "yaml.h"

typedef int (*kind_load_fn)(struct rs_yctx *ctx, const struct rs_ynode *root, const char *name,
			    const char *ns, struct rs_config *cfg);

/* The Istio kinds ringside reads, with the apiVersions Istio serves for each
 * (v1 since Istio 1.22). A NULL load means "known, not handled yet". */
struct kind {
	const char *name;
	const char *group;
	const char *versions[4]; /* NULL-terminated */
	kind_load_fn load;
};

static const struct kind kinds[] = {
	{"ServiceEntry", "networking.istio.io", {"v1alpha3", "v1beta1", "v1"},
	 rs_config__service_entry_load},
	{"VirtualService", "networking.istio.io", {"v1alpha3", "v1beta1", "v1"},
	 rs_config__virtual_service_load},
	{"DestinationRule", "networking.istio.io", {"v1alpha3", "v1beta1", "v1"},
	 rs_config__destination_rule_load},
	{"WorkloadEntry", "networking.istio.io", {"v1alpha3", "v1beta1", "v1"},
	 rs_config__workload_entry_load},
	{"Sidecar", "networking.istio.io", {"v1alpha3", "v1beta1", "v1"},
	 rs_config__sidecar_load},
	{"PeerAuthentication", "security.istio.io", {"v1beta1", "v1"},
	 rs_config__peer_authentication_load},
	{"AuthorizationPolicy", "security.istio.io", {"v1beta1", "v1"},
	 rs_config__authorization_policy_load},
	{"RequestAuthentication", "security.istio.io", {"v1beta1", "v1"},
	 rs_config__request_authentication_load},
	{"Telemetry", "telemetry.istio.io", {"v1alpha1", "v1"},
	 rs_config__telemetry_load},
};

/* Fields every Kubernetes object may carry; `status` appears in
 * `kubectl get -o yaml` output and is ignored. */
static const char *const object_fields[] = {"apiVersion", "kind", "metadata", "spec", "status",
					    NULL};
static const char *const list_fields[] = {"apiVersion", "kind", "metadata", "items", NULL};

struct loader {
	struct rs_config *cfg;
	struct rs_diags *diags;
	const char *file; /* borrowed: cfg->files entry being read */
	char **seen;      /* owns: real paths of files and directories already read */
	size_t nseen;
	size_t cap_seen;
};

static const struct kind *kind_find(const char *name)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	}
	return NULL;
}

static bool version_served(const struct kind *k, const char *api_version)
{
	size_t glen = strlen(k->group);

	if (strncmp(api_version, k->group, glen) != 0 || api_version[glen] != '/')
		return false;
	for (const char *const *v = k->versions; *v; v++) {
		if (strcmp(api_version + glen + 1, *v) == 0)
			return true;
	}
	return false;
}

static void wrong_version(struct rs_yctx *ctx, const struct rs_ynode *n, const struct kind *k)
{
	char expected[256] = "";

	for (size_t i = 0; k->versions[i]; i++) {
		size_t len = strlen(expected);

		snprintf(expected + len, sizeof expected - len, "%s%s/%s",
			 i == 0 ? "" : !k->versions[i + 1] ? " or " : ", ", k->group, k->versions[i]);
	}
	rs_yaml__report(ctx, RS_DIAG_ERROR, n, NULL,
			"apiVersion '%s' is not served for kind %s (expected %s)", n->str, k->name,
			expected);
}

/* A required top-level scalar of the object (kind, apiVersion, metadata.name):
 * its text, borrowed from the tree, or NULL after reporting why not. */
static const char *identity_field(struct rs_yctx *ctx, const struct rs_ynode *map,
				  const char *path, const char *key, const struct rs_ynode **node)
{
	const struct rs_ynode *n = rs_yaml__get(map, key);

	*node = n;
	if (!n) {
		rs_yaml__report(ctx, RS_DIAG_ERROR, map, path, "required field is missing");
		return NULL;
	}
	if (!rs_yaml__expect(ctx, n, path, RS_YNODE_SCALAR))
		return NULL;
	if (n->str[0] == '\0') {
		rs_yaml__report(ctx, RS_DIAG_ERROR, n, path, "must not be empty");
		return NULL;
	}
	return n->str;
}

static int load_resource(struct loader *ld, const struct rs_ynode *root, const char *where)
{
	struct rs_yctx ctx = {.file = ld->file, .diags = ld->diags};
	const struct rs_ynode *kind_node = NULL, *version_node = NULL, *name_node = NULL;
	const struct rs_ynode *meta, *ns_node;
	const char *kind_name, *api_version, *name = NULL, *ns = "default";
	const struct kind *k;
	int r = 0;

	if (!rs_yaml__expect(&ctx, root, where, RS_YNODE_MAPPING))
		goto cleanup;
	/* Who the resource is comes first, so every later message names it. */
	kind_name = identity_field(&ctx, root, "kind", "kind", &kind_node);
	meta = rs_yaml__get(root, "metadata");
	if (!meta)
		rs_yaml__report(&ctx, RS_DIAG_ERROR, root, "metadata", "required field is missing");
	else if (rs_yaml__expect(&ctx, meta, "metadata", RS_YNODE_MAPPING))
		name = identity_field(&ctx, meta, "metadata.name", "name", &name_node);
	ns_node = rs_yaml__get(meta, "namespace");
	/* `namespace: ""` means the default namespace to kubectl as well. */
	if (ns_node && rs_yaml__expect(&ctx, ns_node, "metadata.namespace", RS_YNODE_SCALAR) &&
	    ns_node->str[0])
		ns = ns_node->str;
	if (kind_name && name)
		snprintf(ctx.resource, sizeof ctx.resource, "%s/%s/%s", kind_name, ns, name);
	api_version = identity_field(&ctx, root, "apiVersion", "apiVersion", &version_node);
	if (ctx.rejected)
		goto cleanup;

	if (strcmp(kind_name, "List") == 0) {
		rs_yaml__report(&ctx, RS_DIAG_ERROR, kind_node, NULL,
				"a List cannot contain another List");
		goto cleanup;
	}
	k = kind_find(kind_name);
	if (!k) {
		rs_yaml__report(&ctx, RS_DIAG_ERROR, kind_node, NULL, "unknown kind '%s'", kind_name);
		goto cleanup;
	}
	if (!version_served(k, api_version)) {
		wrong_version(&ctx, version_node, k);
		goto cleanup;
	}
	if (!k->load) {
		rs_yaml__report(&ctx, RS_DIAG_WARNING, root, NULL,
				"kind %s is not handled yet; skipped", k->name);
		goto cleanup;
	}
	rs_yaml__check_fields(&ctx, root, "", object_fields);
	r = k->load(&ctx, root, name, ns, ld->cfg);
cleanup:
	if (ctx.nomem)
		r = -ENOMEM;
	return r;
}

/* `kubectl get -o yaml` prints several objects as one `kind: List`. */
static int load_list(struct loader *ld, const struct rs_ynode *root)
{
	struct rs_yctx ctx = {.file = ld->file, .diags = ld->diags};
	const struct rs_ynode *items = rs_yaml__get(root, "items");
	char path[RS_YPATH_MAX];
	int r = 0;

	rs_yaml__check_fields(&ctx, root, "", list_fields);
	if (items && rs_yaml__expect(&ctx, items, "items", RS_YNODE_SEQUENCE)) {
		for (size_t i = 0; i < items->n && r == 0; i++)
			r = load_resource(ld, items->items[i], rs_yaml__path_index(path, "items", i));
	}
	if (ctx.nomem)
		r = -ENOMEM;
	return r;
}

static int on_document(const struct rs_ynode *root, void *user_data)
{
	struct loader *ld = user_data;
	const struct rs_ynode *kind;

	/* `---` followed by nothing (or only comments): common between
	 * resources, and meaningless. */
	if (rs_yaml__is_null(root))
		return 0;
	kind = rs_yaml__get(root, "kind");
	if (kind && kind->type == RS_YNODE_SCALAR && strcmp(kind->str, "List") == 0)
		return load_list(ld, root);
	return load_resource(ld, root, "");
}

/* Records key as read; returns 1 when it already was, 0, or -ENOMEM. */
static int mark_seen(struct loader *ld, const char *path)
{
	char *key = realpath(path, NULL);

	/* A pipe such as bash's <(...) has no real path; its name is unique. */
	if (!key)
		key = strdup(path);
	if (!key)
		return -ENOMEM;
	for (size_t i = 0; i < ld->nseen; i++) {
		if (strcmp(ld->seen[i], key) == 0) {
			free(key);
			return 1;
		}
	}
	if (ld->nseen == ld->cap_seen) {
		size_t cap = ld->cap_seen ? ld->cap_seen * 2 : 16;
		char **v = realloc(ld->seen, cap * sizeof *v);

		if (!v) {
			free(key);
			return -ENOMEM;
		}
		ld->seen = v;
		ld->cap_seen = cap;
	}
	ld->seen[ld->nseen++] = key;
	return 0;
}

static int load_file(struct loader *ld, const char *path)
{
	struct rs_config *cfg = ld->cfg;
	char **files;
	int r;

	r = mark_seen(ld, path);
	if (r != 0)
		return r < 0 ? r : 0;
	files = realloc(cfg->files, (cfg->nfiles + 1) * sizeof *files);
	if (!files)
		return -ENOMEM;
	cfg->files = files;
	files[cfg->nfiles] = strdup(path);
	if (!files[cfg->nfiles])
		return -ENOMEM;
	ld->file = files[cfg->nfiles++];
	r = rs_yaml__parse_file(ld->file, ld->diags, on_document, ld);
	ld->file = NULL;
	/* Anything else was reported against the file and rejects only it. */
	return r == -ENOMEM ? r : 0;
}

static bool is_yaml_name(const char *name)
{
	size_t len = strlen(name);

	return (len > 5 && strcmp(name + len - 5, ".yaml") == 0) ||
	       (len > 4 && strcmp(name + len - 4, ".yml") == 0);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(struct loader *ld, const char *path);

static int load_entry(struct loader *ld, const char *dir, const char *name)
{
	struct rs_pos pos = {0};
	size_t dlen = strlen(dir);
	struct stat st;
	char *full = NULL;
	int r = 0;

	if (asprintf(&full, "%s%s%s", dir, dlen && dir[dlen - 1] == '/' ? "" : "/", name) < 0)
		return -ENOMEM;
	/* stat, not lstat: ConfigMap files are symlinks, and so may be
	 * directories; loops are cut by mark_seen. */
	if (stat(full, &st) < 0) {
		/* A dangling link is what an atomic ConfigMap swap can leave
		 * for a moment; the next reload sees the new files. */
		pos.file = full;
		rs_diags_add(ld->diags, RS_DIAG_WARNING, &pos, NULL, "cannot read: %s; skipped",
			     strerror(errno));
		goto cleanup;
	}
	if (S_ISDIR(st.st_mode))
		r = load_dir(ld, full);
	else if (S_ISREG(st.st_mode) && is_yaml_name(name))
		r = load_file(ld, full);
cleanup:
	free(full);
	return r;
}

static int load_dir(struct loader *ld, const char *path)
{
	struct rs_pos pos = {.file = path};
	char **names = NULL;
	size_t n = 0, cap = 0;
	bool has_data = false;
	struct dirent *de;
	DIR *d = NULL;
	int r;

	r = mark_seen(ld, path);
	if (r != 0)
		return r < 0 ? r : 0;
	d = opendir(path);
	if (!d && errno == ENOMEM) {
		r = -ENOMEM;
		goto cleanup;
	}
	if (!d) {
		rs_diags_add(ld->diags, RS_DIAG_ERROR, &pos, NULL, "cannot read: %s",
			     strerror(errno));
		goto cleanup;
	}
	while ((de = readdir(d))) {
		/* Hidden entries are not configuration: editors' and VCS
		 * files, and a ConfigMap volume's timestamped directories,
		 * which its visible names already point into. */
		if (de->d_name[0] == '.') {
			has_data |= strcmp(de->d_name, "..data") == 0;
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **v = realloc(names, ncap * sizeof *v);

			if (!v) {
				r = -ENOMEM;
				goto cleanup;
			}
			names = v;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			goto cleanup;
		}
		n++;
	}
	/* Byte order, not the locale's: the same files load in the same order
	 * on every machine, so the same duplicate wins everywhere. */
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	for (size_t i = 0; i < n && r == 0; i++)
		r = load_entry(ld, path, names[i]);
	/* `..data` last: the visible names load first, so messages show the
	 * name the user wrote, and ..data adds only what they do not cover. */
	if (r == 0 && has_data)
		r = load_entry(ld, path, "..data");
cleanup:
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

int rs_config_load(const char *const *paths, size_t npaths, struct rs_config **out,
		   struct rs_diags *diags)
{
	struct rs_diags own = {0};
	struct loader ld = {.diags = diags ? diags : &own};
	struct stat st;
	int r = 0;

	*out = NULL;
	/* Every path is checked before any is read: a mistyped path fails the
	 * whole load, since loading the rest would silently run with less. */
	for (size_t i = 0; i < npaths; i++) {
		struct rs_pos pos = {.file = paths[i]};

		if (stat(paths[i], &st) < 0) {
			int e = -errno;

			rs_diags_add(ld.diags, RS_DIAG_ERROR, &pos, NULL, "cannot read: %s",
				     strerror(errno));
			if (r == 0)
				r = e;
		}
	}
	if (r < 0)
		goto cleanup;
	ld.cfg = calloc(1, sizeof *ld.cfg);
	if (!ld.cfg) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < npaths && r == 0; i++) {
		if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode))
			r = load_dir(&ld, paths[i]);
		else
			r = load_file(&ld, paths[i]);
	}
	if (r < 0)
		goto cleanup;
	rs_config__check(ld.cfg, ld.diags);
	*out = ld.cfg;
	ld.cfg = NULL;
cleanup:
	rs_config_free(ld.cfg);
	for (size_t i = 0; i < ld.nseen; i++)
		free(ld.seen[i]);
	free(ld.seen);
	rs_diags_free(&own);
	return r;
}

void rs_config_free(struct rs_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_service_entries; i++)
		rs_config__service_entry_clear(&cfg->service_entries[i]);
	free(cfg->service_entries);
	rs_config__virtual_service_free_all(cfg);
	rs_config__destination_rule_free_all(cfg);
	rs_config__workload_entry_free_all(cfg);
	rs_config__sidecar_free_all(cfg);
	rs_config__peer_authentication_free_all(cfg);
	rs_config__authorization_policy_free_all(cfg);
	rs_config__request_authentication_free_all(cfg);
	rs_config__telemetry_free_all(cfg);
	for (size_t i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	free(cfg->files);
	free(cfg);
}
