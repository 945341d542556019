/* The first-match search through a table's match keys picks the same route
 * and the same match block as trying every route's blocks in turn, for
 * random VirtualServices and requests made to land near their edges:
 * prefixes and exact uris shorter and longer than a key's eight bytes,
 * ignoreUriCase, regexes and their ranges, ports, queries and headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringside/config.h"
#include "ringside/http.h"
#include "ringside/router.h"
#include "ringside/upstream.h"

static uint64_t rng_state;

static uint32_t roll(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)((rng_state >> 33) % n);
}

/* Uris that share first bytes, differ in case, and sit around eight bytes. */
static const char *const uris[] = {
	"/",        "/a",        "/A",        "/ab",        "/api",      "/api/v1",
	"/api/v1/", "/API/V1/",  "/api/v1/x", "/api/v10/x", "/abcdefg",  "/abcdefgh",
	"/abcdefghi", "/ABCDEFGHI", "/api/v2/items", "/admin/7", "/admin/77", "/admin/x",
	"/b",       "/api/v1/items/12345678901234567890", "/a?v=1", "/abcdefgh?v",
};
static const char *const regexes[] = {
	"/admin/[0-9]+", "/api/v[12]/.*", "(?i)/api/.*", "/a.*", ".*", "/abcdefgh[a-z]", "/API/V[0-9].*",
};

static const char *pick_uri(void)
{
	return uris[roll(sizeof uris / sizeof uris[0])];
}

static void write_match(FILE *f)
{
	static const char *const ports[] = {NULL, "9080", "9090", "1"};
	const char *port = ports[roll(4)];

	fprintf(f, "    - {");
	switch (roll(5)) {
	case 0:
		break;
	case 1:
		fprintf(f, "uri: {prefix: \"%s\"}, ", pick_uri());
		break;
	case 2:
		fprintf(f, "uri: {exact: \"%s\"}, ", pick_uri());
		break;
	case 3:
		fprintf(f, "uri: {regex: \"%s\"}, ", regexes[roll(sizeof regexes / sizeof regexes[0])]);
		break;
	case 4:
		fprintf(f, "uri: {exact: \"%s\"}, ", pick_uri());
		break;
	}
	if (roll(3) == 0)
		fprintf(f, "ignoreUriCase: true, ");
	if (roll(4) == 0)
		fprintf(f, "headers: {x-user: {exact: %s}}, ", roll(2) ? "beta" : "alpha");
	if (roll(6) == 0)
		fprintf(f, "method: {exact: %s}, ", roll(2) ? "GET" : "POST");
	if (roll(6) == 0)
		fprintf(f, "queryParams: {v: {exact: \"1\"}}, ");
	if (port)
		fprintf(f, "port: %s, ", port);
	fprintf(f, "name: m}\n");
}

/* A ServiceEntry on two ports and a VirtualService of random routes. */
static int write_config(const char *path, int nroutes)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
		   "metadata: {name: svc, namespace: default}\nspec:\n"
		   "  hosts: [svc.default.svc.cluster.local]\n  location: MESH_INTERNAL\n"
		   "  resolution: STATIC\n  ports:\n  - {number: 9080, name: http, protocol: HTTP}\n"
		   "  - {number: 9090, name: http2, protocol: HTTP}\n"
		   "  endpoints: [{address: 10.0.0.1}]\n---\n"
		   "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		   "metadata: {name: svc, namespace: default}\nspec:\n  hosts: [svc]\n  http:\n");
	for (int r = 0; r < nroutes; r++) {
		uint32_t nblocks = roll(40) == 0 ? 0 : 1 + roll(3); /* rarely a catch-all */

		fprintf(f, "  - name: r%d\n", r);
		if (nblocks)
			fprintf(f, "    match:\n");
		for (uint32_t b = 0; b < nblocks; b++)
			write_match(f);
		fprintf(f, "    route: [{destination: {host: svc}}]\n");
	}
	return fclose(f);
}

static void request(struct rs_msg *m, const char *path)
{
	const char *method = roll(3) ? "GET" : "POST";
	int64_t off;

	rs_msg_reset(m);
	off = rs_msg_append(m, method, strlen(method));
	m->method_s = (struct rs_hdr){0, 0, (uint32_t)off, (uint32_t)strlen(method)};
	off = rs_msg_append(m, path, strlen(path));
	m->path = (struct rs_hdr){0, 0, (uint32_t)off, (uint32_t)strlen(path)};
	off = rs_msg_append(m, "svc", 3);
	m->authority = (struct rs_hdr){0, 0, (uint32_t)off, 3};
	if (roll(2))
		rs_msg_add_header(m, "x-user", 6, roll(2) ? "beta" : "alpha", 4 + roll(2));
}

/* The reference: each route of the table in turn, each of its blocks in
 * full. */
static const struct rs_table_route *each_route(const struct rs_route_table *t,
					       const struct rs_msg *m, uint32_t port,
					       const struct rs_rmatch **matched)
{
	for (uint32_t i = 0; i < t->nroutes; i++)
		if (rs_route_matches(t->routes[i].r, m, port, "http", matched))
			return &t->routes[i];
	*matched = NULL;
	return NULL;
}

static void test_keys_find_the_first_match(void **state)
{
	char path[] = "/tmp/ringside-match-XXXXXX";
	struct rs_identity id = {.ns = "default"};
	static const uint32_t ports[] = {9080, 9090, 1234};
	struct rs_msg m;
	int fd = mkstemp(path);
	unsigned hits = 0, by_block = 0, total = 0;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	rs_msg_init(&m);
	for (uint64_t seed = 1; seed <= 40; seed++) {
		const char *paths[] = {path};
		struct rs_config *cfg = NULL;
		struct rs_diags diags = {0};
		struct rs_clusters cs;
		struct rs_router r;
		const struct rs_router_host *e;

		rng_state = seed;
		assert_int_equal(write_config(path, 12 + (int)roll(20)), 0);
		assert_int_equal(rs_config_load(paths, 1, &cfg, &diags), 0);
		if (diags.errors)
			rs_diags_print(&diags, stderr);
		assert_int_equal(diags.errors, 0);
		assert_int_equal(rs_clusters_build(cfg, &id, &cs, &diags), 0);
		assert_int_equal(rs_router_init(&r, &cs, cfg, &id), 0);
		e = rs_router_host(&r, "svc.default.svc.cluster.local");
		assert_non_null(e);
		assert_non_null(e->vs);
		for (int i = 0; i < 2000; i++) {
			char p[96];
			uint32_t port = ports[roll(3)];
			const struct rs_rmatch *got_b = NULL, *want_b = NULL;
			const struct rs_table_route *got, *want;
			const struct rs_route_table *t = NULL;

			snprintf(p, sizeof p, "%s%s%s", pick_uri(), roll(3) ? "" : pick_uri() + 1,
				 roll(3) ? "" : (roll(2) ? "?v=1" : "?x"));
			request(&m, p);
			for (uint32_t k = 0; k < e->ntables && !t; k++)
				if (e->tables[k].port == port)
					t = &e->tables[k];
			if (!t)
				t = &e->tables[e->ntables - 1];
			got = rs_router_route(e, port, &m, "http", &got_b);
			want = each_route(t, &m, port, &want_b);
			if (got != want || got_b != want_b)
				fail_msg("seed %llu: %s on port %u: route %ld block %p, want route %ld "
					 "block %p",
					 (unsigned long long)seed, p, port, got ? (long)(got - t->routes) : -1,
					 (const void *)got_b, want ? (long)(want - t->routes) : -1,
					 (const void *)want_b);
			hits += want != NULL;
			by_block += want_b != NULL;
			total++;
		}
		rs_router_free(&r);
		rs_clusters_free(&cs);
		rs_config_free(cfg);
		rs_diags_free(&diags);
	}
	rs_msg_free(&m);
	unlink(path);
	/* Each outcome was tried often: no route, a block, a catch-all. */
	assert_true(hits < total - total / 100);
	assert_true(by_block > total / 10);
	assert_true(hits - by_block > total / 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_find_the_first_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
