/* SPIFFE IDs of Istio's form: the checks behind `ringside ca issue`'s flags,
 * and formatting and parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/tls.h"

static char err[256];

static void ns_ok(const char *s)
{
	err[0] = '\0';
	if (rs_spiffe_check_namespace(s, err, sizeof err) != 0)
		fail_msg("namespace \"%s\" refused: %s", s, err);
}

/* Refused, with a message containing want. */
static void ns_bad(const char *s, const char *want)
{
	err[0] = '\0';
	assert_int_equal(rs_spiffe_check_namespace(s, err, sizeof err), -EINVAL);
	if (!strstr(err, want))
		fail_msg("namespace \"%s\": message \"%s\" lacks \"%s\"", s, err, want);
}

static void sa_ok(const char *s)
{
	if (rs_spiffe_check_service_account(s, err, sizeof err) != 0)
		fail_msg("service account \"%s\" refused: %s", s, err);
}

static void sa_bad(const char *s, const char *want)
{
	err[0] = '\0';
	assert_int_equal(rs_spiffe_check_service_account(s, err, sizeof err), -EINVAL);
	if (!strstr(err, want))
		fail_msg("service account \"%s\": message \"%s\" lacks \"%s\"", s, err, want);
}

static void td_ok(const char *s)
{
	if (rs_spiffe_check_trust_domain(s, err, sizeof err) != 0)
		fail_msg("trust domain \"%s\" refused: %s", s, err);
}

static void td_bad(const char *s, const char *want)
{
	err[0] = '\0';
	assert_int_equal(rs_spiffe_check_trust_domain(s, err, sizeof err), -EINVAL);
	if (!strstr(err, want))
		fail_msg("trust domain \"%s\": message \"%s\" lacks \"%s\"", s, err, want);
}

static void repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
}

static void test_namespace(void **state)
{
	char long_name[80];

	(void)state;
	ns_ok("default");
	ns_ok("istio-system");
	ns_ok("a");
	ns_ok("0");
	ns_ok("9to5");
	repeat(long_name, 'a', 63);
	ns_ok(long_name);
	repeat(long_name, 'a', 64);
	ns_bad(long_name, "is 64 characters long; a namespace is at most 63");
	ns_bad("", "is empty");
	ns_bad("Default", "must be lowercase ('D' at position 1)");
	ns_bad("-shop", "must start with a letter or digit");
	ns_bad("shop-", "must end with a letter or digit");
	ns_bad("my_ns", "'_' at position 3");
	ns_bad("a.b", "'.' at position 2"); /* a label, not a subdomain */
	ns_bad("a b", "a space at position 2");
	ns_bad("caf\xc3\xa9", "byte 0xc3 at position 4");
}

static void test_service_account(void **state)
{
	char long_name[300];

	(void)state;
	sa_ok("default");
	sa_ok("bookinfo-productpage");
	sa_ok("build.robot"); /* a DNS-1123 subdomain: Kubernetes allows dots */
	sa_ok("a.b.c");
	repeat(long_name, 'a', 253);
	sa_ok(long_name);
	repeat(long_name, 'a', 254);
	sa_bad(long_name, "is 254 characters long; a service account is at most 253");
	sa_bad("", "is empty");
	sa_bad("a..b", "empty label");
	sa_bad(".a", "empty label");
	sa_bad("a.", "must end with a letter or digit");
	sa_bad("a.-b", "must start with a letter or digit");
	sa_bad("a/b", "'/' at position 2");
	sa_bad("Reviews", "must be lowercase");
}

static void test_trust_domain(void **state)
{
	char long_name[300];

	(void)state;
	td_ok("cluster.local");
	td_ok("example.org");
	td_ok("my_td-1");
	repeat(long_name, 'a', 255);
	td_ok(long_name);
	repeat(long_name, 'a', 256);
	td_bad(long_name, "is 256 characters long; a trust domain is at most 255");
	td_bad("", "is empty");
	td_bad("Cluster.local", "must be lowercase ('C' at position 1)");
	td_bad("spiffe://cluster.local", "give the trust domain alone");
	td_bad("td:8080", "has no port");
	td_bad("a/b", "'/' at position 2");
	td_bad("a@b", "'@' at position 2");
}

static void test_format(void **state)
{
	struct rs_spiffe_id id = {.td = "cluster.local", .ns = "default", .sa = "bookinfo"};
	char buf[RS_SPIFFE_ID_MAX + 1];

	(void)state;
	assert_int_equal(rs_spiffe_format(&id, buf, sizeof buf), 45);
	assert_string_equal(buf, "spiffe://cluster.local/ns/default/sa/bookinfo");
	/* Too small a buffer is refused, never cut. */
	assert_int_equal(rs_spiffe_format(&id, buf, 45), -ENAMETOOLONG);
	assert_int_equal(rs_spiffe_format(&id, buf, 46), 45);
	strcpy(id.ns, "Default");
	assert_int_equal(rs_spiffe_format(&id, buf, sizeof buf), -EINVAL);
}

static void parses(const char *uri, const char *td, const char *ns, const char *sa)
{
	struct rs_spiffe_id id;

	if (rs_spiffe_parse(uri, strlen(uri), &id) != 0)
		fail_msg("\"%s\" refused", uri);
	assert_string_equal(id.td, td);
	assert_string_equal(id.ns, ns);
	assert_string_equal(id.sa, sa);
}

static void refuses(const char *uri)
{
	struct rs_spiffe_id id;

	if (rs_spiffe_parse(uri, strlen(uri), &id) != -EINVAL)
		fail_msg("\"%s\" accepted", uri);
}

static void test_parse(void **state)
{
	struct rs_spiffe_id id = {.td = "example.org", .ns = "shop", .sa = "cart.worker"}, back;
	char buf[RS_SPIFFE_ID_MAX + 1];
	int n;

	(void)state;
	parses("spiffe://cluster.local/ns/default/sa/bookinfo", "cluster.local", "default",
	       "bookinfo");
	parses("spiffe://td/ns/a/sa/b.c", "td", "a", "b.c");
	n = rs_spiffe_format(&id, buf, sizeof buf);
	assert_true(n > 0);
	assert_int_equal(rs_spiffe_parse(buf, (size_t)n, &back), 0);
	assert_string_equal(back.td, id.td);
	assert_string_equal(back.ns, id.ns);
	assert_string_equal(back.sa, id.sa);

	refuses("");
	refuses("spiffe://");
	refuses("spiffe://cluster.local");
	refuses("spiffe://cluster.local/");
	refuses("https://cluster.local/ns/a/sa/b");
	refuses("SPIFFE://cluster.local/ns/a/sa/b");
	refuses("spiffe://cluster.local/ns/a/sa/");
	refuses("spiffe://cluster.local/ns//sa/b");
	refuses("spiffe://cluster.local/ns/a/sa/b/");
	refuses("spiffe://cluster.local/ns/a/sa/b/extra");
	refuses("spiffe://cluster.local/ns/a/sa/b?x=1");
	refuses("spiffe://cluster.local/sa/b/ns/a");
	refuses("spiffe://cluster.local:80/ns/a/sa/b");
	refuses("spiffe://user@cluster.local/ns/a/sa/b");
	refuses("spiffe://Cluster.local/ns/a/sa/b");
	refuses("spiffe://cluster.local/ns/A/sa/b");
	/* Only len bytes count: a longer buffer is not read past them. */
	assert_int_equal(rs_spiffe_parse("spiffe://td/ns/a/sa/bc", 21, &back), 0);
	assert_string_equal(back.sa, "b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_namespace),    cmocka_unit_test(test_service_account),
	    cmocka_unit_test(test_trust_domain), cmocka_unit_test(test_format),
	    cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
