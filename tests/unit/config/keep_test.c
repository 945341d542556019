/* A reload keeps the last good version of what it could not load
 * (rs_config_keep_last_good) and /config_dump shows what is in force
 * (rs_config_dump). Each test writes its files into a fresh temporary folder,
 * loads, rewrites them, and loads again, as an operator editing a ConfigMap
 * would: what it checks is what the proxy's log and the typed model show. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringside/config-networking-t.h"
#include "ringside/config.h"
#include "harness.h"

struct tmp {
	char dir[64];
	char paths[4][PATH_MAX];
	size_t n;
};

static int tmp_setup(void **state)
{
	struct tmp *t = calloc(1, sizeof *t);

	if (!t)
		return -1;
	snprintf(t->dir, sizeof t->dir, "%s", "/tmp/ringside-keep-XXXXXX");
	if (!mkdtemp(t->dir)) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;

	for (size_t i = 0; i < t->n; i++)
		unlink(t->paths[i]);
	rmdir(t->dir);
	free(t);
	return 0;
}

/* Writes (or rewrites) dir/name; returns its path, stable for the test. */
static const char *put(struct tmp *t, const char *name, const char *text)
{
	char path[PATH_MAX];
	size_t i;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", t->dir, name);
	for (i = 0; i < t->n && strcmp(t->paths[i], path) != 0; i++)
		;
	if (i == t->n) {
		assert_true(t->n < sizeof t->paths / sizeof t->paths[0]);
		snprintf(t->paths[t->n++], PATH_MAX, "%s", path);
	}
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return t->paths[i];
}

/* A reload as the proxy does it: load, then keep from prev what this load
 * could not take; l->out is the log of both, l->rc what keep returned. */
static void reload(struct loaded *l, const struct rs_config *prev, const char *path)
{
	size_t size = 0;
	FILE *f;

	LOAD(l, path);
	assert_int_equal(l->rc, 0);
	l->rc = rs_config_keep_last_good(l->cfg, prev, &l->diags);
	free(l->out);
	l->out = NULL;
	f = open_memstream(&l->out, &size);
	assert_non_null(f);
	rs_diags_print(&l->diags, f);
	fclose(f);
}

/* Each line of the log that contains needle, joined. */
static char *grep(const char *log, const char *needle)
{
	size_t size = 0;
	char *out = NULL;
	FILE *f = open_memstream(&out, &size);

	assert_non_null(f);
	for (const char *p = log; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
		char *line = strndup(p, len);

		assert_non_null(line);
		if (strstr(line, needle))
			fputs(line, f);
		free(line);
		p += len;
	}
	fclose(f);
	return out;
}

static void assert_log_lines(const char *log, const char *needle, const char *expected)
{
	char *got = grep(log, needle);

	assert_string_equal(got, expected);
	free(got);
}

static const struct rs_service_entry *find_se(const struct rs_config *cfg, const char *ns,
                                              const char *name)
{
	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		const struct rs_service_entry *se = &cfg->service_entries[i];

		if (strcmp(se->ns, ns) == 0 && strcmp(se->name, name) == 0)
			return se;
	}
	return NULL;
}

static size_t count_res(const struct rs_config *cfg, const char *id, bool rejected, bool kept)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_resources; i++)
		n += strcmp(cfg->resources[i].id, id) == 0 &&
		     cfg->resources[i].rejected == rejected && cfg->resources[i].kept == kept;
	return n;
}

static size_t count_kept(const struct rs_config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_resources; i++)
		n += cfg->resources[i].kept;
	return n;
}

#define SE_HEAD(name)                                                                              \
	"apiVersion: networking.istio.io/v1\n"                                                     \
	"kind: ServiceEntry\n"                                                                     \
	"metadata:\n"                                                                              \
	"  name: " name "\n"                                                                       \
	"  namespace: shop\n"                                                                      \
	"spec:\n"

/* A ServiceEntry with one host and one port. */
#define SE(name, host, port)                                                                       \
	SE_HEAD(name)                                                                              \
	"  hosts:\n"                                                                               \
	"  - " host "\n"                                                                           \
	"  ports:\n"                                                                               \
	"  - number: " port "\n"                                                                   \
	"    name: http\n"                                                                         \
	"    protocol: HTTP\n"                                                                     \
	"  resolution: DNS\n"

static void assert_se(const struct rs_config *cfg, const char *name, const char *host,
                      uint32_t port)
{
	const struct rs_service_entry *se = find_se(cfg, "shop", name);

	assert_non_null(se);
	assert_int_equal(se->nhosts, 1);
	assert_string_equal(se->hosts[0], host);
	assert_int_equal(se->nports, 1);
	assert_int_equal(se->ports[0].number, port);
	assert_string_equal(se->ports[0].name, "http");
	assert_string_equal(se->ports[0].protocol, "HTTP");
	assert_int_equal(se->resolution, RS_SE_RESOLUTION_DNS);
}

/* (a) The new version is rejected: the old one stays in force, with its old
 * values, and the log says so where the new one was written. */
static void test_rejected_keeps_previous(void **state)
{
	struct tmp *t = *state;
	const char *p = put(t, "se.yaml", SE("reviews", "reviews.example.com", "9080"));
	const struct rs_service_entry *se;
	struct loaded l1, l2;
	char want[2 * PATH_MAX + 256];

	LOAD(&l1, p);
	assert_int_equal(l1.rc, 0);
	assert_string_equal(l1.out, "");
	assert_se(l1.cfg, "reviews", "reviews.example.com", 9080);

	/* Moved down two lines and its port broken. */
	put(t, "se.yaml", "# edited\n---\n" SE("reviews", "reviews.example.org", "0"));
	reload(&l2, l1.cfg, p);
	assert_int_equal(l2.rc, 1);
	snprintf(want, sizeof want,
	         "%s:12:13: ServiceEntry/shop/reviews: error: spec.ports[0].number: 0 is out of "
	         "range 1-65535\n"
	         "%s:3:1: ServiceEntry/shop/reviews: warning: the version loaded before (%s:1:1) "
	         "stays in force\n",
	         p, p, p);
	assert_string_equal(l2.out, want);
	assert_int_equal(l2.diags.errors, 1);

	/* The model holds the old values, and only them. */
	assert_int_equal(l2.cfg->n_service_entries, 1);
	assert_se(l2.cfg, "reviews", "reviews.example.com", 9080);
	se = find_se(l2.cfg, "shop", "reviews");
	assert_string_equal(se->pos.file, p);
	assert_int_equal(se->pos.line, 1);
	assert_int_equal(se->pos.col, 1);
	assert_int_equal(count_res(l2.cfg, "ServiceEntry/shop/reviews", true, false), 1);
	assert_int_equal(count_res(l2.cfg, "ServiceEntry/shop/reviews", false, true), 1);
	assert_int_equal(count_kept(l2.cfg), 1);

	/* The old load can go: the kept version owns its text. */
	unload(&l1);
	assert_se(l2.cfg, "reviews", "reviews.example.com", 9080);
	unload(&l2);
}

/* (b) A YAML syntax error cuts the file short: what comes before it is the
 * new text, what it hid (the broken document and those after) the old. */
static void test_syntax_error_keeps_the_rest(void **state)
{
	struct tmp *t = *state;
	const char *p = put(t, "se.yaml",
	                    SE("first", "first.example.com", "80") "---\n" SE(
	                        "second", "second.example.com",
	                        "81") "---\n" SE("third", "third.example.com", "82"));
	struct loaded l1, l2;
	char want[2 * PATH_MAX + 256];

	LOAD(&l1, p);
	assert_string_equal(l1.out, "");
	assert_int_equal(l1.cfg->n_service_entries, 3);

	put(t, "se.yaml",
	    SE("first", "first.example.org",
	       "8080") "---\n" SE_HEAD("second") "  hosts: [oops\n"
	                                         "  ports: {number: 8081}\n"
	                                         "---\n" SE("third", "third.example.org", "8082"));
	reload(&l2, l1.cfg, p);
	assert_int_equal(l2.rc, 2);
	assert_int_equal(l2.diags.errors, 1);
	snprintf(want, sizeof want,
	         "%s:22:8: error: syntax error: did not find expected ',' or ']' (while parsing "
	         "a flow sequence at 21:10)\n",
	         p);
	assert_log_lines(l2.out, "error:", want);
	/* Where each was before: nothing in the new text says where it is. */
	snprintf(want, sizeof want,
	         "%s:15:1: ServiceEntry/shop/second: warning: the version loaded before (%s:15:1) "
	         "stays in force\n"
	         "%s:29:1: ServiceEntry/shop/third: warning: the version loaded before (%s:29:1) "
	         "stays in force\n",
	         p, p, p, p);
	assert_log_lines(l2.out, "warning:", want);

	assert_int_equal(l2.cfg->n_service_entries, 3);
	assert_se(l2.cfg, "first", "first.example.org", 8080);
	assert_se(l2.cfg, "second", "second.example.com", 81);
	assert_se(l2.cfg, "third", "third.example.com", 82);
	assert_int_equal(count_res(l2.cfg, "ServiceEntry/shop/first", false, false), 1);
	assert_int_equal(count_res(l2.cfg, "ServiceEntry/shop/second", false, true), 1);
	assert_int_equal(count_res(l2.cfg, "ServiceEntry/shop/third", false, true), 1);
	assert_int_equal(count_kept(l2.cfg), 2);
	unload(&l1);
	unload(&l2);
}

/* (c) Gone from a file that loaded: deleted, not kept. */
static void test_deleted_from_good_file_is_gone(void **state)
{
	struct tmp *t = *state;
	const char *p = put(
	    t, "se.yaml",
	    SE("stays", "stays.example.com", "80") "---\n" SE("goes", "goes.example.com", "81"));
	struct loaded l1, l2;

	LOAD(&l1, p);
	assert_int_equal(l1.cfg->n_service_entries, 2);

	put(t, "se.yaml", SE("stays", "stays.example.com", "8080"));
	reload(&l2, l1.cfg, p);
	assert_int_equal(l2.rc, 0);
	assert_string_equal(l2.out, "");
	assert_int_equal(l2.cfg->n_service_entries, 1);
	assert_se(l2.cfg, "stays", "stays.example.com", 8080);
	assert_null(find_se(l2.cfg, "shop", "goes"));
	assert_int_equal(l2.cfg->n_resources, 1);
	assert_int_equal(count_kept(l2.cfg), 0);
	unload(&l1);
	unload(&l2);
}

/* (d) Rejected the first time it appears: nothing to keep. */
static void test_rejected_without_previous_version(void **state)
{
	struct tmp *t = *state;
	const char *p = put(t, "se.yaml", SE("old", "old.example.com", "80"));
	struct loaded l1, l2;
	char want[PATH_MAX + 256];

	LOAD(&l1, p);
	put(t, "se.yaml",
	    SE("old", "old.example.com", "80") "---\n" SE("new", "new.example.com", "70000"));
	reload(&l2, l1.cfg, p);
	assert_int_equal(l2.rc, 0);
	snprintf(want, sizeof want,
	         "%s:24:13: ServiceEntry/shop/new: error: spec.ports[0].number: 70000 is out of "
	         "range 1-65535\n",
	         p);
	assert_string_equal(l2.out, want);
	assert_int_equal(l2.cfg->n_service_entries, 1);
	assert_null(find_se(l2.cfg, "shop", "new"));
	assert_se(l2.cfg, "old", "old.example.com", 80);
	assert_int_equal(count_res(l2.cfg, "ServiceEntry/shop/new", true, false), 1);
	assert_int_equal(count_kept(l2.cfg), 0);
	unload(&l1);
	unload(&l2);
}

/* (e) Still broken at the next reload: the version kept last time is kept
 * again, from the text of the load that was good, even once that load has
 * been freed; fixed, it is replaced. */
static void test_kept_twice(void **state)
{
	struct tmp *t = *state;
	const char *p = put(t, "se.yaml", SE("reviews", "reviews.example.com", "9080"));
	struct loaded l1, l2, l3, l4;
	char want[2 * PATH_MAX + 256];

	LOAD(&l1, p);
	put(t, "se.yaml", SE("reviews", "reviews.example.org", "0"));
	reload(&l2, l1.cfg, p);
	assert_int_equal(l2.rc, 1);
	unload(&l1);

	/* Broken differently, and moved. */
	put(t, "se.yaml", "---\n" SE("reviews", "reviews.example.net", "-1"));
	reload(&l3, l2.cfg, p);
	assert_int_equal(l3.rc, 1);
	snprintf(want, sizeof want,
	         "%s:2:1: ServiceEntry/shop/reviews: warning: the version loaded before (%s:1:1) "
	         "stays in force\n",
	         p, p);
	assert_log_lines(l3.out, "warning:", want);
	assert_int_equal(l3.diags.errors, 1);
	assert_int_equal(l3.cfg->n_service_entries, 1);
	assert_se(l3.cfg, "reviews", "reviews.example.com", 9080);
	assert_int_equal(count_res(l3.cfg, "ServiceEntry/shop/reviews", false, true), 1);
	assert_int_equal(count_kept(l3.cfg), 1);
	unload(&l2);
	assert_se(l3.cfg, "reviews", "reviews.example.com", 9080);

	put(t, "se.yaml", SE("reviews", "reviews.example.net", "9090"));
	reload(&l4, l3.cfg, p);
	assert_int_equal(l4.rc, 0);
	assert_string_equal(l4.out, "");
	assert_int_equal(l4.cfg->n_service_entries, 1);
	assert_se(l4.cfg, "reviews", "reviews.example.net", 9090);
	assert_int_equal(count_kept(l4.cfg), 0);
	unload(&l3);
	unload(&l4);
}

/* The mission's 01 and 04 both define DestinationRule default/reviews (01
 * its subsets, 04 its circuit breaker): both load, in load order. */
#define DR_SUBSETS(version)                                                                        \
	"apiVersion: networking.istio.io/v1alpha3\n"                                               \
	"kind: DestinationRule\n"                                                                  \
	"metadata:\n"                                                                              \
	"  name: reviews\n"                                                                        \
	"spec:\n"                                                                                  \
	"  host: reviews\n"                                                                        \
	"  subsets:\n"                                                                             \
	"  - name: " version "\n"                                                                  \
	"    labels:\n"                                                                            \
	"      version: " version "\n"

#define DR_BREAKER(max, interval)                                                                  \
	"apiVersion: networking.istio.io/v1alpha3\n"                                               \
	"kind: DestinationRule\n"                                                                  \
	"metadata:\n"                                                                              \
	"  name: reviews\n"                                                                        \
	"spec:\n"                                                                                  \
	"  host: reviews\n"                                                                        \
	"  trafficPolicy:\n"                                                                       \
	"    connectionPool:\n"                                                                    \
	"      tcp:\n"                                                                             \
	"        maxConnections: " max "\n"                                                        \
	"    outlierDetection:\n"                                                                  \
	"      consecutive5xxErrors: 5\n"                                                          \
	"      interval: " interval "\n"

static const struct rs_destination_rule *dr_in(const struct rs_config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->n_destination_rules; i++)
		if (strcmp(cfg->destination_rules[i].pos.file, path) == 0)
			return &cfg->destination_rules[i];
	return NULL;
}

/* (f) The same Kind/namespace/name in two files: only the broken file's
 * version is kept; the other file's new version is in force. */
static void test_same_name_in_two_files(void **state)
{
	struct tmp *t = *state;
	const char *a = put(t, "01-routing.yaml", DR_SUBSETS("v1"));
	const char *b = put(t, "04-breaker.yaml", DR_BREAKER("100", "30s"));
	const struct rs_destination_rule *dr;
	struct loaded l1, l2;
	char want[2 * PATH_MAX + 256];

	LOAD(&l1, t->dir);
	assert_string_equal(l1.out, "");
	assert_int_equal(l1.cfg->n_destination_rules, 2);

	put(t, "01-routing.yaml", DR_SUBSETS("v2"));
	put(t, "04-breaker.yaml", DR_BREAKER("200", "soon"));
	reload(&l2, l1.cfg, t->dir);
	assert_int_equal(l2.rc, 1);
	assert_int_equal(l2.diags.errors, 1);
	snprintf(want, sizeof want,
	         "%s:1:1: DestinationRule/default/reviews: warning: the version loaded before "
	         "(%s:1:1) stays in force\n",
	         b, b);
	assert_log_lines(l2.out, "warning:", want);
	assert_int_equal(count_kept(l2.cfg), 1);
	assert_int_equal(l2.cfg->n_destination_rules, 2);

	/* 01's new version, not its old one. */
	dr = dr_in(l2.cfg, a);
	assert_non_null(dr);
	assert_int_equal(dr->nsubsets, 1);
	assert_string_equal(dr->subsets[0].name, "v2");
	/* 04's old version. */
	dr = dr_in(l2.cfg, b);
	assert_non_null(dr);
	assert_true(dr->traffic_policy.connection_pool.max_connections.set);
	assert_int_equal(dr->traffic_policy.connection_pool.max_connections.v, 100);
	assert_int_equal(dr->traffic_policy.outlier_detection.interval.ns, 30000000000LL);
	unload(&l1);
	unload(&l2);
}

static json_t *dump_res(json_t *dump, const char *name, const char *status)
{
	json_t *res = json_object_get(dump, "resources"), *o;
	size_t i;

	json_array_foreach(res, i, o)
	{
		if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0 &&
		    strcmp(json_string_value(json_object_get(o, "status")), status) == 0)
			return o;
	}
	return NULL;
}

/* (g) /config_dump after a reload that kept a version: the rejected one
 * without its object, the kept one with the object in force, its scalars
 * typed as YAML reads them. */
static void test_dump_shows_kept_version(void **state)
{
	struct tmp *t = *state;
	const char *p = put(t, "mesh.yaml",
	                    SE("api", "api.example.com", "443") "---\n" SE_HEAD(
	                        "reviews") "  hosts: [reviews.example.com]\n"
	                                   "  ports:\n"
	                                   "  - number: 9080\n"
	                                   "    name: http\n"
	                                   "  - number: \"9443\"\n"
	                                   "    name: grpc\n"
	                                   "  location: MESH_INTERNAL\n"
	                                   "---\n"
	                                   "apiVersion: networking.istio.io/v1\n"
	                                   "kind: DestinationRule\n"
	                                   "metadata:\n"
	                                   "  name: reviews\n"
	                                   "  namespace: shop\n"
	                                   "spec:\n"
	                                   "  host: reviews.example.com\n"
	                                   "  trafficPolicy:\n"
	                                   "    tls:\n"
	                                   "      mode: SIMPLE\n"
	                                   "      insecureSkipVerify: true\n");
	struct loaded l1, l2;
	json_t *d, *o, *obj, *port;

	LOAD(&l1, p);
	assert_string_equal(l1.out, "");
	put(t, "mesh.yaml",
	    SE("api", "api.example.com", "443") "---\n" SE(
	        "reviews", "reviews.example.com", "0") "---\n"
	                                               "apiVersion: networking.istio.io/v1\n"
	                                               "kind: DestinationRule\n"
	                                               "metadata:\n"
	                                               "  name: reviews\n"
	                                               "  namespace: shop\n"
	                                               "spec:\n"
	                                               "  host: reviews.example.com\n"
	                                               "  trafficPolicy:\n"
	                                               "    tls:\n"
	                                               "      mode: SIMPLE\n"
	                                               "      insecureSkipVerify: yes please\n");
	reload(&l2, l1.cfg, p);
	assert_int_equal(l2.rc, 2);

	d = rs_config_dump(l2.cfg);
	assert_non_null(d);
	/* Two files: the new text, and the old one the kept versions come from. */
	assert_int_equal(json_array_size(json_object_get(d, "files")), 2);
	o = json_array_get(json_object_get(d, "files"), 1);
	assert_string_equal(json_string_value(json_object_get(o, "path")), p);
	assert_true(json_is_true(json_object_get(o, "kept")));
	assert_true(json_is_false(json_object_get(o, "unreadable")));
	assert_int_equal(json_array_size(json_object_get(d, "resources")), 5);

	o = dump_res(d, "api", "active");
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "ServiceEntry");
	assert_string_equal(json_string_value(json_object_get(o, "namespace")), "shop");
	assert_non_null(json_object_get(o, "object"));

	o = json_array_get(json_object_get(d, "resources"), 1);
	assert_string_equal(json_string_value(json_object_get(o, "status")), "rejected");
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "ServiceEntry");
	assert_string_equal(json_string_value(json_object_get(o, "name")), "reviews");
	assert_int_equal(json_integer_value(json_object_get(o, "line")), 15);
	assert_null(json_object_get(o, "object"));

	/* The kept ServiceEntry: the old object, numbers as numbers and a
	 * quoted number as a string. */
	o = dump_res(d, "reviews", "kept");
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "ServiceEntry");
	assert_string_equal(json_string_value(json_object_get(o, "file")), p);
	assert_int_equal(json_integer_value(json_object_get(o, "line")), 15);
	obj = json_object_get(o, "object");
	assert_non_null(obj);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")),
	    "reviews");
	port = json_array_get(json_object_get(json_object_get(obj, "spec"), "ports"), 0);
	assert_true(json_is_integer(json_object_get(port, "number")));
	assert_int_equal(json_integer_value(json_object_get(port, "number")), 9080);
	assert_string_equal(json_string_value(json_object_get(port, "name")), "http");
	port = json_array_get(json_object_get(json_object_get(obj, "spec"), "ports"), 1);
	assert_true(json_is_string(json_object_get(port, "number")));
	assert_string_equal(json_string_value(json_object_get(port, "number")), "9443");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(obj, "spec"), "location")),
	    "MESH_INTERNAL");

	/* The kept DestinationRule: a bool as a bool. */
	o = NULL;
	for (size_t i = 0; i < json_array_size(json_object_get(d, "resources")); i++) {
		json_t *r = json_array_get(json_object_get(d, "resources"), i);

		if (!strcmp(json_string_value(json_object_get(r, "kind")), "DestinationRule") &&
		    !strcmp(json_string_value(json_object_get(r, "status")), "kept"))
			o = r;
	}
	assert_non_null(o);
	obj = json_object_get(json_object_get(o, "object"), "spec");
	assert_string_equal(json_string_value(json_object_get(obj, "host")), "reviews.example.com");
	obj = json_object_get(json_object_get(obj, "trafficPolicy"), "tls");
	assert_true(json_is_true(json_object_get(obj, "insecureSkipVerify")));
	assert_string_equal(json_string_value(json_object_get(obj, "mode")), "SIMPLE");

	json_decref(d);
	unload(&l1);
	unload(&l2);
}

/* A resource moved to another file while its old file got a syntax error:
 * the old version cannot come back (the name is taken by the moved one), so
 * the log must not claim it stays in force, and the moved one is in force. */
static void test_moved_while_old_file_broken(void **state)
{
	struct tmp *t = *state;
	struct loaded l1, l2;

	/* a.yaml's old version is loaded again (a.yaml is broken) and
	 * refused there, its name now b.yaml's: nothing is kept. */
	put(t, "a.yaml", SE("moved", "old.example.com", "80"));
	LOAD(&l1, t->dir);
	assert_string_equal(l1.out, "");
	put(t, "a.yaml", "hosts: [oops\n");
	put(t, "b.yaml", SE("moved", "new.example.com", "8080"));
	reload(&l2, l1.cfg, t->dir);
	/* What is in force is b.yaml's version... */
	assert_int_equal(l2.cfg->n_service_entries, 1);
	assert_se(l2.cfg, "moved", "new.example.com", 8080);
	/* ...so nothing was kept, and no warning says otherwise. */
	assert_log_lines(l2.out, "stays in force", "");
	assert_int_equal(l2.rc, 0);
	assert_int_equal(count_kept(l2.cfg), 0);
	unload(&l1);
	unload(&l2);
}

/* A plain scalar that strtod reads as an infinity (`-inf` is a string in
 * YAML's core schema) and one in hexadecimal (an integer in YAML 1.1 and
 * 1.2): the dump still comes out, with the one as a string, the other an
 * integer. */
static void test_dump_scalars_strtod_reads_differently(void **state)
{
	struct tmp *t = *state;
	const char *p = put(t, "se.yaml",
	                    "apiVersion: networking.istio.io/v1\n"
	                    "kind: ServiceEntry\n"
	                    "metadata:\n"
	                    "  name: odd\n"
	                    "  namespace: shop\n"
	                    "  annotations:\n"
	                    "    low: -inf\n"
	                    "    mask: 0x1F\n"
	                    "spec:\n"
	                    "  hosts: [odd.example.com]\n"
	                    "  ports:\n"
	                    "  - number: 80\n"
	                    "    name: http\n");
	json_t *d, *ann;
	struct loaded l;

	LOAD(&l, p);
	assert_string_equal(l.out, "");
	d = rs_config_dump(l.cfg);
	assert_non_null(d);
	ann = json_object_get(
	    json_object_get(json_object_get(dump_res(d, "odd", "active"), "object"), "metadata"),
	    "annotations");
	assert_string_equal(json_string_value(json_object_get(ann, "low")), "-inf");
	assert_true(json_is_integer(json_object_get(ann, "mask")));
	assert_int_equal(json_integer_value(json_object_get(ann, "mask")), 31);
	json_decref(d);
	unload(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rejected_keeps_previous, tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_syntax_error_keeps_the_rest, tmp_setup,
	                                    tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_deleted_from_good_file_is_gone, tmp_setup,
	                                    tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_rejected_without_previous_version, tmp_setup,
	                                    tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_kept_twice, tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_same_name_in_two_files, tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_dump_shows_kept_version, tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_moved_while_old_file_broken, tmp_setup,
	                                    tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_dump_scalars_strtod_reads_differently, tmp_setup,
	                                    tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
