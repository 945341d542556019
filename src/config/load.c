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
	size_t fidx;      /* its index in cfg->files */
	/* Reading a kept version again: only the resource whose object begins
	 * at only_line:only_col, marked kept. */
	bool keeping;
	int only_line;
	int only_col;
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

/* Notes the resource read at root, so that a reload can tell which of the
 * previous versions to keep. One whose name is unknown cannot be matched to
 * its previous version: its whole file counts as unreadable instead. */
static int record(struct loader *ld, const struct rs_yctx *ctx, const struct rs_ynode *root)
{
	struct rs_config_res res = {
	    .pos = {ld->file, root->line, root->col},
	    .rejected = ctx->rejected,
	    .kept = ld->keeping,
	};

	if (!ctx->resource[0]) {
		ld->cfg->files[ld->fidx].broken = true;
		return 0;
	}
	res.id = strdup(ctx->resource);
	if (!res.id || rs_config__grow(&ld->cfg->resources, &ld->cfg->n_resources, &res,
				       sizeof res) < 0) {
		free(res.id);
		return -ENOMEM;
	}
	return 0;
}

static int load_resource(struct loader *ld, const struct rs_ynode *root, const char *where)
{
	struct rs_yctx ctx = {.file = ld->file, .diags = ld->diags};
	const struct rs_ynode *kind_node = NULL, *version_node = NULL, *name_node = NULL;
	const struct rs_ynode *meta, *ns_node;
	const char *kind_name, *api_version, *name = NULL, *ns = "default";
	const struct kind *k;
	int r = 0;

	if (ld->keeping && (root->line != ld->only_line || root->col != ld->only_col))
		return 0;
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
	if (r == 0 && !ctx.nomem)
		r = record(ld, &ctx, root);
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

/* Appends a file entry owning a copy of path and text (which may be NULL). */
static int add_file(struct rs_config *cfg, const char *path, const char *text, size_t len,
		    bool kept)
{
	struct rs_config_file f = {.path = strdup(path), .len = len, .kept = kept};

	if (text) {
		f.text = malloc(len + 1);
		if (f.text) {
			memcpy(f.text, text, len);
			f.text[len] = '\0';
		}
	}
	if (!f.path || (text && !f.text) ||
	    rs_config__grow(&cfg->files, &cfg->nfiles, &f, sizeof f) < 0) {
		free(f.path);
		free(f.text);
		return -ENOMEM;
	}
	return 0;
}

/* Parses the text of file entry fidx into the configuration. */
static int parse_entry(struct loader *ld, size_t fidx)
{
	struct rs_config_file *f = &ld->cfg->files[fidx];
	int r;

	ld->fidx = fidx;
	ld->file = f->path;
	r = rs_yaml__parse_string(f->path, f->text, f->len, ld->diags, on_document, ld);
	ld->file = NULL;
	if (r == -EINVAL)
		ld->cfg->files[fidx].broken = true;
	/* Anything else was reported against the file and rejects only it. */
	return r == -ENOMEM ? r : 0;
}

static int load_file(struct loader *ld, const char *path)
{
	struct rs_config *cfg = ld->cfg;
	struct rs_config_file *f;
	int r;

	r = mark_seen(ld, path);
	if (r != 0)
		return r < 0 ? r : 0;
	r = add_file(cfg, path, NULL, 0, false);
	if (r < 0)
		return r;
	f = &cfg->files[cfg->nfiles - 1];
	r = rs_yaml__read_file(f->path, ld->diags, &f->text, &f->len);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		f->broken = true;
		return 0;
	}
	return parse_entry(ld, cfg->nfiles - 1);
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

static int add_dir(struct rs_config *cfg, const char *real)
{
	char *d = strdup(real);

	if (!d || rs_config__grow(&cfg->dirs, &cfg->ndirs, &d, sizeof d) < 0) {
		free(d);
		return -ENOMEM;
	}
	return 0;
}

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
	r = add_dir(ld->cfg, ld->seen[ld->nseen - 1]);
	if (r < 0)
		goto cleanup;
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
	if (r == 0)
		r = rs_config__index_drs(ld.cfg);
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

static const struct rs_config_res *res_find(const struct rs_config *cfg, const char *id,
					    const char *path)
{
	for (size_t i = 0; i < cfg->n_resources; i++) {
		const struct rs_config_res *r = &cfg->resources[i];

		if (strcmp(r->id, id) == 0 && strcmp(r->pos.file, path) == 0)
			return r;
	}
	return NULL;
}

static const struct rs_config_file *file_find(const struct rs_config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->nfiles; i++)
		if (!cfg->files[i].kept && strcmp(cfg->files[i].path, path) == 0)
			return &cfg->files[i];
	return NULL;
}

/* Whether prev's version of r stays: the new one was rejected, or the new
 * file could not be read to the end and r is not in the part that was. A
 * resource that is simply gone from a file that loaded was deleted. */
static bool must_keep(const struct rs_config *cfg, const struct rs_config_res *r,
		      const struct rs_config_res **now)
{
	const struct rs_config_file *f;

	*now = res_find(cfg, r->id, r->pos.file);
	if (*now)
		return (*now)->rejected;
	f = file_find(cfg, r->pos.file);
	return f && f->broken;
}

int rs_config_keep_last_good(struct rs_config *cfg, const struct rs_config *prev,
			     struct rs_diags *diags)
{
	struct rs_diags scratch = {0};
	struct loader ld = {.cfg = cfg, .diags = &scratch, .keeping = true};
	size_t *entry = NULL; /* prev's file index -> cfg's kept entry, or SIZE_MAX */
	int kept = 0, r = 0;

	if (!prev || !prev->nfiles)
		return 0;
	entry = malloc(prev->nfiles * sizeof *entry);
	if (!entry)
		return -ENOMEM;
	for (size_t i = 0; i < prev->nfiles; i++)
		entry[i] = SIZE_MAX;
	for (size_t i = 0; i < prev->n_resources && r == 0; i++) {
		const struct rs_config_res *old = &prev->resources[i], *now;
		struct rs_pos at;
		size_t fi = 0, n;

		if (old->rejected || !must_keep(cfg, old, &now))
			continue;
		/* Where to report it; now moves as cfg->resources grows below. */
		at = now ? now->pos : old->pos;
		while (prev->files[fi].path != old->pos.file)
			fi++;
		if (entry[fi] == SIZE_MAX) {
			r = add_file(cfg, prev->files[fi].path, prev->files[fi].text,
				     prev->files[fi].len, true);
			if (r < 0)
				break;
			entry[fi] = cfg->nfiles - 1;
		}
		ld.only_line = old->pos.line;
		ld.only_col = old->pos.col;
		n = cfg->n_resources;
		r = parse_entry(&ld, entry[fi]);
		if (r < 0)
			break;
		/* The old version does not fit any more (its name is taken by
		 * the resource moved to another file): the new one stands. */
		if (cfg->n_resources > n && cfg->resources[cfg->n_resources - 1].rejected) {
			while (cfg->n_resources > n)
				free(cfg->resources[--cfg->n_resources].id);
			continue;
		}
		kept++;
		rs_diags_add(diags, RS_DIAG_WARNING, &at, old->id,
			     "the version loaded before (%s:%d:%d) stays in force",
			     cfg->files[entry[fi]].path, old->pos.line, old->pos.col);
	}
	free(entry);
	rs_diags_free(&scratch);
	if (r == 0 && kept)
		r = rs_config__index_drs(cfg);
	return r < 0 ? r : kept;
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
	for (size_t i = 0; i < cfg->nfiles; i++) {
		free(cfg->files[i].path);
		free(cfg->files[i].text);
	}
	free(cfg->files);
	for (size_t i = 0; i < cfg->n_resources; i++)
		free(cfg->resources[i].id);
	free(cfg->resources);
	rs_config__strv_free(cfg->dirs, cfg->ndirs);
	free(cfg->dr_exact);
	free(cfg->dr_wild);
	free(cfg);
}
