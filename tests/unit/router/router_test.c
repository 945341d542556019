/* Routing by authority: which cluster a request's Host picks, as Kubernetes
 * DNS search paths would resolve it from the proxy's namespace. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/router.h"

static struct rs_cluster cluster_v[] = {
	{.name = "outbound|9080||reviews.default.svc.cluster.local",
	 .host = "reviews.default.svc.cluster.local",
	 .port = 9080},
	{.name = "outbound|443||api.example.com", .host = "api.example.com", .port = 443},
	{.name = "outbound|80||api.example.com", .host = "api.example.com", .port = 80},
	{.name = "outbound|8080||single.test", .host = "single.test", .port = 8080},
	{.name = "outbound|81||two.test", .host = "two.test", .port = 81},
	{.name = "outbound|82||two.test", .host = "two.test", .port = 82},
};
static const struct rs_clusters clusters = {.v = cluster_v,
					    .n = sizeof cluster_v / sizeof cluster_v[0]};

enum { REVIEWS, API_443, API_80, SINGLE, TWO_81, TWO_82 };

static int setup_default(void **state)
{
	struct rs_router *r = calloc(1, sizeof *r);

	assert_non_null(r);
	assert_int_equal(rs_router_init(r, &clusters, NULL, &(struct rs_identity){.ns = "default"}), 0);
	*state = r;
	return 0;
}

static int setup_other(void **state)
{
	struct rs_router *r = calloc(1, sizeof *r);

	assert_non_null(r);
	assert_int_equal(rs_router_init(r, &clusters, NULL, &(struct rs_identity){.ns = "other"}), 0);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	rs_router_free(*state);
	free(*state);
	return 0;
}

/* Matches from a heap copy of exactly len bytes, with no terminator, as the
 * authority sits in a message buffer: ASan sees any read past its end. */
static int match(const struct rs_router *r, const char *authority, char *host, size_t hostlen)
{
	size_t len = strlen(authority);
	char *copy = malloc(len ? len : 1);
	int idx;

	assert_non_null(copy);
	memcpy(copy, authority, len);
	idx = rs_router_match(r, copy, len, host, hostlen);
	free(copy);
	return idx;
}

static void want(const struct rs_router *r, const char *authority, int idx, const char *host)
{
	char got[256];
	int i;

	memset(got, 0x55, sizeof got);
	i = match(r, authority, got, sizeof got);
	if (i != idx)
		fail_msg("\"%s\" matched %d, want %d", authority, i, idx);
	if (host && strcmp(got, host) != 0)
		fail_msg("\"%s\" wrote host \"%.255s\", want \"%s\"", authority, got, host);
}

static void test_exact_host(void **state)
{
	const struct rs_router *r = *state;

	want(r, "reviews.default.svc.cluster.local", REVIEWS, "reviews.default.svc.cluster.local");
	want(r, "reviews.default.svc.cluster.local:9080", REVIEWS,
	     "reviews.default.svc.cluster.local");
	want(r, "api.example.com:443", API_443, "api.example.com");
	want(r, "api.example.com:80", API_80, "api.example.com");
	want(r, "single.test:8080", SINGLE, "single.test");
	/* A port with leading zeros is the same number. */
	want(r, "api.example.com:0443", API_443, "api.example.com");
}

static void test_case_insensitive_and_lowered(void **state)
{
	const struct rs_router *r = *state;

	want(r, "API.Example.COM", API_80, "api.example.com");
	want(r, "Reviews.Default.SVC.Cluster.Local:9080", REVIEWS,
	     "reviews.default.svc.cluster.local");
	want(r, "REVIEWS", REVIEWS, "reviews");
	want(r, "Nowhere.Example:8080", -1, "nowhere.example");
}

static void test_default_port(void **state)
{
	const struct rs_router *r = *state;

	/* Several ports: no port means 80. */
	want(r, "api.example.com", API_80, "api.example.com");
	/* One port: a host without a port takes it. */
	want(r, "single.test", SINGLE, "single.test");
	want(r, "reviews.default.svc.cluster.local", REVIEWS, NULL);
	/* Several ports, none of them 80: ambiguous. */
	want(r, "two.test", -1, "two.test");
	want(r, "two.test:82", TWO_82, "two.test");
	/* A port that is not one of the host's. */
	want(r, "single.test:80", -1, "single.test");
	want(r, "api.example.com:8443", -1, "api.example.com");
}

static void test_short_names(void **state)
{
	const struct rs_router *r = *state;

	want(r, "reviews", REVIEWS, "reviews");
	want(r, "reviews:9080", REVIEWS, "reviews");
	want(r, "reviews.default", REVIEWS, "reviews.default");
	want(r, "reviews.default:9080", REVIEWS, "reviews.default");
	want(r, "reviews.default.svc", REVIEWS, "reviews.default.svc");
	want(r, "reviews.default.svc:9080", REVIEWS, "reviews.default.svc");
	want(r, "reviews:9081", -1, "reviews");
	/* Not a search-path form. */
	want(r, "reviews.default.svc.cluster", -1, NULL);
	want(r, "reviews.other", -1, NULL);
	want(r, "ratings", -1, "ratings");
}

static void test_short_names_other_namespace(void **state)
{
	const struct rs_router *r = *state;

	want(r, "reviews", -1, "reviews");
	want(r, "reviews:9080", -1, "reviews");
	/* Naming the namespace still reaches it. */
	want(r, "reviews.default", REVIEWS, "reviews.default");
	want(r, "reviews.default.svc:9080", REVIEWS, "reviews.default.svc");
	want(r, "reviews.default.svc.cluster.local", REVIEWS, NULL);
}

static void test_unknown_and_bad(void **state)
{
	const struct rs_router *r = *state;

	want(r, "unknown.example.com", -1, NULL);
	want(r, "unknown", -1, NULL);
	want(r, "", -1, NULL);
	want(r, ":80", -1, NULL);
	want(r, "x:", -1, NULL);
	want(r, "x:abc", -1, NULL);
	want(r, "x:70000", -1, NULL);
	want(r, "x:65536", -1, NULL);
	want(r, "x:99999999999999999999", -1, NULL);
	/* A port that would wrap to a configured one in 16 bits. */
	want(r, "single.test:73616", -1, NULL);
	want(r, "api.example.com:65616", -1, NULL);
	want(r, "api.example.com:", -1, NULL);
	want(r, "api.example.com:80x", -1, NULL);
	want(r, "api.example.com:-80", -1, NULL);
	want(r, "api.example.com:+80", -1, NULL);
	want(r, "api.example.com: 80", -1, NULL);
	want(r, "api.example.com:80:80", -1, NULL);
	want(r, "single.test:8080 ", -1, NULL);
	want(r, "[", -1, NULL);
	want(r, "[::1", -1, NULL);
}

static void test_host_buffer_too_small(void **state)
{
	const struct rs_router *r = *state;
	char host[8];

	/* "single.test" needs 12 bytes with its terminator. */
	memset(host, 0x55, sizeof host);
	assert_int_equal(match(r, "single.test", host, sizeof host), -1);
	assert_int_equal(match(r, "single.test", host, 11), -1);
	{
		char h12[12];

		assert_int_equal(match(r, "single.test", h12, sizeof h12), SINGLE);
		assert_string_equal(h12, "single.test");
	}
}

static void test_long_authority(void **state)
{
	const struct rs_router *r = *state;
	char *a = malloc(1001), host[1100];

	/* Longer than the search-path buffer: no match, no overflow. */
	assert_non_null(a);
	memset(a, 'a', 1000);
	a[1000] = '\0';
	assert_int_equal(match(r, a, host, sizeof host), -1);
	a[500] = '.';
	assert_int_equal(match(r, a, host, sizeof host), -1);
	free(a);
}

/* IPv6 literals: the authority "[::1]:80" names host ::1, port 80. */
static struct rs_cluster v6_v[] = {
	{.name = "outbound|80||::1", .host = "::1", .port = 80},
	{.name = "outbound|8080||fd00::2", .host = "fd00::2", .port = 8080},
};
static const struct rs_clusters v6 = {.v = v6_v, .n = 2};

static void test_ipv6_literal_no_crash(void **state)
{
	const struct rs_router *r = *state;

	/* Not one of the configured hosts: no match, and no read outside the
	 * authority (the heap copy in match() has no terminator). */
	want(r, "[::1]:80", -1, NULL);
	want(r, "[::1]", -1, NULL);
	want(r, "[]", -1, NULL);
	want(r, "[]:80", -1, NULL);
	want(r, "[::1]:", -1, NULL);
	want(r, "[::1]:x", -1, NULL);
	want(r, "[::1]:70000", -1, NULL);
}

/* BUG (src/router/router.c, rs_router_match): for a bracketed authority the
 * port is parsed up to authority + len after authority was advanced past the
 * '[', so it reads one byte beyond the authority (heap-buffer-overflow under
 * ASan) and folds that byte into the port. Input: "[::1]:80" (len 8) with a
 * cluster for host "::1" port 80. Expected: that cluster (index 0), host
 * "::1". Observed: -1 when the byte after the authority is not a digit (a
 * NUL, CR, or the next header's name), port 800..809 when it is one. */
static void test_ipv6_literal_with_port(void **state)
{
	struct rs_router r;
	char host[64];

	assert_int_equal(rs_router_init(&r, &v6, NULL, &(struct rs_identity){.ns = "default"}), 0);
	/* Without a port the one-port rule applies, and this already works. */
	want(&r, "[::1]", 0, "::1");
	want(&r, "[FD00::2]", 1, "fd00::2");
	/* The same bytes followed by a digit in the caller's buffer must not
	 * change the answer: the port is "80", not "801". */
	{
		int idx = rs_router_match(&r, "[::1]:801", 8, host, sizeof host);

		if (idx != 0)
			fail_msg("\"[::1]:80\" (len 8, followed by '1') matched %d, want 0", idx);
	}
	want(&r, "[::1]:80", 0, "::1");
	want(&r, "[fd00::2]:8080", 1, "fd00::2");
	rs_router_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exact_host, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_case_insensitive_and_lowered, setup_default,
						teardown),
		cmocka_unit_test_setup_teardown(test_default_port, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_short_names, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_short_names_other_namespace, setup_other,
						teardown),
		cmocka_unit_test_setup_teardown(test_unknown_and_bad, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_host_buffer_too_small, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_long_authority, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_literal_no_crash, setup_default, teardown),
		cmocka_unit_test(test_ipv6_literal_with_port),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
