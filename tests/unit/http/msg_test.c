/* The protocol-neutral message: header fields as the proxy adds, finds and
 * removes them, and the hop-by-hop fields it must not forward (RFC 9110
 * §7.6.1). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringside/http.h"

static void add(struct rs_msg *m, const char *name, const char *value)
{
	assert_int_equal(rs_msg_add_header(m, name, strlen(name), value, strlen(value)), 0);
}

static void want_value(const struct rs_msg *m, const char *name, const char *value)
{
	const struct rs_hdr *h = rs_msg_find(m, name);

	if (!h)
		fail_msg("no \"%s\" header", name);
	if (h->value_len != strlen(value) ||
	    memcmp(rs_msg_str(m, h->value_off), value, h->value_len) != 0)
		fail_msg("\"%s\" is \"%.*s\", want \"%s\"", name, (int)h->value_len,
			 rs_msg_str(m, h->value_off), value);
}

/* The names of the fields still present, in order, joined by ",". */
static void want_names(const struct rs_msg *m, const char *want)
{
	char got[1024];
	size_t n = 0;

	got[0] = '\0';
	for (uint32_t i = 0; i < m->nh; i++) {
		const struct rs_hdr *h = &m->h[i];

		if (!h->name_len)
			continue;
		n += (size_t)snprintf(got + n, sizeof got - n, "%s%.*s", n ? "," : "",
				      (int)h->name_len, rs_msg_str(m, h->name_off));
		assert_true(n < sizeof got);
	}
	if (strcmp(got, want) != 0)
		fail_msg("headers \"%s\", want \"%s\"", got, want);
}

static void test_init(void **state)
{
	struct rs_msg m;

	rs_msg_init(&m);
	assert_int_equal(m.nh, 0);
	assert_int_equal(m.content_length, -1);
	assert_null(rs_msg_find(&m, "host"));
	assert_int_equal(rs_msg_remove(&m, "host", 4), 0);
	assert_false(rs_msg_strip_hop_by_hop(&m));
	rs_msg_free(&m);
}

static void test_add_find_case_insensitive(void **state)
{
	struct rs_msg m;

	rs_msg_init(&m);
	add(&m, "Host", "example.com");
	add(&m, "Content-Type", "text/plain");
	add(&m, "X-Empty", "");
	add(&m, "content-type", "second");
	want_value(&m, "host", "example.com");
	want_value(&m, "HOST", "example.com");
	/* The first of several. */
	want_value(&m, "CONTENT-type", "text/plain");
	want_value(&m, "x-empty", "");
	assert_null(rs_msg_find(&m, "content"));
	assert_null(rs_msg_find(&m, "content-type-x"));
	assert_null(rs_msg_find(&m, "hos"));
	want_names(&m, "Host,Content-Type,X-Empty,content-type");
	rs_msg_free(&m);
}

static void test_add_many_and_long(void **state)
{
	struct rs_msg m;
	char name[32], value[32], *big;

	/* More fields than the first allocation, and a buffer that grows: the
	 * offsets stay valid. */
	rs_msg_init(&m);
	big = malloc(5000);
	assert_non_null(big);
	memset(big, 'v', 4999);
	big[4999] = '\0';
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof name, "x-h%d", i);
		snprintf(value, sizeof value, "v%d", i);
		add(&m, name, value);
		if (i == 100)
			add(&m, "x-big", big);
	}
	assert_int_equal(m.nh, 201);
	want_value(&m, "X-H0", "v0");
	want_value(&m, "x-h199", "v199");
	want_value(&m, "x-big", big);
	free(big);
	rs_msg_free(&m);
}

static void test_remove(void **state)
{
	struct rs_msg m;

	rs_msg_init(&m);
	add(&m, "A", "1");
	add(&m, "b", "2");
	add(&m, "a", "3");
	add(&m, "ab", "4");
	assert_int_equal(rs_msg_remove(&m, "A", 1), 2);
	assert_null(rs_msg_find(&m, "a"));
	want_value(&m, "ab", "4");
	want_names(&m, "b,ab");
	/* Removing again finds nothing. */
	assert_int_equal(rs_msg_remove(&m, "a", 1), 0);
	/* The length counts: "ab" with nlen 1 is "a". */
	assert_int_equal(rs_msg_remove(&m, "ab", 1), 0);
	assert_int_equal(rs_msg_remove(&m, "AB", 2), 1);
	want_names(&m, "b");
	/* A field added after a removal is found. */
	add(&m, "a", "5");
	want_value(&m, "a", "5");
	rs_msg_free(&m);
}

static void test_reset_keeps_buffers_clears_fields(void **state)
{
	struct rs_msg m;

	rs_msg_init(&m);
	add(&m, "host", "x");
	m.status = 200;
	rs_msg_reset(&m);
	assert_int_equal(m.nh, 0);
	assert_int_equal(m.len, 0);
	assert_int_equal(m.status, 0);
	assert_int_equal(m.content_length, -1);
	assert_null(rs_msg_find(&m, "host"));
	add(&m, "via", "y");
	want_value(&m, "via", "y");
	rs_msg_free(&m);
}

static void test_strip_hop_by_hop_fixed_names(void **state)
{
	struct rs_msg m;

	rs_msg_init(&m);
	add(&m, "Host", "h");
	add(&m, "Connection", "keep-alive");
	add(&m, "Keep-Alive", "timeout=5");
	add(&m, "Proxy-Connection", "keep-alive");
	add(&m, "TE", "trailers");
	add(&m, "Transfer-Encoding", "chunked");
	add(&m, "Upgrade", "websocket");
	add(&m, "Content-Length", "3");
	add(&m, "TRANSFER-ENCODING", "gzip");
	assert_false(rs_msg_strip_hop_by_hop(&m));
	want_names(&m, "Host,Content-Length");
	rs_msg_free(&m);
}

static void test_strip_names_listed_in_connection(void **state)
{
	struct rs_msg m;

	rs_msg_init(&m);
	add(&m, "x-a", "1");
	add(&m, "Connection", " X-A ,x-b,, \tX-C\t ,");
	add(&m, "x-b", "2");
	add(&m, "X-c", "3");
	add(&m, "x-d", "4");
	add(&m, "connection", "x-d");
	add(&m, "x-ab", "kept");
	add(&m, "x-e", "kept");
	assert_false(rs_msg_strip_hop_by_hop(&m));
	want_names(&m, "x-ab,x-e");
	rs_msg_free(&m);
}

static void test_strip_close(void **state)
{
	static const struct {
		const char *value;
		bool close;
	} cases[] = {
		{"close", true},
		{"Close", true},
		{"keep-alive, close", true},
		{" CLOSE ", true},
		{"x-foo,close,x-bar", true},
		{"keep-alive", false},
		{"closed", false},
		{"close-x", false},
		{"x-close", false},
		{"", false},
		{"clos", false},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct rs_msg m;
		bool got;

		rs_msg_init(&m);
		add(&m, "Connection", cases[i].value);
		add(&m, "host", "h");
		got = rs_msg_strip_hop_by_hop(&m);
		if (got != cases[i].close)
			fail_msg("Connection: \"%s\" gave close=%d", cases[i].value, got);
		assert_null(rs_msg_find(&m, "connection"));
		want_value(&m, "host", "h");
		rs_msg_free(&m);
	}
	{
		/* "close" in a second Connection field counts too. */
		struct rs_msg m;

		rs_msg_init(&m);
		add(&m, "Connection", "x-a");
		add(&m, "Connection", "close");
		add(&m, "x-a", "1");
		assert_true(rs_msg_strip_hop_by_hop(&m));
		want_names(&m, "");
		rs_msg_free(&m);
	}
	{
		/* A field named close is not a Connection option. */
		struct rs_msg m;

		rs_msg_init(&m);
		add(&m, "close", "close");
		assert_false(rs_msg_strip_hop_by_hop(&m));
		rs_msg_free(&m);
	}
}

static void test_strip_connection_may_name_any_field(void **state)
{
	struct rs_msg m;

	/* Connection may name any field, including one the proxy then would not
	 * forward: that is what the sender asked for. Others stay. */
	rs_msg_init(&m);
	add(&m, "Connection", "Content-Type");
	add(&m, "Content-Type", "text/plain");
	add(&m, "Content-Length", "0");
	assert_false(rs_msg_strip_hop_by_hop(&m));
	want_names(&m, "Content-Length");
	rs_msg_free(&m);
}

/* BUG (src/http/msg.c, rs_msg_strip_hop_by_hop): a Connection field whose
 * options name "connection" removes the later Connection fields before their
 * own options are read, so the fields those name are forwarded and their
 * "close" is missed. Input: "Connection: connection", "Connection: x-a,
 * close", "x-a: 1". Expected: true (close) and no field left. Observed: false
 * and "x-a: 1" kept. RFC 9110 §7.6.1: every field named in any Connection
 * field is removed. */
static void test_strip_connection_naming_connection(void **state)
{
	struct rs_msg m;
	bool close, kept;

	rs_msg_init(&m);
	add(&m, "Connection", "connection");
	add(&m, "Connection", "x-a, close");
	add(&m, "x-a", "1");
	close = rs_msg_strip_hop_by_hop(&m);
	kept = rs_msg_find(&m, "x-a") != NULL;
	rs_msg_free(&m);
	if (kept || !close)
		fail_msg("x-a %s, close %s; want x-a removed and close true",
			 kept ? "kept" : "removed", close ? "true" : "false");
}

static bool has(const char *v, const char *token)
{
	return rs_value_has_token(v, strlen(v), token);
}

static void test_value_has_token(void **state)
{
	assert_true(has("chunked", "chunked"));
	assert_true(has("gzip, chunked", "chunked"));
	assert_true(has("gzip,chunked", "CHUNKED"));
	assert_true(has("  Chunked  ", "chunked"));
	assert_true(has("a,\tchunked\t,b", "chunked"));
	assert_true(has(",,chunked,,", "chunked"));
	assert_false(has("", "chunked"));
	assert_false(has("chunkedx", "chunked"));
	assert_false(has("xchunked", "chunked"));
	assert_false(has("chunk", "chunked"));
	assert_false(has("gzip; chunked", "chunked"));
	assert_false(has(", ,", "chunked"));
	/* The length bounds the value: "chunked" cut to "chun". */
	assert_false(rs_value_has_token("chunked", 4, "chunked"));
	assert_true(rs_value_has_token("gzip, chunkedXYZ", 13, "chunked"));
}

static void test_method_from(void **state)
{
	static const struct {
		const char *s;
		enum rs_method m;
	} cases[] = {
		{"GET", RS_METHOD_GET},         {"HEAD", RS_METHOD_HEAD},
		{"POST", RS_METHOD_POST},       {"PUT", RS_METHOD_PUT},
		{"DELETE", RS_METHOD_DELETE},   {"OPTIONS", RS_METHOD_OPTIONS},
		{"CONNECT", RS_METHOD_CONNECT}, {"PATCH", RS_METHOD_OTHER},
		{"TRACE", RS_METHOD_OTHER},     {"get", RS_METHOD_OTHER}, /* case-sensitive */
		{"GETS", RS_METHOD_OTHER},      {"GE", RS_METHOD_OTHER},
		{"", RS_METHOD_OTHER},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (rs_method_from(cases[i].s, strlen(cases[i].s)) != cases[i].m)
			fail_msg("\"%s\"", cases[i].s);
	/* The length bounds the text. */
	assert_int_equal(rs_method_from("GETX", 3), RS_METHOD_GET);
	assert_int_equal(rs_method_from("POST /", 4), RS_METHOD_POST);
}

static void test_status_reason(void **state)
{
	assert_string_equal(rs_status_reason(200), "OK");
	assert_string_equal(rs_status_reason(404), "Not Found");
	assert_string_equal(rs_status_reason(408), "Request Timeout");
	assert_string_equal(rs_status_reason(431), "Request Header Fields Too Large");
	assert_string_equal(rs_status_reason(502), "Bad Gateway");
	assert_string_equal(rs_status_reason(503), "Service Unavailable");
	assert_string_equal(rs_status_reason(504), "Gateway Timeout");
	assert_string_equal(rs_status_reason(101), "Switching Protocols");
	/* Never NULL: a status line always has a reason. */
	assert_string_equal(rs_status_reason(299), "Unknown");
	assert_string_equal(rs_status_reason(0), "Unknown");
	assert_string_equal(rs_status_reason(-1), "Unknown");
	for (int s = 100; s < 600; s++)
		assert_non_null(rs_status_reason(s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_add_find_case_insensitive),
		cmocka_unit_test(test_add_many_and_long),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_reset_keeps_buffers_clears_fields),
		cmocka_unit_test(test_strip_hop_by_hop_fixed_names),
		cmocka_unit_test(test_strip_names_listed_in_connection),
		cmocka_unit_test(test_strip_close),
		cmocka_unit_test(test_strip_connection_may_name_any_field),
		cmocka_unit_test(test_strip_connection_naming_connection),
		cmocka_unit_test(test_value_has_token),
		cmocka_unit_test(test_method_from),
		cmocka_unit_test(test_status_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
