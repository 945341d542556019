/* Output queues: bytes waiting for a send, in fixed chunks recycled through a
 * per-shard cache. Appending never moves bytes that a send in flight reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "ringside/core.h"

static struct rs_chunk *chunk_get(struct rs_chunk_cache *cache)
{
	struct rs_chunk *c = cache->free;

	if (c) {
		cache->free = c->next;
		cache->nfree--;
	} else {
		c = malloc(sizeof *c);
		if (!c)
			return NULL;
	}
	c->next = NULL;
	c->off = c->len = 0;
	return c;
}

static void chunk_put(struct rs_chunk_cache *cache, struct rs_chunk *c)
{
	if (cache->nfree >= cache->max_free) {
		free(c);
		return;
	}
	c->next = cache->free;
	cache->free = c;
	cache->nfree++;
}

int rs_outq_append(struct rs_outq *q, struct rs_chunk_cache *cache, const void *p, size_t n)
{
	const char *src = p;

	while (n) {
		struct rs_chunk *t = q->tail;
		size_t room;

		if (!t || t->len == RS_CHUNK_SIZE) {
			struct rs_chunk *c = chunk_get(cache);

			if (!c)
				return -ENOMEM;
			if (t)
				t->next = c;
			else
				q->head = c;
			q->tail = t = c;
		}
		room = RS_CHUNK_SIZE - t->len;
		if (room > n)
			room = n;
		memcpy(t->data + t->len, src, room);
		t->len += (uint32_t)room;
		q->bytes += room;
		src += room;
		n -= room;
	}
	return 0;
}

char *rs_outq_reserve(struct rs_outq *q, struct rs_chunk_cache *cache, size_t n)
{
	struct rs_chunk *t = q->tail;
	char *p;

	if (n > RS_CHUNK_SIZE)
		return NULL;
	if (!t || RS_CHUNK_SIZE - t->len < n) {
		struct rs_chunk *c = chunk_get(cache);

		if (!c)
			return NULL;
		if (t)
			t->next = c;
		else
			q->head = c;
		q->tail = t = c;
	}
	p = t->data + t->len;
	t->len += (uint32_t)n;
	q->bytes += n;
	return p;
}

int rs_outq_printf(struct rs_outq *q, struct rs_chunk_cache *cache, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf)
		return -EINVAL;
	return rs_outq_append(q, cache, buf, (size_t)n);
}

int rs_outq_iov(const struct rs_outq *q, struct iovec *iov, int max)
{
	int n = 0;

	for (struct rs_chunk *c = q->head; c && n < max; c = c->next) {
		if (c->len == c->off)
			continue;
		iov[n].iov_base = c->data + c->off;
		iov[n].iov_len = c->len - c->off;
		n++;
	}
	return n;
}

void rs_outq_consume(struct rs_outq *q, struct rs_chunk_cache *cache, size_t n)
{
	q->bytes -= n;
	while (n && q->head) {
		struct rs_chunk *c = q->head;
		size_t avail = c->len - c->off;

		if (n < avail) {
			c->off += (uint32_t)n;
			return;
		}
		n -= avail;
		c->off = c->len;
		/* Keep a full or sole tail chunk only if it can still take bytes. */
		if (c == q->tail && c->len < RS_CHUNK_SIZE) {
			c->off = c->len = 0;
			return;
		}
		q->head = c->next;
		if (!q->head)
			q->tail = NULL;
		chunk_put(cache, c);
	}
}

int rs_outq_move(struct rs_outq *dst, struct rs_outq *src, struct rs_chunk_cache *cache, size_t n)
{
	if (n > src->bytes)
		return -EINVAL;
	while (n) {
		struct rs_chunk *c = src->head;
		size_t k = c->len - c->off < n ? c->len - c->off : n;

		if (rs_outq_append(dst, cache, c->data + c->off, k) < 0)
			return -ENOMEM;
		rs_outq_consume(src, cache, k);
		n -= k;
	}
	return 0;
}

void rs_outq_clear(struct rs_outq *q, struct rs_chunk_cache *cache)
{
	while (q->head) {
		struct rs_chunk *c = q->head;

		q->head = c->next;
		chunk_put(cache, c);
	}
	q->tail = NULL;
	q->bytes = 0;
}

void rs_chunk_cache_free(struct rs_chunk_cache *cache)
{
	while (cache->free) {
		struct rs_chunk *c = cache->free;

		cache->free = c->next;
		free(c);
	}
	cache->nfree = 0;
}
