/* The checks across resources (src/config/check.c): each problem as
 * `ringside validate` prints it, with the position of the offending field,
 * and the configurations that must stay silent. Runs from this folder
 * (meson's workdir), so fixtures are data/check/... */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/config.h"
#include "harness.h"

#define D "data/check/"

/* A subset no DestinationRule for the host defines, in an http route, a
 * mirror and a tcp route: an error at the subset, the load still succeeds. */
static void test_subset_not_defined(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, D "subset-missing.yaml");
	assert_int_equal(l.rc, 0);
	assert_string_equal(
	    l.out,
	    D "subset-missing.yaml:13:3: VirtualService/default/reviews: warning: field 'spec.tcp' "
	      "is not implemented yet; ignored\n" D
	      "subset-missing.yaml:10:44: VirtualService/default/reviews: error: "
	      "spec.http[0].route[1].destination.subset: subset 'v3' is not defined by any "
	      "DestinationRule for host reviews.default.svc.cluster.local\n" D
	      "subset-missing.yaml:12:37: VirtualService/default/reviews: error: "
	      "spec.http[0].mirror.subset: subset 'v9' is not defined by any DestinationRule for "
	      "host reviews.default.svc.cluster.local\n" D
	      "subset-missing.yaml:15:44: VirtualService/default/reviews: error: "
	      "spec.tcp[0].route[0].destination.subset: subset 'v4' is not defined by any "
	      "DestinationRule for host reviews.default.svc.cluster.local\n");
	assert_int_equal(l.diags.errors, 3);
	assert_int_equal(l.cfg->n_virtual_services, 1);
	unload(&l);
}

/* A DestinationRule kept to its namespace does not count, and the message
 * says why the one that defines the subset does not. */
static void test_subset_not_exported(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, D "subset-hidden.yaml");
	assert_string_equal(
	    l.out, D "subset-hidden.yaml:16:3: DestinationRule/backend/ratings: warning: field "
	             "'spec.exportTo' is not implemented yet; ignored\n" D
	             "subset-hidden.yaml:9:70: VirtualService/shop/ratings: error: "
	             "spec.http[0].route[0].destination.subset: subset 'v2' is not defined by any "
	             "DestinationRule for host ratings.backend.svc.cluster.local (DestinationRule "
	             "backend/ratings defines it but is not exported to namespace shop)\n");
	unload(&l);
}

/* The exact host's DestinationRule applies, not a wildcard one's. */
static void test_subset_most_specific_rule(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, D "subset-specific.yaml");
	assert_string_equal(l.out,
	                    D "subset-specific.yaml:10:52: VirtualService/default/api: error: "
	                      "spec.http[0].route[0].destination.subset: subset 'v2' is not "
	                      "defined by any DestinationRule for host api.example.com\n");
	unload(&l);
}

/* Subsets joined from two rules for one host (one per file, same name, short
 * and long host), a tls route, a host with no rule loaded, a wildcard rule
 * and a root-namespace rule: nothing to say but the fields not implemented. */
static void test_subsets_found(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, D "split");
	assert_int_equal(l.diags.errors, 0);
	assert_string_equal(
	    l.out, D "split/a.yaml:14:3: VirtualService/default/reviews: warning: field 'spec.tls' "
	             "is not implemented yet; ignored\n" D
	             "split/a.yaml:65:3: DestinationRule/istio-system/org: warning: field "
	             "'spec.exportTo' is not implemented yet; ignored\n");
	unload(&l);
}

/* The mission's 01 (reviews' subsets) and 04 (its circuit breaker) both
 * define DestinationRule default/reviews: loaded together, in either order,
 * their subsets are joined. 04 alone defines none, so a route to v1 is then
 * an error, as Istio would find it. */
static void test_mission_01_04_merged(void **state)
{
	const char *dir = getenv("RINGSIDE_MISSION_CONFIG");
	char a[4096], b[4096];
	struct loaded l;

	(void)state;
	if (!dir)
		skip();
	snprintf(a, sizeof a, "%s/01-reviews-header-routing.yaml", dir);
	snprintf(b, sizeof b, "%s/04-reviews-circuit-breaking.yaml", dir);
	LOAD(&l, b, a);
	if (l.rc == -ENOENT) {
		unload(&l);
		skip();
	}
	assert_string_equal(l.out, "");
	unload(&l);

	LOAD(&l, a, b, D "reviews-vs.yaml");
	assert_string_equal(l.out,
	                    D "reviews-vs.yaml:10:44: VirtualService/default/reviews-canary: "
	                      "error: spec.http[0].route[1].destination.subset: subset 'v3' "
	                      "is not defined by any DestinationRule for host "
	                      "reviews.default.svc.cluster.local\n");
	unload(&l);

	LOAD(&l, b, D "reviews-vs.yaml");
	assert_int_equal(l.diags.errors, 2);
	assert_non_null(strstr(l.out,
	                       "reviews-vs.yaml:8:44: VirtualService/default/reviews-canary: "
	                       "error: spec.http[0].route[0].destination.subset: subset 'v1' "
	                       "is not defined"));
	unload(&l);
}

/* Known endpoints (inline, and a WorkloadEntry of the ServiceEntry's
 * namespace its workloadSelector picks): only v3 selects none. A host with
 * no endpoints known stays silent. */
static void test_subset_selects_no_endpoint(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, D "endpoints.yaml");
	assert_string_equal(
	    l.out, D "endpoints.yaml:55:13: DestinationRule/default/api: warning: "
	             "spec.subsets[3].labels: subset 'v3' selects none of the 3 endpoints of host "
	             "api.internal\n");
	assert_int_equal(l.diags.errors, 0);
	assert_int_equal(l.cfg->service_entries[1].nworkload_selector, 1);
	unload(&l);
}

/* The same subset name from two rules merged for one host: the later one is
 * named with where the kept one is; a rule of another namespace is not
 * merged, and its shadowed subset's labels are not checked again. */
static void test_subset_defined_twice(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, D "dup");
	assert_string_equal(l.out,
	                    D "dup/b.yaml:10:11: DestinationRule/default/reviews-canary: "
	                      "warning: spec.subsets[1].name: subset 'v1' is also defined by "
	                      "DestinationRule default/reviews at " D
	                      "dup/a.yaml:7:11 for the same host; Istio keeps that one and "
	                      "ignores this one\n");
	assert_int_equal(l.diags.errors, 0);
	unload(&l);
}

/* AuthorizationPolicy values their own not-list excludes, exactly or by a
 * wildcard or a wider CIDR block. */
static void test_authorization_never_matches(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, D "authz.yaml");
	assert_int_equal(l.diags.errors, 0);
	assert_string_equal(
	    l.out,
	    D "authz.yaml:11:22: AuthorizationPolicy/shop/never: warning: "
	      "spec.rules[0].from[0].source.principals[0]: can never match: "
	      "'cluster.local/ns/a/sa/b' is excluded by 'cluster.local/*' in notPrincipals\n" D
	      "authz.yaml:9:22: AuthorizationPolicy/shop/never: warning: "
	      "spec.rules[0].from[0].source.namespaces[0]: can never match: 'foo' is both in "
	      "namespaces and notNamespaces\n" D
	      "authz.yaml:13:20: AuthorizationPolicy/shop/never: warning: "
	      "spec.rules[0].from[0].source.ipBlocks[0]: can never match: '10.1.2.0/24' is "
	      "excluded by '10.0.0.0/8' in notIpBlocks\n" D
	      "authz.yaml:19:17: AuthorizationPolicy/shop/never: warning: "
	      "spec.rules[0].to[0].operation.hosts[0]: can never match: 'Example.com' is excluded "
	      "by 'example.COM' in notHosts\n" D
	      "authz.yaml:17:19: AuthorizationPolicy/shop/never: warning: "
	      "spec.rules[0].to[0].operation.methods[0]: can never match: 'GET' is both in methods "
	      "and notMethods\n" D "authz.yaml:21:23: AuthorizationPolicy/shop/never: warning: "
	      "spec.rules[0].to[0].operation.ports[1]: can never match: '81' is both in ports and "
	      "notPorts\n" D "authz.yaml:25:16: AuthorizationPolicy/shop/never: warning: "
	      "spec.rules[0].when[0].values[0]: can never match: 'gold' is excluded "
	      "by '*' in notValues\n");
	unload(&l);
}

/* Not-lists that leave something to match: a narrower exclusion inside a
 * wildcard, a smaller CIDR block inside a larger one, different values. */
static void test_authorization_can_match(void **state)
{
	struct loaded l;

	(void)state;
	LOAD(&l, D "authz-ok.yaml");
	assert_string_equal(l.out, "");
	unload(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mission_config_has_no_errors),
	    cmocka_unit_test(test_subset_not_defined),
	    cmocka_unit_test(test_subset_not_exported),
	    cmocka_unit_test(test_subset_most_specific_rule),
	    cmocka_unit_test(test_subsets_found),
	    cmocka_unit_test(test_mission_01_04_merged),
	    cmocka_unit_test(test_subset_selects_no_endpoint),
	    cmocka_unit_test(test_subset_defined_twice),
	    cmocka_unit_test(test_authorization_never_matches),
	    cmocka_unit_test(test_authorization_can_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
