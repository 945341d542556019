/* Output queues: what a sendmsg would send (rs_outq_iov), what stays queued
 * after a completion acknowledges some bytes, and where the chunks go. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <cmocka.h>

#include "ringside/core.h"

/* The unsent bytes as one string, read the way a send would read them. */
static char *collect(const struct rs_outq *q, size_t *len)
{
	struct iovec iov[64];
	int n = rs_outq_iov(q, iov, 64);
	size_t total = 0;
	char *s;

	assert_true(n >= 0 && n < 64);
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	s = malloc(total + 1);
	assert_non_null(s);
	total = 0;
	for (int i = 0; i < n; i++) {
		memcpy(s + total, iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	s[total] = '\0';
	*len = total;
	return s;
}

static size_t nchunks(const struct rs_outq *q)
{
	size_t n = 0;

	for (const struct rs_chunk *c = q->head; c; c = c->next)
		n++;
	return n;
}

/* A byte pattern that shows any reordering or duplication. */
static char *pattern(size_t n)
{
	char *p = malloc(n);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + (i * 7 + i / 251) % 26);
	return p;
}

static void test_empty(void **state)
{
	struct rs_chunk_cache cc = {.max_free = 4};
	struct rs_outq q = {0};
	struct iovec iov[4];

	assert_int_equal(rs_outq_iov(&q, iov, 4), 0);
	assert_int_equal(rs_outq_append(&q, &cc, "x", 0), 0);
	assert_int_equal(rs_outq_iov(&q, iov, 4), 0);
	assert_int_equal(q.bytes, 0);
	rs_outq_clear(&q, &cc);
	rs_chunk_cache_free(&cc);
}

static void test_append_small(void **state)
{
	struct rs_chunk_cache cc = {.max_free = 4};
	struct rs_outq q = {0};
	struct iovec iov[4];
	size_t len;
	char *s;

	assert_int_equal(rs_outq_append(&q, &cc, "hello ", 6), 0);
	assert_int_equal(rs_outq_append(&q, &cc, "world", 5), 0);
	assert_int_equal(q.bytes, 11);
	/* Small appends share one chunk, so one iovec. */
	assert_int_equal(rs_outq_iov(&q, iov, 4), 1);
	assert_int_equal(iov[0].iov_len, 11);
	assert_memory_equal(iov[0].iov_base, "hello world", 11);
	s = collect(&q, &len);
	assert_string_equal(s, "hello world");
	free(s);
	rs_outq_clear(&q, &cc);
	assert_int_equal(q.bytes, 0);
	assert_null(q.head);
	assert_null(q.tail);
	rs_chunk_cache_free(&cc);
}

static void test_append_across_chunks(void **state)
{
	const size_t n = 2 * RS_CHUNK_SIZE + 100;
	struct rs_chunk_cache cc = {.max_free = 4};
	struct rs_outq q = {0};
	struct iovec iov[8];
	char *p = pattern(n), *s;
	size_t len;

	/* One byte short of a chunk, then a write that straddles the boundary,
	 * then the rest. */
	assert_int_equal(rs_outq_append(&q, &cc, p, RS_CHUNK_SIZE - 1), 0);
	assert_int_equal(nchunks(&q), 1);
	assert_int_equal(rs_outq_append(&q, &cc, p + RS_CHUNK_SIZE - 1, 2), 0);
	assert_int_equal(nchunks(&q), 2);
	assert_int_equal(rs_outq_append(&q, &cc, p + RS_CHUNK_SIZE + 1, n - RS_CHUNK_SIZE - 1),
			 0);
	assert_int_equal(q.bytes, n);
	assert_int_equal(nchunks(&q), 3);

	assert_int_equal(rs_outq_iov(&q, iov, 8), 3);
	assert_int_equal(iov[0].iov_len, RS_CHUNK_SIZE);
	assert_int_equal(iov[1].iov_len, RS_CHUNK_SIZE);
	assert_int_equal(iov[2].iov_len, 100);
	/* max bounds the ranges returned; they are the first ones. */
	assert_int_equal(rs_outq_iov(&q, iov, 2), 2);
	assert_ptr_equal(iov[0].iov_base, q.head->data);
	assert_int_equal(rs_outq_iov(&q, iov, 0), 0);

	s = collect(&q, &len);
	assert_int_equal(len, n);
	assert_memory_equal(s, p, n);
	free(s);
	free(p);
	rs_outq_clear(&q, &cc);
	rs_chunk_cache_free(&cc);
}

static void test_append_exact_chunk(void **state)
{
	struct rs_chunk_cache cc = {.max_free = 4};
	struct rs_outq q = {0};
	char *p = pattern(RS_CHUNK_SIZE);

	/* Filling a chunk exactly does not open an empty one. */
	assert_int_equal(rs_outq_append(&q, &cc, p, RS_CHUNK_SIZE), 0);
	assert_int_equal(nchunks(&q), 1);
	assert_int_equal(rs_outq_append(&q, &cc, "z", 1), 0);
	assert_int_equal(nchunks(&q), 2);
	assert_int_equal(q.bytes, RS_CHUNK_SIZE + 1);
	free(p);
	rs_outq_clear(&q, &cc);
	rs_chunk_cache_free(&cc);
}

static void test_consume_partial(void **state)
{
	const size_t n = RS_CHUNK_SIZE + 50;
	struct rs_chunk_cache cc = {.max_free = 4};
	struct rs_outq q = {0};
	struct iovec iov[4];
	char *p = pattern(n), *s;
	size_t len;

	assert_int_equal(rs_outq_append(&q, &cc, p, n), 0);
	/* A short send: part of the first chunk. */
	rs_outq_consume(&q, &cc, 10);
	assert_int_equal(q.bytes, n - 10);
	assert_int_equal(rs_outq_iov(&q, iov, 4), 2);
	assert_int_equal(iov[0].iov_len, RS_CHUNK_SIZE - 10);
	assert_memory_equal(iov[0].iov_base, p + 10, 20);
	s = collect(&q, &len);
	assert_int_equal(len, n - 10);
	assert_memory_equal(s, p + 10, n - 10);
	free(s);

	/* Across the boundary: the first chunk is finished and cached. */
	rs_outq_consume(&q, &cc, RS_CHUNK_SIZE);
	assert_int_equal(q.bytes, 40);
	assert_int_equal(nchunks(&q), 1);
	assert_int_equal(cc.nfree, 1);
	s = collect(&q, &len);
	assert_int_equal(len, 40);
	assert_memory_equal(s, p + n - 40, 40);
	free(s);

	/* Appending after a partial consume keeps the order. */
	assert_int_equal(rs_outq_append(&q, &cc, "END", 3), 0);
	assert_int_equal(q.bytes, 43);
	s = collect(&q, &len);
	assert_int_equal(len, 43);
	assert_memory_equal(s, p + n - 40, 40);
	assert_memory_equal(s + 40, "END", 3);
	free(s);
	free(p);
	rs_outq_clear(&q, &cc);
	rs_chunk_cache_free(&cc);
}

static void test_consume_all(void **state)
{
	const size_t n = 3 * RS_CHUNK_SIZE + 7;
	struct rs_chunk_cache cc = {.max_free = 8};
	struct rs_outq q = {0};
	struct iovec iov[4];
	char *p = pattern(n), *s;
	size_t len;

	assert_int_equal(rs_outq_append(&q, &cc, p, n), 0);
	rs_outq_consume(&q, &cc, n);
	assert_int_equal(q.bytes, 0);
	assert_int_equal(rs_outq_iov(&q, iov, 4), 0);
	/* The three full chunks are cached; the partly filled tail may stay. */
	assert_int_equal(cc.nfree, 3);
	assert_true(nchunks(&q) <= 1);

	/* The queue works again after being emptied, reusing cached chunks. */
	assert_int_equal(rs_outq_append(&q, &cc, "again", 5), 0);
	s = collect(&q, &len);
	assert_string_equal(s, "again");
	free(s);
	rs_outq_consume(&q, &cc, 5);
	assert_int_equal(rs_outq_iov(&q, iov, 4), 0);

	assert_int_equal(rs_outq_append(&q, &cc, p, n), 0);
	assert_int_equal(q.bytes, n);
	s = collect(&q, &len);
	assert_int_equal(len, n);
	assert_memory_equal(s, p, n);
	free(s);
	assert_true(cc.nfree < 3); /* the new chunks came from the cache */
	free(p);
	rs_outq_clear(&q, &cc);
	rs_chunk_cache_free(&cc);
	assert_int_equal(cc.nfree, 0);
	assert_null(cc.free);
}

static void test_consume_full_exact_chunks(void **state)
{
	struct rs_chunk_cache cc = {.max_free = 8};
	struct rs_outq q = {0};
	char *p = pattern(2 * RS_CHUNK_SIZE);

	assert_int_equal(rs_outq_append(&q, &cc, p, 2 * RS_CHUNK_SIZE), 0);
	rs_outq_consume(&q, &cc, RS_CHUNK_SIZE);
	assert_int_equal(q.bytes, RS_CHUNK_SIZE);
	assert_int_equal(nchunks(&q), 1);
	/* The full tail cannot take more bytes, so it goes back too. */
	rs_outq_consume(&q, &cc, RS_CHUNK_SIZE);
	assert_int_equal(q.bytes, 0);
	assert_null(q.head);
	assert_null(q.tail);
	assert_int_equal(cc.nfree, 2);
	assert_int_equal(rs_outq_append(&q, &cc, "x", 1), 0);
	assert_int_equal(cc.nfree, 1);
	assert_int_equal(q.bytes, 1);
	free(p);
	rs_outq_clear(&q, &cc);
	rs_chunk_cache_free(&cc);
}

static void test_cache_bounded(void **state)
{
	const size_t n = 5 * RS_CHUNK_SIZE;
	struct rs_chunk_cache cc = {.max_free = 2};
	struct rs_outq q = {0};
	char *p = pattern(n);

	assert_int_equal(rs_outq_append(&q, &cc, p, n), 0);
	assert_int_equal(nchunks(&q), 5);
	rs_outq_consume(&q, &cc, n);
	/* Five chunks freed, two kept; ASan's leak check sees the other three
	 * were returned to malloc. */
	assert_int_equal(cc.nfree, 2);
	assert_null(q.head);

	assert_int_equal(rs_outq_append(&q, &cc, p, n), 0);
	assert_int_equal(cc.nfree, 0);
	rs_outq_clear(&q, &cc);
	assert_int_equal(cc.nfree, 2);

	/* max_free 0 caches nothing. */
	rs_chunk_cache_free(&cc);
	cc.max_free = 0;
	assert_int_equal(rs_outq_append(&q, &cc, p, n), 0);
	rs_outq_clear(&q, &cc);
	assert_int_equal(cc.nfree, 0);
	assert_null(cc.free);
	free(p);
}

static void test_interleaved_append_consume(void **state)
{
	/* A stream of appends and acknowledgements of odd sizes: the queued
	 * bytes are always the not-yet-consumed suffix of what was appended. */
	const size_t total = 4 * RS_CHUNK_SIZE + 333;
	struct rs_chunk_cache cc = {.max_free = 3};
	struct rs_outq q = {0};
	char *p = pattern(total), *s;
	size_t in = 0, out = 0, len;

	srand(7);
	while (out < total) {
		size_t a = (size_t)(rand() % 9000);
		size_t c;

		if (a > total - in)
			a = total - in;
		assert_int_equal(rs_outq_append(&q, &cc, p + in, a), 0);
		in += a;
		c = in - out ? (size_t)rand() % (in - out + 1) : 0;
		rs_outq_consume(&q, &cc, c);
		out += c;
		assert_int_equal(q.bytes, in - out);
		s = collect(&q, &len);
		assert_int_equal(len, in - out);
		assert_memory_equal(s, p + out, len);
		free(s);
		assert_true(cc.nfree <= 3);
		if (in == total && out < total) {
			rs_outq_consume(&q, &cc, in - out);
			out = in;
		}
	}
	assert_int_equal(q.bytes, 0);
	free(p);
	rs_outq_clear(&q, &cc);
	rs_chunk_cache_free(&cc);
}

static void test_printf(void **state)
{
	struct rs_chunk_cache cc = {.max_free = 2};
	struct rs_outq q = {0};
	char big[600];
	size_t len;
	char *s;

	assert_int_equal(rs_outq_printf(&q, &cc, "HTTP/1.1 %d %s\r\n", 200, "OK"), 0);
	assert_int_equal(rs_outq_printf(&q, &cc, "%zx\r\n", (size_t)255), 0);
	assert_int_equal(q.bytes, 17 + 4);
	s = collect(&q, &len);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nff\r\n");
	free(s);

	/* 511 bytes fit the formatting buffer; 512 do not, and queue nothing. */
	memset(big, 'b', sizeof big);
	big[511] = '\0';
	assert_int_equal(rs_outq_printf(&q, &cc, "%s", big), 0);
	assert_int_equal(q.bytes, 21 + 511);
	big[511] = 'b';
	big[512] = '\0';
	assert_int_equal(rs_outq_printf(&q, &cc, "%s", big), -EINVAL);
	assert_int_equal(q.bytes, 21 + 511);

	/* Printf output straddles a chunk boundary like any append. */
	rs_outq_clear(&q, &cc);
	{
		char *p = pattern(RS_CHUNK_SIZE - 3);

		assert_int_equal(rs_outq_append(&q, &cc, p, RS_CHUNK_SIZE - 3), 0);
		assert_int_equal(rs_outq_printf(&q, &cc, "<%d>", 12345), 0);
		s = collect(&q, &len);
		assert_int_equal(len, RS_CHUNK_SIZE + 4);
		assert_memory_equal(s + RS_CHUNK_SIZE - 3, "<12345>", 7);
		free(s);
		free(p);
	}
	rs_outq_clear(&q, &cc);
	rs_chunk_cache_free(&cc);
}

/* HTTP/2 DATA: n bytes from a stream's queue (spanning chunks) to the end
 * of the connection's, in order, the rest left; more than there is fails. */
static void test_move(void **state)
{
	struct rs_chunk_cache cache = {.max_free = 8};
	struct rs_outq src = {0}, dst = {0};
	size_t total = 3 * RS_CHUNK_SIZE + 100, len;
	char *want = malloc(total), *got;

	(void)state;
	assert_non_null(want);
	for (size_t i = 0; i < total; i++)
		want[i] = (char)('a' + i % 26);
	assert_int_equal(rs_outq_append(&src, &cache, want, total), 0);
	assert_int_equal(rs_outq_append(&dst, &cache, "hd", 2), 0);
	assert_int_equal(rs_outq_move(&dst, &src, &cache, RS_CHUNK_SIZE + 7), 0);
	assert_int_equal(dst.bytes, RS_CHUNK_SIZE + 9);
	assert_int_equal(src.bytes, total - RS_CHUNK_SIZE - 7);
	got = collect(&dst, &len);
	assert_int_equal(len, RS_CHUNK_SIZE + 9);
	assert_memory_equal(got, "hd", 2);
	assert_memory_equal(got + 2, want, RS_CHUNK_SIZE + 7);
	free(got);
	got = collect(&src, &len);
	assert_memory_equal(got, want + RS_CHUNK_SIZE + 7, len);
	free(got);
	assert_int_equal(rs_outq_move(&dst, &src, &cache, src.bytes + 1), -EINVAL);
	assert_int_equal(rs_outq_move(&dst, &src, &cache, src.bytes), 0);
	assert_int_equal(src.bytes, 0);
	assert_int_equal(dst.bytes, total + 2);
	rs_outq_clear(&src, &cache);
	rs_outq_clear(&dst, &cache);
	rs_chunk_cache_free(&cache);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_append_small),
		cmocka_unit_test(test_append_across_chunks),
		cmocka_unit_test(test_append_exact_chunk),
		cmocka_unit_test(test_consume_partial),
		cmocka_unit_test(test_consume_all),
		cmocka_unit_test(test_consume_full_exact_chunks),
		cmocka_unit_test(test_cache_bounded),
		cmocka_unit_test(test_interleaved_append_consume),
		cmocka_unit_test(test_move),
		cmocka_unit_test(test_printf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
