/* VirtualServices compiled into route tables by host and port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/config-networking-t.h"
#include "ringside/config.h"
#include "ringside/router.h"
#include "ringside/upstream.h"

struct fixture {
	struct rs_config *cfg;
	struct rs_diags diags;
	struct rs_clusters cs;
	struct rs_router r;
};

static struct fixture fx;

static int load(const char *ns)
{
	const char *paths[] = {"data/routes.yaml"};

	memset(&fx, 0, sizeof fx);
	if (rs_config_load(paths, 1, &fx.cfg, &fx.diags) < 0 || fx.diags.errors)
		return -1;
	if (rs_clusters_build(fx.cfg, &(struct rs_identity){.ns = ns}, &fx.cs, &fx.diags) < 0)
		return -1;
	return rs_router_init(&fx.r, &fx.cs, fx.cfg, &(struct rs_identity){.ns = ns});
}

static void unload(void)
{
	rs_router_free(&fx.r);
	rs_clusters_free(&fx.cs);
	rs_config_free(fx.cfg);
	rs_diags_free(&fx.diags);
}

/* The names of the routes of host's table for port, joined by spaces. */
static const char *routes(const char *host, uint32_t port)
{
	static char buf[256];
	const struct rs_router_host *e = rs_router_host(&fx.r, host);

	if (!e)
		return "(no host)";
	if (!e->vs)
		return "(no virtual service)";
	for (uint32_t k = 0; k < e->ntables; k++) {
		size_t len = 0;

		if (e->tables[k].port != port)
			continue;
		buf[0] = '\0';
		for (uint32_t j = 0; j < e->tables[k].nroutes; j++) {
			const char *n = e->tables[k].routes[j].r->src->name;

			len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", j ? " " : "",
						n ? n : "-");
		}
		return buf;
	}
	return "(no table)";
}

static void test_tables_by_port(void **state)
{
	(void)state;
	assert_int_equal(load("default"), 0);
	/* A route matches on a port when one of its matches may. */
	assert_string_equal(routes("reviews.default.svc.cluster.local", 9080), "beta default");
	assert_string_equal(routes("reviews.default.svc.cluster.local", 9090),
			    "admin-only beta default");
	assert_string_equal(routes("reviews.default.svc.cluster.local", 0), "beta default");
	assert_string_equal(rs_router_host(&fx.r, "reviews.default.svc.cluster.local")->vs->name,
			    "reviews");
	unload();
}

static void test_which_virtual_services_apply(void **state)
{
	(void)state;
	assert_int_equal(load("default"), 0);
	/* Named only by a VirtualService: indexed, routes found, no cluster. */
	assert_string_equal(routes("ratings.default.svc.cluster.local", 0), "-");
	assert_int_equal(rs_router_host(&fx.r, "ratings.default.svc.cluster.local")->nports, 0);
	/* Gateway-only and other-namespace-only ones are not for this proxy. */
	assert_string_equal(routes("edge.example.com", 0), "(no virtual service)");
	assert_string_equal(routes("private.example.com", 0), "(no virtual service)");
	unload();
	assert_int_equal(load("other"), 0);
	assert_string_equal(routes("private.example.com", 0), "-");
	unload();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables_by_port),
		cmocka_unit_test(test_which_virtual_services_apply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
