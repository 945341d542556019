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

/* One of rs_spiffe_check_namespace, _service_account, _trust_domain. */
typedef int (*check_fn)(const char *s, char *err, size_t errlen);

#define NS rs_spiffe_check_namespace
#define SA rs_spiffe_check_service_account
#define TD rs_spiffe_check_trust_domain

static void ok(check_fn check, const char *s)
{
	err[0] = '\0';
	if (check(s, err, sizeof err) != 0)
		fail_msg("\"%s\" refused: %s", s, err);
}

/* Refused, with a message containing want. */
static void bad(check_fn check, const char *s, const char *want)
{
	err[0] = '\0';
	assert_int_equal(check(s, err, sizeof err), -EINVAL);
	if (!strstr(err, want))
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", s, err, want);
}

/* max characters pass; one more is refused with want. */
static void at_most(check_fn check, size_t max, const char *want)
{
	char name[300];

	memset(name, 'a', max + 1);
	name[max] = '\0';
	ok(check, name);
	name[max] = 'a';
	name[max + 1] = '\0';
	bad(check, name, want);
}

static void test_namespace(void **state)
{
	(void)state;
	ok(NS, "default");
	ok(NS, "istio-system");
	ok(NS, "a");
	ok(NS, "0");
	ok(NS, "9to5");
	at_most(NS, 63, "is 64 characters long; a namespace is at most 63");
	bad(NS, "", "is empty");
	bad(NS, "Default", "must be lowercase ('D' at position 1)");
	bad(NS, "-shop", "must start with a letter or digit");
	bad(NS, "shop-", "must end with a letter or digit");
	bad(NS, "my_ns", "'_' at position 3");
	bad(NS, "a.b", "'.' at position 2"); /* a label, not a subdomain */
	bad(NS, "a b", "a space at position 2");
	bad(NS, "caf\xc3\xa9", "byte 0xc3 at position 4");
}

static void test_service_account(void **state)
{
	(void)state;
	ok(SA, "default");
	ok(SA, "bookinfo-productpage");
	ok(SA, "build.robot"); /* a DNS-1123 subdomain: Kubernetes allows dots */
	ok(SA, "a.b.c");
	at_most(SA, 253, "is 254 characters long; a service account is at most 253");
	bad(SA, "", "is empty");
	bad(SA, "a..b", "empty label");
	bad(SA, ".a", "empty label");
	bad(SA, "a.", "must end with a letter or digit");
	bad(SA, "a.-b", "must start with a letter or digit");
	bad(SA, "a/b", "'/' at position 2");
	bad(SA, "Reviews", "must be lowercase");
}

static void test_trust_domain(void **state)
{
	(void)state;
	ok(TD, "cluster.local");
	ok(TD, "example.org");
	ok(TD, "my_td-1");
	at_most(TD, 255, "is 256 characters long; a trust domain is at most 255");
	bad(TD, "", "is empty");
	bad(TD, "Cluster.local", "must be lowercase ('C' at position 1)");
	bad(TD, "spiffe://cluster.local", "give the trust domain alone");
	bad(TD, "td:8080", "has no port");
	bad(TD, "a/b", "'/' at position 2");
	bad(TD, "a@b", "'@' at position 2");
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
