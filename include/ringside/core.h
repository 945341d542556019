/* The shard runtime: rings, completion dispatch, timers, buffers, logging. */
#ifndef RINGSIDE_CORE_H
#define RINGSIDE_CORE_H

#include <liburing.h>
#include <pthread.h>
#include <stdarg.h>

#include "ringside/core-t.h"

struct rs_shard;

/* --- logging (log.c) --- */
extern enum rs_log_level rs_log_min; /* frozen after start-up */
int rs_log_parse_level(const char *s, enum rs_log_level *out);
void rs_log(enum rs_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define rs_debug(...)                                                                              \
	do {                                                                                       \
		if (rs_log_min <= RS_LOG_DEBUG)                                                    \
			rs_log(RS_LOG_DEBUG, __VA_ARGS__);                                         \
	} while (0)
#define rs_info(...) rs_log(RS_LOG_INFO, __VA_ARGS__)
#define rs_warn(...) rs_log(RS_LOG_WARN, __VA_ARGS__)
#define rs_error(...) rs_log(RS_LOG_ERROR, __VA_ARGS__)
/* Names the calling thread in log lines ("main", "shard 0"). */
void rs_log_set_thread(const char *name);

/* --- random numbers: xorshift128+, per shard; for ids, weights and load
 * balancing, which need spread, not secrecy --- */
static inline uint64_t rs_rng_next(uint64_t s[2])
{
	uint64_t a = s[0], b = s[1];

	s[0] = b;
	a ^= a << 23;
	s[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
	return s[1] + b;
}

/* A uniform number below n from a uniform 64-bit x (multiply-shift: no
 * division, no modulo bias worth the name for n far below 2^64). */
static inline uint64_t rs_uniform(uint64_t x, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)x * n) >> 64);
}

/* --- arena --- */
/* n zeroed bytes, 16-byte aligned, after the previous allocation when it
 * fits in the same chunk; NULL when out of memory. */
void *rs_arena_alloc(struct rs_arena *a, size_t n);
/* A copy of the n bytes at s with a terminating NUL, or NULL. */
char *rs_arena_strndup(struct rs_arena *a, const char *s, size_t n);
/* Frees every allocation of a at once; a is empty again. */
void rs_arena_free(struct rs_arena *a);

/* --- time --- */
uint64_t rs_now_ns(void);
/* Parses "250ms", "10s", "5m", "1h", "1.5s", "100us"; 0 and a plain "0" mean
 * "no limit". Returns 0 or -EINVAL. */
int rs_duration_parse(const char *s, uint64_t *ns);

/* --- io_uring set-up and probe (ring.c) --- */
/* Checks that the kernel offers every io_uring feature ringside uses. On
 * failure writes a message that names the feature, the kernel version and
 * what to do into err, and returns a negative errno. */
int rs_ring_probe(char *err, size_t errlen);
int rs_ring_init(struct io_uring *ring, unsigned entries);

/* user_data layout: generation (32) | slot (24) | op (8). */
static inline uint64_t rs_udata(const struct rs_io *io, enum rs_op op)
{
	return ((uint64_t)io->gen << 32) | ((uint64_t)io->slot << 8) | (uint64_t)op;
}

/* --- output queue (outq.c) --- */
struct rs_chunk_cache {
	struct rs_chunk *free; /* owns */
	unsigned nfree;
	unsigned max_free;
};
int rs_outq_append(struct rs_outq *q, struct rs_chunk_cache *cache, const void *p, size_t n);
/* n contiguous bytes at the end of the queue, counted as queued: the caller
 * fills them before the next send. NULL when n exceeds a chunk or no chunk
 * can be had. Leaves the tail chunk's room unused when it is too small. */
char *rs_outq_reserve(struct rs_outq *q, struct rs_chunk_cache *cache, size_t n);
int rs_outq_printf(struct rs_outq *q, struct rs_chunk_cache *cache, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Fills iov with up to max unsent ranges; returns how many. */
int rs_outq_iov(const struct rs_outq *q, struct iovec *iov, int max);
/* Drops n bytes acknowledged by a send completion. */
void rs_outq_consume(struct rs_outq *q, struct rs_chunk_cache *cache, size_t n);
/* Moves the first n bytes of src to the end of dst (HTTP/2 DATA from a
 * stream's queue to its connection's). 0, -EINVAL (src holds fewer), or
 * -ENOMEM (what was moved stays moved). */
int rs_outq_move(struct rs_outq *dst, struct rs_outq *src, struct rs_chunk_cache *cache, size_t n);
void rs_outq_clear(struct rs_outq *q, struct rs_chunk_cache *cache);
void rs_chunk_cache_free(struct rs_chunk_cache *cache);

/* --- timers (timer.c): a binary min-heap per shard --- */
struct rs_timer_heap {
	struct rs_timer **v; /* borrowed timers; the array is owned */
	uint32_t n;
	uint32_t cap;
};
int rs_timer_arm(struct rs_timer_heap *h, struct rs_timer *t, uint64_t at_ns);
void rs_timer_cancel(struct rs_timer_heap *h, struct rs_timer *t);
/* Runs every timer due at now; returns the next deadline or UINT64_MAX. */
uint64_t rs_timer_run(struct rs_timer_heap *h, uint64_t now);
void rs_timer_heap_free(struct rs_timer_heap *h);
static inline bool rs_timer_armed(const struct rs_timer *t)
{
	return t->heap_idx != 0;
}


/* --- the shard event loop (loop.c) --- */

/* The per-shard provided buffer ring that multishot receives fill. */
struct rs_bufring {
	struct io_uring_buf_ring *br; /* owns (mmap'd) */
	char *base;                   /* owns: count * size bytes */
	uint32_t count;               /* power of two */
	uint32_t size;
	uint16_t bgid;
	uint16_t pending; /* recycled buffers not yet made visible to the kernel */
};

struct rs_loop {
	struct io_uring ring;
	unsigned id;
	struct rs_io **slots; /* owns the array; the objects are borrowed */
	uint32_t *gens;
	uint32_t *free_slots;
	uint32_t nslots;
	uint32_t nfree;
	uint32_t cap;
	struct rs_bufring bufs;
	struct rs_timer_heap timers;
	struct rs_chunk_cache chunks;
	uint64_t now; /* CLOCK_MONOTONIC ns, refreshed each loop turn */
	uint64_t spin_ns; /* busy-poll this long before sleeping; 0: never */
	bool stop;
	struct rs_defer *deferred; /* borrowed: run before the next enter */
	/* Called once per batch of completions (adopt configuration, drain). */
	void (*after_batch)(struct rs_loop *l, void *arg);
	void *arg;
};

#define RS_BUFRING_GROUP 0

int rs_loop_init(struct rs_loop *l, unsigned id, unsigned entries, unsigned nbufs,
		 unsigned bufsize);
void rs_loop_fini(struct rs_loop *l);
/* Runs d->fn once, before the loop next enters the ring (queuing twice is
 * once); undefer takes it back (its owner is going away). */
void rs_loop_defer(struct rs_loop *l, struct rs_defer *d);
void rs_loop_undefer(struct rs_loop *l, struct rs_defer *d);
/* Gives io a slot so its submissions can be named in user_data. */
int rs_loop_register(struct rs_loop *l, struct rs_io *io);
/* Retires io's slot: later completions for it are stale. */
void rs_loop_unregister(struct rs_loop *l, struct rs_io *io);
/* A submission entry for io's op; flushes the ring when full. Never NULL. */
struct io_uring_sqe *rs_loop_sqe(struct rs_loop *l, struct rs_io *io, enum rs_op op);
void rs_loop_run(struct rs_loop *l);

static inline const char *rs_loop_buf(const struct rs_loop *l, uint16_t bid)
{
	return l->bufs.base + (size_t)bid * l->bufs.size;
}
/* Hands a provided buffer back to the kernel (made visible once per batch). */
void rs_loop_buf_recycle(struct rs_loop *l, uint16_t bid);

/* Starts fn(arg) on a new thread pinned to cpu (-1: not pinned). */
int rs_thread_start(pthread_t *t, int cpu, void *(*fn)(void *), void *arg);

#endif
