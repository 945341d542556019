/* Types of the shard runtime: io_uring operations, timers, output chunks. */
#ifndef RINGSIDE_CORE_T_H
#define RINGSIDE_CORE_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a submission does; packed into the low byte of user_data so a
 * completion is dispatched through the owner's table without a raw pointer. */
enum rs_op {
	RS_OP_NONE = 0,
	RS_OP_ACCEPT,       /* multishot accept on a listener */
	RS_OP_RECV,         /* multishot recv into the shard's provided buffer ring */
	RS_OP_SEND,         /* sendmsg of an output queue */
	RS_OP_CONNECT,      /* outbound connect, linked to RS_OP_LINK_TIMEOUT */
	RS_OP_LINK_TIMEOUT, /* the connect's deadline */
	RS_OP_CANCEL,       /* cancellation of the owner's pending operations */
	RS_OP_WAKE,         /* read of the shard's eventfd: the main thread calls */
	RS_OP__COUNT,
};

/* A bump allocator, freed whole (core/arena.c). Zeroed; empty when zeroed. */
struct rs_arena_chunk;
struct rs_arena {
	struct rs_arena_chunk *head; /* owns: the chunks, the one in use first */
};

struct io_uring_cqe;
struct rs_io;

typedef void (*rs_cqe_fn)(struct rs_io *io, const struct io_uring_cqe *cqe);

/* One completion handler per operation; NULL entries are never submitted. */
struct rs_io_ops {
	rs_cqe_fn on[RS_OP__COUNT];
};

/* The part of every object that owns io_uring operations. A completion names
 * (slot, generation); a slot whose generation moved on is stale and ignored, so
 * user_data never dereferences freed memory. */
struct rs_io {
	const struct rs_io_ops *ops;
	uint32_t slot;
	uint32_t gen;
	uint32_t inflight; /* submissions whose final completion has not arrived */
};

/* Work run once per loop turn, just before the ring is entered: what a
 * batch of completions queued for one connection leaves as one send. */
struct rs_defer {
	struct rs_defer *next, *prev;
	void (*fn)(struct rs_defer *d);
	bool queued;
};

/* A timer on the shard's heap. at_ns is CLOCK_MONOTONIC. */
struct rs_timer {
	uint64_t at_ns;
	uint32_t heap_idx; /* 1-based position in the heap; 0 when not armed */
	void (*fn)(struct rs_timer *t);
};

/* Output bytes are queued in fixed chunks so that appending never moves data a
 * send in flight points at. */
#define RS_CHUNK_SIZE 16320

struct rs_chunk {
	struct rs_chunk *next;
	uint32_t off; /* first byte not yet sent */
	uint32_t len; /* bytes filled */
	char data[RS_CHUNK_SIZE];
};

struct rs_outq {
	struct rs_chunk *head; /* owns the list */
	struct rs_chunk *tail;
	size_t bytes; /* queued and not yet acknowledged by a send completion */
};

enum rs_log_level {
	RS_LOG_DEBUG,
	RS_LOG_INFO,
	RS_LOG_WARN,
	RS_LOG_ERROR,
};

#endif
