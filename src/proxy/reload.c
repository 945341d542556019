/* Configuration on the main thread: the first load, reloads on SIGHUP and
 * on file changes (inotify, ConfigMap symlink swaps included), publishing
 * each new snapshot to the shards and freeing the old ones once no shard can
 * reach them, and what admin shows of it (/config_status, /config_dump). */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ringside/config-networking-t.h"
#include "ringside/config-security-t.h"
#include "ringside/config.h"
#include "ringside/proxy.h"
#include "ringside/reload.h"
#include "ringside/upstream.h"

/* File events come in bursts (an editor's write and rename, a ConfigMap's
 * new directory, link and cleanup): reload once they have settled. */
#define SETTLE_NS (100 * 1000000ull)

#define WATCH_DIR_EVENTS                                                                  \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB |   \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

static void log_diags(const struct rs_diags *diags)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	rs_diags_print(diags, f);
	fclose(f);
	for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		rs_log(strstr(line, ": error: ") ? RS_LOG_ERROR : RS_LOG_WARN, "config: %s", line);
	}
	free(buf);
}

static void unwatch_all(struct rs_reloader *rl)
{
	for (size_t i = 0; i < rl->nwatches; i++) {
		inotify_rm_watch(rl->ifd, rl->watches[i].wd);
		free(rl->watches[i].name);
	}
	rl->nwatches = 0;
}

/* Watches dir for changes to name (NULL: to anything in it) into v. The
 * kernel gives a directory already watched the descriptor it has. */
static void watch(struct rs_reloader *rl, struct rs_watch **v, size_t *n, const char *dir,
		  const char *name)
{
	int wd = inotify_add_watch(rl->ifd, dir, WATCH_DIR_EVENTS);
	struct rs_watch *nv;

	if (wd < 0) {
		rs_warn("config: cannot watch %s for changes: %s", dir, strerror(errno));
		return;
	}
	nv = realloc(*v, (*n + 1) * sizeof *nv);
	if (!nv)
		return;
	*v = nv;
	nv[(*n)++] = (struct rs_watch){wd, name ? strdup(name) : NULL};
}

static bool has_wd(const struct rs_watch *v, size_t n, int wd)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].wd == wd)
			return true;
	return false;
}

/* What to watch follows what was read: every directory loaded (a ConfigMap's
 * hidden timestamped one too); for each path given, its parent, so that a
 * file replaced by rename is seen; and for a path that is a symlink (a file
 * of a ConfigMap volume given alone), the whole parent, where `..data` is
 * swapped, and the directory the link resolves into. New watches are added
 * before stale ones go, so no event falls between. */
/* A path given on the command line: its directory, for that name (or all of
 * it when the path is a symlink, as a ConfigMap's files are), and the
 * directory the link points into. */
static void watch_path(struct rs_reloader *rl, struct rs_watch **v, size_t *n, const char *path)
{
	char *a = strdup(path), *b = strdup(path), *real;
	struct stat st;
	bool link = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);

	if (a && b)
		watch(rl, v, n, dirname(a), link ? NULL : basename(b));
	real = link ? realpath(path, NULL) : NULL;
	if (real && stat(real, &st) == 0 && !S_ISDIR(st.st_mode))
		watch(rl, v, n, dirname(real), NULL);
	free(real);
	free(a);
	free(b);
}

static void rewatch(struct rs_reloader *rl, const struct rs_config *cfg)
{
	struct rs_watch *v = NULL;
	size_t n = 0;
	const char *id_files[] = {rl->id->cert_file, rl->id->key_file, rl->id->ca_file};

	if (rl->ifd < 0)
		return;
	for (size_t i = 0; i < rl->npaths; i++)
		watch_path(rl, &v, &n, rl->paths[i]);
	/* The workload's certificate files rotate too (an atomic rename, or a
	 * Secret volume's symlink swap): they are watched the same way. */
	for (size_t i = 0; i < 3; i++)
		if (id_files[i])
			watch_path(rl, &v, &n, id_files[i]);
	for (size_t i = 0; i < cfg->ndirs; i++)
		watch(rl, &v, &n, cfg->dirs[i], NULL);
	for (size_t i = 0; i < rl->nwatches; i++) {
		if (!has_wd(v, n, rl->watches[i].wd))
			inotify_rm_watch(rl->ifd, rl->watches[i].wd);
		free(rl->watches[i].name);
	}
	free(rl->watches);
	rl->watches = v;
	rl->nwatches = n;
}

/* The next file cfg read itself (not a kept one) from *i on, or NULL. */
static const struct rs_config_file *next_read(const struct rs_config *cfg, size_t *i)
{
	while (*i < cfg->nfiles && cfg->files[*i].kept)
		(*i)++;
	return *i < cfg->nfiles ? &cfg->files[(*i)++] : NULL;
}

/* True when cfg read the same files with the same text as the load in force
 * did: loading them again, keeping included, would change nothing. A file
 * that could not be read is never the same. */
static bool unchanged(const struct rs_config *cfg, const struct rs_config *cur)
{
	size_t i = 0, j = 0;

	for (;;) {
		const struct rs_config_file *a = next_read(cfg, &i), *b = next_read(cur, &j);

		if (!a || !b)
			return !a && !b;
		if (!a->text || !b->text || a->len != b->len || strcmp(a->path, b->path) != 0 ||
		    memcmp(a->text, b->text, a->len) != 0)
			return false;
	}
}

/* A hash of the workload's certificate files' contents: a rotation makes a
 * new snapshot even when no configuration file changed. */
static uint64_t id_files_hash(const struct rs_identity *id)
{
	const char *files[] = {id->cert_file, id->key_file, id->ca_file};
	uint64_t h = 0;
	char buf[16384];

	for (size_t i = 0; i < 3; i++) {
		FILE *f = files[i] ? fopen(files[i], "rb") : NULL;
		size_t n;

		while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
			h = XXH3_64bits_withSeed(buf, n, h);
		if (f)
			fclose(f);
		h = XXH3_64bits_withSeed("", 0, h + i); /* where one file ends */
	}
	return h;
}

static size_t count_rejected(const struct rs_config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_resources; i++)
		n += cfg->resources[i].rejected;
	return n;
}

/* Loads, keeps the last good version of what was rejected, compiles and
 * publishes. Returns 0, 1 when nothing changed, or a negative errno with the
 * active snapshot left in force. */
static int load_and_publish(struct rs_reloader *rl, bool force)
{
	const struct rs_snapshot *cur = rl->generation ? rs_rcu_current(&rl->shared->rcu) : NULL;
	struct rs_diags diags = {0};
	struct rs_config *cfg = NULL;
	struct rs_snapshot *snap = NULL;
	size_t kept = 0, rejected;
	uint64_t id_hash;
	int ret;

	ret = rs_config_load(rl->paths, rl->npaths, &cfg, &diags);
	if (ret < 0)
		goto fail;
	/* Before anything returns: a new empty directory changes nothing
	 * now but must be watched for what lands in it. */
	rewatch(rl, cfg);
	id_hash = id_files_hash(rl->id);
	if (cur && !force && unchanged(cfg, cur->cfg) && id_hash == rl->id_hash) {
		rs_config_free(cfg);
		rs_diags_free(&diags);
		return 1;
	}
	if (cur) {
		ret = rs_config_keep_last_good(cfg, cur->cfg, &diags);
		if (ret < 0)
			goto fail;
		kept = (size_t)ret;
	}
	rejected = count_rejected(cfg);
	ret = rs_snapshot_build(cfg, rl->id, rl->generation + 1, rl->nshards, cur, &snap, &diags);
	cfg = NULL;
	if (ret < 0)
		goto fail;
	if (cur)
		ret = rs_rcu_publish(&rl->shared->rcu, snap, snap->generation);
	else
		ret = rs_rcu_init(&rl->shared->rcu, rl->nshards, snap, snap->generation,
				  rs_snapshot_free);
	if (ret < 0)
		goto fail;
	rl->generation = snap->generation;
	rl->id_hash = id_hash;
	rl->rejected = rejected;
	rl->kept = kept;
	log_diags(&diags);
	rs_diags_free(&rl->diags);
	rl->diags = diags;
	return 0;
fail:
	log_diags(&diags);
	rs_diags_free(&diags);
	rs_config_free(cfg);
	rs_snapshot_free(snap);
	return ret;
}

int rs_reloader_init(struct rs_reloader *rl, const char *const *paths, size_t npaths,
		     const struct rs_identity *id, unsigned nshards, struct rs_proxy_shared *shared)
{
	uint64_t t0;
	int ret;

	memset(rl, 0, sizeof *rl);
	rl->paths = paths;
	rl->npaths = npaths;
	rl->id = id;
	rl->nshards = nshards;
	rl->shared = shared;
	rl->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (rl->ifd < 0)
		rs_warn("config: inotify unavailable (%s): reload on SIGHUP only",
			strerror(errno));
	t0 = rs_now_ns();
	ret = load_and_publish(rl, true);
	if (ret < 0) {
		rs_error("cannot load configuration: %s", strerror(-ret));
		rs_reloader_fini(rl);
		return ret;
	}
	if (rl->rejected)
		rs_warn("%zu resource(s) rejected (see above); the rest applies", rl->rejected);
	rl->last = (struct rs_reload_event){.at = time(NULL), .result = "applied",
					     .trigger = "start",
					     .ms = (double)(rs_now_ns() - t0) / 1e6};
	rs_info("config: generation 1 loaded in %.1f ms", rl->last.ms);
	return 0;
}

void rs_reloader_reload(struct rs_reloader *rl, const char *trigger, bool force)
{
	uint64_t t0 = rs_now_ns();
	int ret = load_and_publish(rl, force);
	struct rs_reload_event *e = &rl->last;

	*e = (struct rs_reload_event){.at = time(NULL), .trigger = trigger,
				      .ms = (double)(rs_now_ns() - t0) / 1e6};
	rl->due_ns = 0;
	if (ret == 1) {
		e->result = "unchanged";
		rl->unchanged++;
		rs_debug("config: %s: nothing changed", trigger);
		return;
	}
	if (ret < 0) {
		e->result = "failed";
		snprintf(e->error, sizeof e->error, "%s", strerror(-ret));
		rl->failed++;
		rs_error("config: reload (%s) failed: %s; generation %llu stays in force", trigger,
			 e->error, (unsigned long long)rl->generation);
		return;
	}
	e->result = "applied";
	rl->applied++;
	rs_info("config: generation %llu applied (%s) in %.1f ms; %zu resource(s) rejected, "
		"%zu kept from before",
		(unsigned long long)rl->generation, trigger, e->ms, rl->rejected, rl->kept);
	if (rl->wake)
		rl->wake(rl->wake_arg);
}

void rs_reloader_on_fd(struct rs_reloader *rl)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	ssize_t n;

	while ((n = read(rl->ifd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			p += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				hit = true;
				continue;
			}
			/* The kernel's note that a watch went (ours, removed by
			 * rewatch, or its directory deleted, which the parent's
			 * watch reports). */
			if (ev->mask & IN_IGNORED)
				continue;
			/* A descriptor no longer listed was replaced while the
			 * event waited: count it. */
			hit |= !has_wd(rl->watches, rl->nwatches, ev->wd);
			for (size_t i = 0; i < rl->nwatches; i++) {
				const struct rs_watch *w = &rl->watches[i];

				if (w->wd == ev->wd &&
				    (!w->name || (ev->len && strcmp(w->name, ev->name) == 0)))
					hit = true;
			}
		}
	}
	if (hit)
		rl->due_ns = rs_now_ns() + SETTLE_NS;
}

int rs_reloader_timeout_ms(const struct rs_reloader *rl)
{
	uint64_t now;

	if (rl->due_ns) {
		now = rs_now_ns();
		return rl->due_ns <= now ? 0 : (int)((rl->due_ns - now) / 1000000 + 1);
	}
	/* Retired snapshots are freed soon after the last request on them. */
	return rl->shared->rcu.nretired ? 50 : 1000;
}

void rs_reloader_tick(struct rs_reloader *rl)
{
	if (rl->due_ns && rl->due_ns <= rs_now_ns())
		rs_reloader_reload(rl, "file change", false);
	rs_rcu_reclaim(&rl->shared->rcu);
	/* The snapshot in force; only its ejection slots are written here. */
	rs_snapshot_outlier_tick(rs_rcu_current(&rl->shared->rcu), rs_now_ns());
}

static json_t *diags_json(const struct rs_diags *diags)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < diags->n; i++) {
		const struct rs_diag *d = &diags->v[i];

		json_array_append_new(
		    a, json_pack("{s:s, s:s?, s:i, s:i, s:s?, s:s}", "level",
				 d->level == RS_DIAG_ERROR ? "error" : "warning", "file", d->file,
				 "line", d->line, "column", d->col, "resource", d->resource,
				 "message", d->msg));
	}
	return a;
}

static void write_json(json_t *j, FILE *f)
{
	if (!j) {
		fputs("{\"error\": \"out of memory\"}\n", f);
		return;
	}
	json_dumpf(j, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', f);
	json_decref(j);
}

static const char *rfc3339(time_t t, char buf[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

void rs_reloader_write_status(const struct rs_reloader *rl, FILE *f)
{
	const struct rs_snapshot *s = rs_rcu_current(&rl->shared->rcu);
	const struct rs_config *cfg = s->cfg;
	json_t *rejected = json_array();
	char t1[32], t2[32];
	uint64_t oldest = UINT64_MAX, adopted = UINT64_MAX;

	for (unsigned i = 0; i < rl->nshards; i++) {
		uint64_t o = atomic_load(&rl->shared->rcu.readers[i].oldest);
		uint64_t c = atomic_load(&rl->shared->rcu.readers[i].current);

		oldest = o < oldest ? o : oldest;
		adopted = c < adopted ? c : adopted;
	}
	for (size_t i = 0; rejected && i < cfg->n_resources; i++) {
		const struct rs_config_res *r = &cfg->resources[i];
		const struct rs_config_res *keep = NULL;

		if (!r->rejected)
			continue;
		for (size_t k = 0; k < cfg->n_resources; k++)
			if (cfg->resources[k].kept && !strcmp(cfg->resources[k].id, r->id) &&
			    !strcmp(cfg->resources[k].pos.file, r->pos.file))
				keep = &cfg->resources[k];
		json_array_append_new(
		    rejected, json_pack("{s:s, s:s, s:i, s:i, s:s}", "resource", r->id, "file",
					r->pos.file, "line", r->pos.line, "column", r->pos.col,
					"in_force", keep ? "the version loaded before" : "none"));
	}
	/* Stopped shards report UINT64_MAX: they hold nothing. */
	if (adopted == UINT64_MAX)
		adopted = s->generation;
	if (oldest == UINT64_MAX)
		oldest = s->generation;
	write_json(json_pack("{s:I, s:s, s:I, s:I, s:{s:s, s:s, s:s, s:f, s:s?}, s:{s:I, s:I, s:I}, "
			     "s:I, s:I, s:o, s:o}",
			     "generation", (json_int_t)s->generation, "loaded_at",
			     rfc3339((time_t)s->loaded_at, t1), "generation_on_all_shards",
			     (json_int_t)adopted, "oldest_generation_in_use", (json_int_t)oldest,
			     "last_reload", "at", rfc3339(rl->last.at, t2), "trigger",
			     rl->last.trigger, "result", rl->last.result, "duration_ms",
			     rl->last.ms, "error", rl->last.error[0] ? rl->last.error : NULL,
			     "reloads", "applied", (json_int_t)rl->applied, "unchanged",
			     (json_int_t)rl->unchanged, "failed", (json_int_t)rl->failed,
			     "rejected_resources", (json_int_t)rl->rejected, "kept_resources",
			     (json_int_t)rl->kept, "rejected", rejected, "problems",
			     diags_json(&rl->diags)),
		   f);
}

/* Appends "Kind/ns/name" of each of n resources (struct rs_config__head-like:
 * name and ns first) to a new array. */
#define IDS(kind, v, n)                                                                        \
	({                                                                                     \
		json_t *a_ = json_array();                                                     \
		for (size_t i_ = 0; a_ && i_ < (n); i_++)                                      \
			json_array_append_new(a_, json_sprintf("%s/%s/%s", kind, (v)[i_]->ns,  \
							       (v)[i_]->name));               \
		a_;                                                                            \
	})

static json_t *workload_json(const struct rs_identity *id, const struct rs_selected *sel)
{
	json_t *labels = json_object();

	for (size_t i = 0; labels && i < id->nlabels; i++)
		json_object_set_new(labels, id->labels[i].key, json_string(id->labels[i].value));
	return json_pack(
	    "{s:s, s:s, s:s, s:o, s:o, s:{s:o, s:o, s:o, s:o, s:o}}", "namespace", id->ns,
	    "service_account", id->service_account, "trust_domain", id->trust_domain, "labels",
	    labels, "spiffe_id",
	    json_sprintf("spiffe://%s/ns/%s/sa/%s", id->trust_domain, id->ns, id->service_account),
	    "selected", "PeerAuthentication",
	    IDS("PeerAuthentication", sel->peer_authentications, sel->n_peer_authentications),
	    "AuthorizationPolicy",
	    IDS("AuthorizationPolicy", sel->authorization_policies, sel->n_authorization_policies),
	    "RequestAuthentication",
	    IDS("RequestAuthentication", sel->request_authentications,
		sel->n_request_authentications),
	    "Telemetry", IDS("Telemetry", sel->telemetries, sel->n_telemetries), "Sidecar",
	    sel->sidecar ? json_sprintf("Sidecar/%s/%s", sel->sidecar->ns, sel->sidecar->name)
			 : json_null());
}

/* The router's hosts with their VirtualService and, per port, the indexes
 * of its spec.http routes that can match there. */
static json_t *routes_json(const struct rs_router *r)
{
	json_t *hosts = json_array();

	for (uint32_t i = 0; hosts && i < r->nhosts; i++) {
		const struct rs_router_host *e = &r->hosts[i];
		json_t *tables = json_array();

		if (!e->vs) {
			json_decref(tables);
			continue;
		}
		for (uint32_t k = 0; tables && k < e->ntables; k++) {
			const struct rs_route_table *t = &e->tables[k];
			json_t *idx = json_array();

			for (uint32_t j = 0; idx && j < t->nroutes; j++)
				json_array_append_new(idx, json_integer(t->routes[j].r->src - e->vs->http));
			json_array_append_new(tables, json_pack("{s:o, s:o}", "port",
								t->port ? json_integer(t->port)
									: json_string("other"),
								"http_routes", idx));
		}
		json_array_append_new(hosts, json_pack("{s:s, s:o, s:o}", "host", e->host,
						       "virtual_service",
						       json_sprintf("%s/%s", e->vs->ns, e->vs->name),
						       "ports", tables));
	}
	return hosts;
}

void rs_reloader_write_dump(const struct rs_reloader *rl, FILE *f)
{
	const struct rs_snapshot *s = rs_rcu_current(&rl->shared->rcu);
	json_t *clusters = json_array(), *dump = rs_config_dump(s->cfg);
	char t[32];

	for (size_t i = 0; clusters && i < s->clusters.n; i++) {
		const struct rs_cluster *c = &s->clusters.v[i];
		json_t *eps = json_array();

		for (size_t e = 0; eps && e < c->neps; e++)
			json_array_append_new(eps, json_string(c->eps[e].name));
		json_array_append_new(clusters,
				      json_pack("{s:s, s:s, s:i, s:s?, s:o}", "name", c->name, "host",
						c->host, "port", (int)c->port, "subset", c->subset,
						"endpoints", eps));
	}
	if (dump) {
		json_object_set_new(dump, "clusters", clusters);
		json_object_set_new(dump, "routes", routes_json(&s->router));
		clusters = NULL;
	}
	json_decref(clusters);
	write_json(dump ? json_pack("{s:I, s:s, s:o, s:o}", "generation",
				    (json_int_t)s->generation, "loaded_at",
				    rfc3339((time_t)s->loaded_at, t), "workload",
				    workload_json(rl->id, &s->selected), "config", dump)
			: NULL,
		   f);
}

void rs_reloader_write_prometheus(const struct rs_reloader *rl, FILE *f)
{
	fprintf(f,
		"# HELP ringside_config_generation Generation of the configuration in force.\n"
		"# TYPE ringside_config_generation gauge\n"
		"ringside_config_generation %llu\n"
		"# HELP ringside_config_rejected_resources Resources the last load rejected "
		"(their previous version, if any, stays in force).\n"
		"# TYPE ringside_config_rejected_resources gauge\n"
		"ringside_config_rejected_resources %zu\n"
		"# HELP ringside_config_reloads_total Configuration reloads, by result.\n"
		"# TYPE ringside_config_reloads_total counter\n"
		"ringside_config_reloads_total{result=\"applied\"} %llu\n"
		"ringside_config_reloads_total{result=\"unchanged\"} %llu\n"
		"ringside_config_reloads_total{result=\"failed\"} %llu\n"
		"# HELP ringside_config_snapshots_retired Snapshots replaced but still held "
		"by requests in flight.\n"
		"# TYPE ringside_config_snapshots_retired gauge\n"
		"ringside_config_snapshots_retired %zu\n",
		(unsigned long long)rl->generation, rl->rejected, (unsigned long long)rl->applied,
		(unsigned long long)rl->unchanged, (unsigned long long)rl->failed,
		rl->shared->rcu.nretired);
}

void rs_reloader_fini(struct rs_reloader *rl)
{
	unwatch_all(rl);
	free(rl->watches);
	if (rl->ifd >= 0)
		close(rl->ifd);
	rl->ifd = -1;
	rs_diags_free(&rl->diags);
	if (rl->shared->rcu.readers)
		rs_rcu_fini(&rl->shared->rcu);
	rs_cb_registry_free();
}
