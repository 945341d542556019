/* RE2 through the C API: what Istio's regex fields accept and how Envoy's
 * safe_regex matches them (the whole string). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/regex.h"

static struct rs_regex *compiles(const char *pattern)
{
	char err[256] = "";
	struct rs_regex *re = rs_regex_compile(pattern, strlen(pattern), err, sizeof err);

	if (!re)
		fail_msg("'%s' rejected: %s", pattern, err);
	return re;
}

/* The pattern is refused with EINVAL and exactly RE2's message. */
static void rejects(const char *pattern, const char *want)
{
	char err[256] = "";
	struct rs_regex *re;

	errno = 0;
	re = rs_regex_compile(pattern, strlen(pattern), err, sizeof err);
	if (re) {
		rs_regex_free(re);
		fail_msg("'%s' accepted, want '%s'", pattern, want);
	}
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, want);
}

static bool full_match(const char *pattern, const char *s)
{
	struct rs_regex *re = compiles(pattern);
	bool m = rs_regex_full_match(re, s, strlen(s));

	rs_regex_free(re);
	return m;
}

static void test_compile_errors(void **state)
{
	(void)state;
	rejects("a(b", "missing ): a(b");
	rejects("/api/(v1", "missing ): /api/(v1");
	rejects("a)", "unexpected ): a)");
	rejects("[z-a]", "invalid character class range: z-a");
	rejects("a**", "bad repetition operator: **");
	rejects("x{1001}", "invalid repetition size: {1001}");
	/* No backreferences in RE2 (linear time), nor lookaround. */
	rejects("(a)\\1", "invalid escape sequence: \\1");
	rejects("a(?=b)", "invalid perl operator: (?=");
}

/* A short err buffer gets a truncated, terminated message; none at all is fine. */
static void test_error_buffer(void **state)
{
	char err[6];

	(void)state;
	memset(err, 'x', sizeof err);
	assert_null(rs_regex_compile("a(b", 3, err, sizeof err));
	assert_string_equal(err, "missi");
	errno = 0;
	assert_null(rs_regex_compile("a(b", 3, NULL, 0));
	assert_int_equal(errno, EINVAL);
}

/* Envoy's safe_regex matches the whole value, as if wrapped in ^...$. */
static void test_full_match_not_partial(void **state)
{
	(void)state;
	assert_true(full_match("a+", "aaa"));
	assert_false(full_match("a+", "aaab"));
	assert_false(full_match("a+", "baaa"));
	assert_false(full_match("b", "abc"));
	assert_true(full_match("/api/v[0-9]+/.*", "/api/v2/users"));
	assert_false(full_match("/api/v[0-9]+", "/api/v2/users"));
	assert_true(full_match("^(alice|bob)$", "bob"));
	assert_true(full_match("", ""));
	assert_false(full_match("", "a"));
}

/* RE2 syntax that POSIX regcomp refused or misread. */
static void test_re2_syntax(void **state)
{
	(void)state;
	assert_true(full_match("(?i)abc", "AbC"));
	assert_false(full_match("abc", "AbC"));
	assert_true(full_match("\\d+", "2024"));
	assert_false(full_match("\\d+", "d"));
	assert_true(full_match("(?:ab)+", "abab"));
	assert_true(full_match("(?P<ver>v[12])/.*", "v1/x"));
	assert_true(full_match("a+?b", "aab"));
	assert_true(full_match("\\Aabc\\z", "abc"));
}

/* Patterns and subjects are UTF-8: `.` is one code point, not one byte. */
static void test_utf8(void **state)
{
	char err[256] = "";

	(void)state;
	assert_true(full_match(".", "\xc3\xa9")); /* é, two bytes */
	assert_true(full_match("caf\xc3\xa9", "caf\xc3\xa9"));
	assert_true(full_match("\\pL+", "\xc3\xa9t\xc3\xa9")); /* été */
	assert_false(full_match("\\pL+", "1"));
	assert_true(full_match("[\xc3\xa0-\xc3\xbf]", "\xc3\xa9"));
	/* A pattern that is not UTF-8 is refused. */
	assert_null(rs_regex_compile("\xff", 1, err, sizeof err));
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, "invalid UTF-8");
}

/* Lengths, not NUL terminators, bound pattern and subject. */
static void test_lengths(void **state)
{
	struct rs_regex *re;

	(void)state;
	re = rs_regex_compile("a\0b", 3, NULL, 0);
	assert_non_null(re);
	assert_true(rs_regex_full_match(re, "a\0b", 3));
	assert_false(rs_regex_full_match(re, "a", 1));
	rs_regex_free(re);
	re = rs_regex_compile("abcdef", 3, NULL, 0);
	assert_non_null(re);
	assert_true(rs_regex_full_match(re, "abcxyz", 3));
	rs_regex_free(re);
	rs_regex_free(NULL);
}

/* Programs over Istio's limit are refused with Envoy's wording; the ones
 * Envoy's own default of 100 would refuse are fine. A program too big for
 * RE2's memory budget is refused by RE2 itself. */
static void test_program_size_limit(void **state)
{
	char err[256] = "", want[256];
	struct rs_regex *re;
	char *big;
	size_t n = 0;

	(void)state;
	/* Program size 106, the classic report of Envoy's default limit. */
	re = compiles("^/user/(488/sms|h5/getJwt|captcha|version/getAIDrawTemplate|"
	              "version/isMainLand|version/promotionTemplate|version/"
	              "activityTemplate2).*");
	rs_regex_free(re);
	/* 33 x a{1000}: 33004, just over. */
	big = malloc(33 * 7 + 1);
	if (!big)
		fail();
	for (int i = 0; i < 33; i++) {
		memcpy(big + n, "a{1000}", 7);
		n += 7;
	}
	big[n] = '\0';
	errno = 0;
	assert_null(rs_regex_compile(big, n, err, sizeof err));
	assert_int_equal(errno, EINVAL);
	snprintf(want, sizeof want, "RE2 program size of 33004 > max program size of %d",
	         RS_REGEX_MAX_PROGRAM_SIZE);
	assert_string_equal(err, want);
	/* 32 x a{1000} stays under. */
	re = rs_regex_compile(big, n - 7, err, sizeof err);
	assert_non_null(re);
	rs_regex_free(re);
	free(big);
	/* Over RE2's own memory budget (max_mem) before the size is known. */
	rejects("\\PL{1000}", "pattern too large - compile failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_compile_errors),
	    cmocka_unit_test(test_error_buffer),
	    cmocka_unit_test(test_full_match_not_partial),
	    cmocka_unit_test(test_re2_syntax),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_program_size_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
