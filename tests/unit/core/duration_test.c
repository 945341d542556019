/* Durations as Istio resources write them (timeout: 10s, interval: 5m). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ringside/core.h"

#define NS 1ull
#define US (1000 * NS)
#define MS (1000 * US)
#define SEC (1000 * MS)

static void accepts(const char *s, uint64_t want)
{
	uint64_t ns = 12345;

	if (rs_duration_parse(s, &ns) != 0)
		fail_msg("\"%s\" rejected, want %llu ns", s, (unsigned long long)want);
	if (ns != want)
		fail_msg("\"%s\" gave %llu ns, want %llu", s, (unsigned long long)ns,
			 (unsigned long long)want);
}

static void rejects(const char *s)
{
	uint64_t ns = 12345;
	int rc = rs_duration_parse(s, &ns);

	if (rc != -EINVAL)
		fail_msg("\"%s\" returned %d (%llu ns), want -EINVAL", s, rc,
			 (unsigned long long)ns);
	/* A rejected value leaves the output alone. */
	assert_int_equal(ns, 12345);
}

static void test_units(void **state)
{
	accepts("250ms", 250 * MS);
	accepts("10s", 10 * SEC);
	accepts("1.5s", 1500 * MS);
	accepts("5m", 300 * SEC);
	accepts("1h", 3600 * SEC);
	accepts("100us", 100 * US);
	accepts("100µs", 100 * US);
	accepts("7ns", 7 * NS);
	accepts("0.5ms", 500 * US);
}

static void test_zero_means_no_limit(void **state)
{
	accepts("0", 0);
	accepts("0s", 0);
	accepts("0ms", 0);
	accepts("0.0s", 0);
}

static void test_rejects(void **state)
{
	rejects("");
	rejects("10");     /* a number needs a unit */
	rejects("-1s");    /* negative */
	rejects("10x");    /* unknown unit */
	rejects("s");      /* a unit needs a number */
	rejects("1e400s"); /* out of range */
	rejects("10 s");
	rejects("10S");    /* units are case-sensitive, as in Go and protobuf */
	rejects("10sec");
	rejects("1.5");
	rejects("infs");
	rejects("nans");
	rejects("1e10h"); /* above the 1e18 ns cap */
}

static void test_null(void **state)
{
	uint64_t ns = 1;

	assert_int_equal(rs_duration_parse(NULL, &ns), -EINVAL);
	assert_int_equal(ns, 1);
}

/* BUG (src/core/time.c, rs_duration_parse): the value is computed in binary
 * floating point and truncated, so decimal seconds that are not exact in
 * binary lose a nanosecond: "4.1s" gives 4099999999 ns, "1.005s"
 * 1004999999 ns, "16.4s" 16399999999 ns. Istio's durations are decimal
 * (protobuf Duration, Go time.ParseDuration): each must be exact. */
static void test_decimal_fractions_exact(void **state)
{
	accepts("0.3s", 300 * MS);
	accepts("1.1s", 1100 * MS);
	accepts("4.1s", 4100 * MS);
	accepts("1.005s", 1005 * MS);
	accepts("16.4s", 16400 * MS);
	accepts("1.001ms", 1001 * US);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_zero_means_no_limit),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_decimal_fractions_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
