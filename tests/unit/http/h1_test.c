/* HTTP/1.1 serialisation: the exact bytes a peer reads (RFC 9112). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <cmocka.h>

#include "ringside/core.h"
#include "ringside/http.h"

struct out {
	struct rs_outq q;
	struct rs_chunk_cache cc;
};

static void out_init(struct out *o)
{
	memset(o, 0, sizeof *o);
	o->cc.max_free = 2;
}

static void out_free(struct out *o)
{
	rs_outq_clear(&o->q, &o->cc);
	rs_chunk_cache_free(&o->cc);
}

/* What a send of the queue would write, as a string; freed by the caller. */
static char *out_str(const struct out *o)
{
	struct iovec iov[16];
	int n = rs_outq_iov(&o->q, iov, 16);
	size_t len = 0;
	char *s = malloc(o->q.bytes + 1);

	assert_non_null(s);
	for (int i = 0; i < n; i++) {
		memcpy(s + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	assert_int_equal(len, o->q.bytes);
	s[len] = '\0';
	return s;
}

static void want_out(struct out *o, const char *want)
{
	char *got = out_str(o);

	if (strcmp(got, want) != 0)
		fail_msg("wrote\n\"%s\"\nwant\n\"%s\"", got, want);
	free(got);
}

static void add(struct rs_msg *m, const char *name, const char *value)
{
	assert_int_equal(rs_msg_add_header(m, name, strlen(name), value, strlen(value)), 0);
}

static void set_request_line(struct rs_msg *m, const char *method, const char *path)
{
	int64_t mo = rs_msg_append(m, method, strlen(method));
	int64_t po = rs_msg_append(m, path, strlen(path));

	assert_true(mo >= 0 && po >= 0);
	m->method = rs_method_from(method, strlen(method));
	m->method_s.value_off = (uint32_t)mo;
	m->method_s.value_len = (uint32_t)strlen(method);
	m->path.value_off = (uint32_t)po;
	m->path.value_len = (uint32_t)strlen(path);
}

static bool ok(const char *s)
{
	return rs_h1_value_ok(s, strlen(s));
}

static void test_value_ok(void **state)
{
	assert_true(ok(""));
	assert_true(ok("text/plain; charset=utf-8"));
	assert_true(ok("a\tb"));   /* HTAB is allowed */
	assert_true(ok(" lead and trail "));
	assert_true(ok("~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./"));
	assert_true(ok("caf\xc3\xa9")); /* obs-text: bytes >= 0x80 */
	assert_true(ok("\x80\xff"));
	assert_false(ok("a\rb"));
	assert_false(ok("a\nb"));
	assert_false(ok("a\r\n b")); /* obs-fold */
	assert_false(ok("a\x7f"));
	assert_false(ok("\x1b[31m"));
	assert_false(ok("\x01"));
	assert_false(ok("\x1f"));
	assert_false(ok("\x0b"));
	/* NUL inside the counted bytes. */
	assert_false(rs_h1_value_ok("a\0b", 3));
	assert_true(rs_h1_value_ok("ab\r", 2));
	for (int c = 0; c < 256; c++) {
		char b = (char)c;
		bool want = c == '\t' || (c >= 0x20 && c != 0x7f);

		if (rs_h1_value_ok(&b, 1) != want)
			fail_msg("byte 0x%02x", c);
	}
}

static void test_request_head(void **state)
{
	struct rs_msg m;
	struct out o;

	rs_msg_init(&m);
	out_init(&o);
	set_request_line(&m, "GET", "/reviews/1?x=y");
	add(&m, "Host", "reviews:9080");
	add(&m, "User-Agent", "curl/8");
	add(&m, "Accept", "*/*");
	m.body = RS_BODY_NONE;
	assert_int_equal(rs_h1_encode_request_head(&o.q, &o.cc, &m), 0);
	want_out(&o, "GET /reviews/1?x=y HTTP/1.1\r\n"
		     "Host: reviews:9080\r\n"
		     "User-Agent: curl/8\r\n"
		     "Accept: */*\r\n"
		     "\r\n");
	out_free(&o);
	rs_msg_free(&m);
}

static void test_request_head_removed_fields_not_written(void **state)
{
	struct rs_msg m;
	struct out o;

	rs_msg_init(&m);
	out_init(&o);
	set_request_line(&m, "POST", "/upload");
	add(&m, "Host", "h");
	add(&m, "Connection", "keep-alive, x-drop");
	add(&m, "X-Drop", "1");
	add(&m, "Content-Length", "5");
	add(&m, "Keep-Alive", "timeout=5");
	rs_msg_strip_hop_by_hop(&m);
	m.body = RS_BODY_LENGTH;
	m.content_length = 5;
	assert_int_equal(rs_h1_encode_request_head(&o.q, &o.cc, &m), 0);
	want_out(&o, "POST /upload HTTP/1.1\r\n"
		     "Host: h\r\n"
		     "Content-Length: 5\r\n"
		     "\r\n");
	out_free(&o);
	rs_msg_free(&m);
}

static void test_request_head_stream_body_is_chunked(void **state)
{
	struct rs_msg m;
	struct out o;

	rs_msg_init(&m);
	out_init(&o);
	set_request_line(&m, "PUT", "/x");
	add(&m, "Host", "h");
	add(&m, "Transfer-Encoding", "chunked");
	rs_msg_strip_hop_by_hop(&m);
	m.body = RS_BODY_STREAM;
	assert_int_equal(rs_h1_encode_request_head(&o.q, &o.cc, &m), 0);
	want_out(&o, "PUT /x HTTP/1.1\r\n"
		     "Host: h\r\n"
		     "transfer-encoding: chunked\r\n"
		     "\r\n");
	out_free(&o);
	rs_msg_free(&m);
}

static void test_request_head_no_fields(void **state)
{
	struct rs_msg m;
	struct out o;

	rs_msg_init(&m);
	out_init(&o);
	set_request_line(&m, "OPTIONS", "*");
	assert_int_equal(rs_h1_encode_request_head(&o.q, &o.cc, &m), 0);
	want_out(&o, "OPTIONS * HTTP/1.1\r\n\r\n");
	out_free(&o);
	rs_msg_free(&m);
}

static void test_request_head_large(void **state)
{
	/* A head larger than a chunk comes out whole and in order. */
	struct rs_msg m;
	struct out o;
	char *v = malloc(RS_CHUNK_SIZE + 1), *got;

	assert_non_null(v);
	memset(v, 'c', RS_CHUNK_SIZE);
	v[RS_CHUNK_SIZE] = '\0';
	rs_msg_init(&m);
	out_init(&o);
	set_request_line(&m, "GET", "/");
	add(&m, "Cookie", v);
	add(&m, "Host", "h");
	assert_int_equal(rs_h1_encode_request_head(&o.q, &o.cc, &m), 0);
	got = out_str(&o);
	assert_int_equal(strlen(got), 16 + 8 + RS_CHUNK_SIZE + 2 + 9 + 2);
	assert_memory_equal(got, "GET / HTTP/1.1\r\nCookie: ccc", 27);
	assert_string_equal(got + strlen(got) - 11, "Host: h\r\n\r\n");
	free(got);
	free(v);
	out_free(&o);
	rs_msg_free(&m);
}

static void test_response_head(void **state)
{
	struct rs_msg m;
	struct out o;

	rs_msg_init(&m);
	out_init(&o);
	m.status = 200;
	add(&m, "Content-Type", "application/json");
	add(&m, "Content-Length", "2");
	assert_int_equal(rs_h1_encode_response_head(&o.q, &o.cc, &m, false, false), 0);
	want_out(&o, "HTTP/1.1 200 OK\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: 2\r\n"
		     "\r\n");
	out_free(&o);
	rs_msg_free(&m);
}

static void test_response_head_chunked_close(void **state)
{
	struct rs_msg m;
	struct out o;

	rs_msg_init(&m);
	out_init(&o);
	m.status = 503;
	add(&m, "Server", "envoy");
	add(&m, "Connection", "close");
	add(&m, "Transfer-Encoding", "chunked");
	rs_msg_strip_hop_by_hop(&m);
	assert_int_equal(rs_h1_encode_response_head(&o.q, &o.cc, &m, true, true), 0);
	want_out(&o, "HTTP/1.1 503 Service Unavailable\r\n"
		     "Server: envoy\r\n"
		     "transfer-encoding: chunked\r\n"
		     "connection: close\r\n"
		     "\r\n");
	out_free(&o);

	out_init(&o);
	m.status = 204;
	assert_int_equal(rs_h1_encode_response_head(&o.q, &o.cc, &m, false, true), 0);
	want_out(&o, "HTTP/1.1 204 No Content\r\n"
		     "Server: envoy\r\n"
		     "connection: close\r\n"
		     "\r\n");
	out_free(&o);

	out_init(&o);
	m.status = 299;
	assert_int_equal(rs_h1_encode_response_head(&o.q, &o.cc, &m, true, false), 0);
	want_out(&o, "HTTP/1.1 299 Unknown\r\n"
		     "Server: envoy\r\n"
		     "transfer-encoding: chunked\r\n"
		     "\r\n");
	out_free(&o);
	rs_msg_free(&m);
}

static void test_chunks(void **state)
{
	struct out o;
	char *big = malloc(70000);

	assert_non_null(big);
	memset(big, 'z', 70000);
	out_init(&o);
	assert_int_equal(rs_h1_encode_chunk(&o.q, &o.cc, "hello", 5), 0);
	assert_int_equal(rs_h1_encode_chunk(&o.q, &o.cc, "0123456789abcdef!", 17), 0);
	want_out(&o, "5\r\nhello\r\n"
		     "11\r\n0123456789abcdef!\r\n");
	out_free(&o);

	/* A zero-length chunk would end the body early: it writes nothing. */
	out_init(&o);
	assert_int_equal(rs_h1_encode_chunk(&o.q, &o.cc, "", 0), 0);
	assert_int_equal(rs_h1_encode_chunk(&o.q, &o.cc, NULL, 0), 0);
	assert_int_equal(o.q.bytes, 0);
	assert_int_equal(rs_h1_encode_last_chunk(&o.q, &o.cc), 0);
	want_out(&o, "0\r\n\r\n");
	out_free(&o);

	/* Size in lower-case hex, without leading zeros. */
	out_init(&o);
	assert_int_equal(rs_h1_encode_chunk(&o.q, &o.cc, big, 70000), 0);
	{
		char *got = out_str(&o);

		assert_int_equal(o.q.bytes, 7 + 70000 + 2);
		assert_memory_equal(got, "11170\r\nzzz", 10);
		assert_memory_equal(got + 7 + 70000, "\r\n", 2);
		free(got);
	}
	out_free(&o);
	free(big);
}

static void test_local_reply(void **state)
{
	struct out o;

	out_init(&o);
	assert_int_equal(rs_h1_encode_local_reply(&o.q, &o.cc, 404, "no route to reviews", false,
						  NULL),
			 0);
	/* The body gets a newline, and the length counts it. */
	want_out(&o, "HTTP/1.1 404 Not Found\r\n"
		     "content-length: 20\r\n"
		     "content-type: text/plain\r\n"
		     "server: ringside\r\n"
		     "\r\n"
		     "no route to reviews\n");
	out_free(&o);

	out_init(&o);
	assert_int_equal(rs_h1_encode_local_reply(&o.q, &o.cc, 503, "no healthy upstream", true,
						  "0b9d7c1e-5c2f-4b8e-9a55-1c3f3a3e2d10"),
			 0);
	want_out(&o, "HTTP/1.1 503 Service Unavailable\r\n"
		     "content-length: 20\r\n"
		     "content-type: text/plain\r\n"
		     "server: ringside\r\n"
		     "connection: close\r\n"
		     "x-request-id: 0b9d7c1e-5c2f-4b8e-9a55-1c3f3a3e2d10\r\n"
		     "\r\n"
		     "no healthy upstream\n");
	out_free(&o);

	out_init(&o);
	assert_int_equal(rs_h1_encode_local_reply(&o.q, &o.cc, 408, "", true, NULL), 0);
	want_out(&o, "HTTP/1.1 408 Request Timeout\r\n"
		     "content-length: 1\r\n"
		     "content-type: text/plain\r\n"
		     "server: ringside\r\n"
		     "connection: close\r\n"
		     "\r\n"
		     "\n");
	out_free(&o);
}

static void test_local_reply_long_body(void **state)
{
	/* A body longer than the printf buffer still goes out whole. */
	struct out o;
	char *body = malloc(3002), *got;

	assert_non_null(body);
	memset(body, 'b', 3000);
	body[3000] = '\0';
	out_init(&o);
	assert_int_equal(rs_h1_encode_local_reply(&o.q, &o.cc, 500, body, false, NULL), 0);
	got = out_str(&o);
	assert_non_null(strstr(got, "\r\ncontent-length: 3001\r\n"));
	strcat(body, "\n");
	assert_string_equal(strstr(got, "\r\n\r\n") + 4, body);
	free(got);
	free(body);
	out_free(&o);
}

/* A head that does not fit the tail's room starts a new chunk; one larger
 * than a chunk is still written whole; a send reads both in order. */
static void test_heads_across_chunks(void **state)
{
	struct rs_msg m;
	struct out o;
	char *big = malloc(20001), *want = malloc(40000), *fill = malloc(RS_CHUNK_SIZE - 10);

	assert_non_null(big);
	assert_non_null(want);
	assert_non_null(fill);
	memset(big, 'v', 20000);
	big[20000] = 0;
	memset(fill, 'f', RS_CHUNK_SIZE - 10);
	rs_msg_init(&m);
	out_init(&o);
	m.status = 200;
	add(&m, "a", "b");
	assert_int_equal(rs_outq_append(&o.q, &o.cc, fill, RS_CHUNK_SIZE - 10), 0);
	assert_int_equal(rs_h1_encode_response_head(&o.q, &o.cc, &m, false, false), 0);
	assert_int_equal(o.q.bytes, RS_CHUNK_SIZE - 10 + 25);
	assert_ptr_not_equal(o.q.head, o.q.tail);
	add(&m, "x-big", big);
	assert_int_equal(rs_h1_encode_response_head(&o.q, &o.cc, &m, false, false), 0);
	snprintf(want, 40000, "%.*sHTTP/1.1 200 OK\r\na: b\r\n\r\nHTTP/1.1 200 OK\r\na: b\r\nx-big: %s\r\n\r\n",
		 RS_CHUNK_SIZE - 10, fill, big);
	want_out(&o, want);
	out_free(&o);
	rs_msg_free(&m);
	free(big);
	free(want);
	free(fill);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value_ok),
		cmocka_unit_test(test_request_head),
		cmocka_unit_test(test_request_head_removed_fields_not_written),
		cmocka_unit_test(test_request_head_stream_body_is_chunked),
		cmocka_unit_test(test_request_head_no_fields),
		cmocka_unit_test(test_request_head_large),
		cmocka_unit_test(test_response_head),
		cmocka_unit_test(test_response_head_chunked_close),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_heads_across_chunks),
		cmocka_unit_test(test_local_reply),
		cmocka_unit_test(test_local_reply_long_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
