/* Which resources apply to this proxy's workload (select.c): Istio's
 * namespace, root namespace and selector rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"
#include "ringside/config-networking-t.h"
#include "ringside/config-security-t.h"

#define NAMES(v, n)                                                                                \
	({                                                                                         \
		static char buf_[512];                                                             \
		size_t len_ = 0;                                                                   \
		buf_[0] = '\0';                                                                    \
		for (size_t i_ = 0; i_ < (n); i_++)                                                \
			len_ += (size_t)snprintf(buf_ + len_, sizeof buf_ - len_, "%s%s/%s",      \
						 i_ ? " " : "", (v)[i_]->ns, (v)[i_]->name);       \
		buf_;                                                                              \
	})

static void selected(struct loaded *l, const char *ns, const struct rs_kv *labels, size_t n,
		     struct rs_selected *out)
{
	struct rs_identity id = {.ns = ns,
				 .service_account = "bookinfo-reviews",
				 .trust_domain = "cluster.local",
				 .labels = labels,
				 .nlabels = n};

	LOAD(l, "data/select/policies.yaml");
	assert_string_equal(l->out, "");
	assert_int_equal(rs_config_select(l->cfg, &id, out), 0);
}

static void test_reviews_v2_in_default(void **state)
{
	const struct rs_kv labels[] = {{"app", "reviews"}, {"version", "v2"}};
	struct rs_selected s;
	struct loaded l;

	(void)state;
	selected(&l, "default", labels, 2, &s);
	/* A root-namespace PeerAuthentication with a selector applies only in
	 * the root namespace; the mesh-wide and namespace ones apply. */
	assert_string_equal(NAMES(s.peer_authentications, s.n_peer_authentications),
			    "istio-system/mesh default/namespace");
	/* A root-namespace AuthorizationPolicy's selector reaches every
	 * namespace; v1-only needs a label the workload lacks. */
	assert_string_equal(NAMES(s.authorization_policies, s.n_authorization_policies),
			    "istio-system/root-reviews default/v2-only");
	assert_string_equal(NAMES(s.telemetries, s.n_telemetries), "istio-system/mesh-default");
	assert_non_null(s.sidecar);
	assert_string_equal(s.sidecar->name, "for-reviews");
	rs_selected_free(&s);
	unload(&l);
}

static void test_unlabelled_workload_gets_namespace_default_sidecar(void **state)
{
	struct rs_selected s;
	struct loaded l;

	(void)state;
	selected(&l, "default", NULL, 0, &s);
	assert_string_equal(NAMES(s.authorization_policies, s.n_authorization_policies), "");
	assert_string_equal(s.sidecar->name, "ns-default");
	rs_selected_free(&s);
	unload(&l);
}

static void test_other_namespace(void **state)
{
	const struct rs_kv labels[] = {{"app", "reviews"}};
	struct rs_selected s;
	struct loaded l;

	(void)state;
	selected(&l, "other", labels, 1, &s);
	assert_string_equal(NAMES(s.peer_authentications, s.n_peer_authentications),
			    "istio-system/mesh other/other-namespace");
	assert_string_equal(NAMES(s.authorization_policies, s.n_authorization_policies),
			    "istio-system/root-reviews other/elsewhere");
	/* No Sidecar of its own: the root namespace's default. */
	assert_string_equal(s.sidecar->name, "root-default");
	rs_selected_free(&s);
	unload(&l);
}

static void test_mission_06_and_07(void **state)
{
	const struct rs_kv reviews[] = {{"app", "reviews"}};
	const struct rs_kv api[] = {{"app", "api"}};
	struct rs_identity id = {.ns = "default", .labels = reviews, .nlabels = 1};
	struct rs_selected s;
	struct loaded l;

	(void)state;
	if (!load_mission_file(&l, "06-reviews-authorization.yaml"))
		skip();
	assert_int_equal(rs_config_select(l.cfg, &id, &s), 0);
	assert_string_equal(NAMES(s.authorization_policies, s.n_authorization_policies),
			    "default/reviews-policy default/deny-all");
	rs_selected_free(&s);
	unload(&l);
	if (!load_mission_file(&l, "07-api-jwt.yaml"))
		skip();
	assert_int_equal(rs_config_select(l.cfg, &id, &s), 0);
	assert_int_equal(s.n_request_authentications, 0);
	rs_selected_free(&s);
	id.labels = api;
	assert_int_equal(rs_config_select(l.cfg, &id, &s), 0);
	assert_string_equal(NAMES(s.request_authentications, s.n_request_authentications),
			    "default/jwt-auth");
	assert_int_equal(s.n_authorization_policies, 1);
	rs_selected_free(&s);
	unload(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reviews_v2_in_default),
		cmocka_unit_test(test_unlabelled_workload_gets_namespace_default_sidecar),
		cmocka_unit_test(test_other_namespace),
		cmocka_unit_test(test_mission_06_and_07),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
