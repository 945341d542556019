/* Clusters from configuration: endpoints of ServiceEntries and the
 * WorkloadEntries they select, their ports, and subsets from merged
 * DestinationRules as the proxy's namespace sees them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/config.h"
#include "ringside/upstream.h"

struct fixture {
	struct rs_config *cfg;
	struct rs_diags diags;
	struct rs_clusters cs;
};

static int setup(void **state)
{
	static struct fixture f;
	const char *paths[] = {"data/mesh.yaml", "data/dr-a.yaml", "data/dr-b.yaml"};

	memset(&f, 0, sizeof f);
	if (rs_config_load(paths, 3, &f.cfg, &f.diags) < 0 || f.diags.errors)
		return -1;
	if (rs_clusters_build(f.cfg, &(struct rs_identity){.ns = "default"}, &f.cs, &f.diags) < 0)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rs_clusters_free(&f->cs);
	rs_config_free(f->cfg);
	rs_diags_free(&f->diags);
	return 0;
}

static const char *const host = "reviews.default.svc.cluster.local";

/* The endpoint names of a cluster, joined by spaces. */
static const char *eps(const struct rs_clusters *cs, uint32_t port, const char *subset)
{
	static char buf[512];
	int i = rs_clusters_find_subset(cs, host, port, subset);
	size_t len = 0;

	if (i < 0)
		return "(no cluster)";
	buf[0] = '\0';
	for (size_t e = 0; e < cs->v[i].neps; e++)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", e ? " " : "",
					cs->v[i].eps[e].name);
	return buf;
}

static void test_whole_service_has_own_and_selected_endpoints(void **state)
{
	struct fixture *f = *state;

	/* Port 9080: targetPort 8080, or the endpoint's port named http. */
	assert_string_equal(eps(&f->cs, 9080, NULL), "10.0.0.1:8080 10.0.0.2:18082 10.0.0.3:18083");
	/* Port 9090 (admin) has no targetPort: the service port, or the named one. */
	assert_string_equal(eps(&f->cs, 9090, NULL), "10.0.0.1:9090 10.0.0.2:9090 10.0.0.3:19093");
	assert_string_equal(f->cs.v[rs_clusters_find(&f->cs, host, 9080)].name,
			    "outbound|9080||reviews.default.svc.cluster.local");
}

static void test_subsets_merge_and_the_first_of_a_name_wins(void **state)
{
	struct fixture *f = *state;
	int v1 = rs_clusters_find_subset(&f->cs, host, 9080, "v1");

	assert_true(v1 >= 0);
	assert_string_equal(f->cs.v[v1].name, "outbound|9080|v1|reviews.default.svc.cluster.local");
	assert_string_equal(eps(&f->cs, 9080, "v1"), "10.0.0.1:8080");
	/* dr-a.yaml's v2 (version v2), not dr-b.yaml's (version v1). */
	assert_string_equal(eps(&f->cs, 9080, "v2"), "10.0.0.2:18082");
	/* v3 from the second rule of the same name, a WorkloadEntry. */
	assert_string_equal(eps(&f->cs, 9090, "v3"), "10.0.0.3:19093");
}

static void test_less_specific_and_hidden_rules_are_not_used(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rs_clusters_find_subset(&f->cs, host, 9080, "wild"), -1);
	assert_int_equal(rs_clusters_find_subset(&f->cs, host, 9080, "private"), -1);
	assert_int_equal(rs_clusters_find_subset(&f->cs, host, 9080, "unrelated"), -1);
	assert_int_equal(rs_clusters_find_subset(&f->cs, host, 9080, "canary"), -1);
	/* 2 ports x (whole + v1 v2 v3), and the inbound cluster last. */
	assert_int_equal(f->cs.n, 9);
	assert_int_equal(f->cs.inbound, 8);
	assert_string_equal(f->cs.v[8].name, "inbound|||");
}

static void test_other_namespace_sees_other_rules(void **state)
{
	struct fixture *f = *state;
	struct rs_clusters cs;

	const struct rs_kv canary[] = {{"app", "canary-client"}};

	/* From namespace other, its own rule comes first (Istio's lookup:
	 * client namespace, then the service's, then the root namespace). */
	assert_int_equal(rs_clusters_build(f->cfg, &(struct rs_identity){.ns = "other"}, &cs,
					   &f->diags),
			 0);
	assert_true(rs_clusters_find_subset(&cs, host, 9080, "private") >= 0);
	assert_int_equal(rs_clusters_find_subset(&cs, host, 9080, "v1"), -1);
	rs_clusters_free(&cs);
	/* From a namespace with no rule of its own, the service's namespace
	 * (default) comes before the root namespace's wildcard. */
	assert_int_equal(rs_clusters_build(f->cfg, &(struct rs_identity){.ns = "third"}, &cs,
					   &f->diags),
			 0);
	assert_true(rs_clusters_find_subset(&cs, host, 9080, "v1") >= 0);
	assert_int_equal(rs_clusters_find_subset(&cs, host, 9080, "wild"), -1);
	assert_int_equal(rs_clusters_find_subset(&cs, host, 9080, "unrelated"), -1);
	rs_clusters_free(&cs);
	/* A client the workloadSelector picks gets that rule alone. */
	assert_int_equal(rs_clusters_build(f->cfg,
					   &(struct rs_identity){.ns = "default", .labels = canary,
								 .nlabels = 1},
					   &cs, &f->diags),
			 0);
	assert_string_equal(eps(&cs, 9080, "canary"), "10.0.0.3:18083");
	assert_int_equal(rs_clusters_find_subset(&cs, host, 9080, "v1"), -1);
	rs_clusters_free(&cs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_service_has_own_and_selected_endpoints),
		cmocka_unit_test(test_subsets_merge_and_the_first_of_a_name_wins),
		cmocka_unit_test(test_less_specific_and_hidden_rules_are_not_used),
		cmocka_unit_test(test_other_namespace_sees_other_rules),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
