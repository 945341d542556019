/* A bump allocator: memory handed out in order from large chunks and freed
 * all at once. What is allocated together sits together, so a structure
 * built in the order it is read (a host's route tables, then their keys)
 * is read from a few neighbouring cache lines rather than from wherever
 * malloc put each piece. Main thread only, like what it builds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/core.h"

#define CHUNK (64 * 1024)

struct rs_arena_chunk {
	struct rs_arena_chunk *next;
	size_t used, cap;
	_Alignas(16) char data[];
};

void *rs_arena_alloc(struct rs_arena *a, size_t n)
{
	struct rs_arena_chunk *c = a->head;
	size_t at = c ? (c->used + 15) & ~(size_t)15 : 0;

	if (!c || at + n > c->cap) {
		/* A request larger than a quarter chunk gets a chunk of its own,
		 * behind the current one, which stays in use. */
		size_t cap = n > CHUNK / 4 ? n : CHUNK;
		struct rs_arena_chunk *nc = calloc(1, sizeof *nc + cap);

		if (!nc)
			return NULL;
		nc->cap = cap;
		if (c && cap != CHUNK) {
			nc->next = c->next;
			c->next = nc;
			nc->used = n;
			return nc->data;
		}
		nc->next = c;
		a->head = c = nc;
		at = 0;
	}
	c->used = at + n;
	return c->data + at;
}

char *rs_arena_strndup(struct rs_arena *a, const char *s, size_t n)
{
	char *p = rs_arena_alloc(a, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void rs_arena_free(struct rs_arena *a)
{
	while (a->head) {
		struct rs_arena_chunk *next = a->head->next;

		free(a->head);
		a->head = next;
	}
}
