/* The shard event loop: one ring, one thread, completions reaped in batches
 * and dispatched through each owner's table indexed by operation. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ringside/core.h"

static size_t ring_bytes(unsigned count)
{
	return ((size_t)count * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
}

static int bufring_init(struct rs_loop *l, unsigned count, unsigned size)
{
	struct rs_bufring *b = &l->bufs;
	struct io_uring_buf_reg reg = {0};
	int ret;

	b->count = count;
	b->size = size;
	b->bgid = RS_BUFRING_GROUP;
	b->base = malloc((size_t)count * size);
	if (!b->base)
		return -ENOMEM;
	/* liburing 2.3 (Debian 12) has no io_uring_setup_buf_ring(): map the
	 * ring ourselves, page aligned as IORING_REGISTER_PBUF_RING requires. */
	b->br = mmap(NULL, ring_bytes(count), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
		     -1, 0);
	if (b->br == MAP_FAILED) {
		b->br = NULL;
		ret = -errno;
		goto fail;
	}
	io_uring_buf_ring_init(b->br);
	reg.ring_addr = (unsigned long)b->br;
	reg.ring_entries = count;
	reg.bgid = b->bgid;
	ret = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (ret < 0)
		goto fail;
	for (unsigned i = 0; i < count; i++)
		io_uring_buf_ring_add(b->br, b->base + (size_t)i * size, size, (unsigned short)i,
				      io_uring_buf_ring_mask(count), (int)i);
	io_uring_buf_ring_advance(b->br, (int)count);
	return 0;
fail:
	if (b->br)
		munmap(b->br, ring_bytes(count));
	b->br = NULL;
	free(b->base);
	b->base = NULL;
	return ret;
}

void rs_loop_buf_recycle(struct rs_loop *l, uint16_t bid)
{
	struct rs_bufring *b = &l->bufs;

	io_uring_buf_ring_add(b->br, b->base + (size_t)bid * b->size, b->size, bid,
			      io_uring_buf_ring_mask(b->count), b->pending);
	b->pending++;
}

static void bufring_publish(struct rs_loop *l)
{
	if (l->bufs.pending) {
		io_uring_buf_ring_advance(l->bufs.br, l->bufs.pending);
		l->bufs.pending = 0;
	}
}

int rs_loop_init(struct rs_loop *l, unsigned id, unsigned entries, unsigned nbufs,
		 unsigned bufsize)
{
	int ret;

	memset(l, 0, sizeof *l);
	l->id = id;
	l->chunks.max_free = 256;
	ret = rs_ring_init(&l->ring, entries);
	if (ret < 0)
		return ret;
	ret = bufring_init(l, nbufs, bufsize);
	if (ret < 0) {
		io_uring_queue_exit(&l->ring);
		return ret;
	}
	l->now = rs_now_ns();
	return 0;
}

void rs_loop_fini(struct rs_loop *l)
{
	if (l->bufs.br) {
		io_uring_unregister_buf_ring(&l->ring, l->bufs.bgid);
		munmap(l->bufs.br, ring_bytes(l->bufs.count));
	}
	free(l->bufs.base);
	io_uring_queue_exit(&l->ring);
	free(l->slots);
	free(l->gens);
	free(l->free_slots);
	rs_timer_heap_free(&l->timers);
	rs_chunk_cache_free(&l->chunks);
}

int rs_loop_register(struct rs_loop *l, struct rs_io *io)
{
	uint32_t s;

	if (l->nfree) {
		s = l->free_slots[--l->nfree];
	} else {
		if (l->nslots == l->cap) {
			uint32_t cap = l->cap ? l->cap * 2 : 256;
			struct rs_io **slots;
			uint32_t *gens, *fs;

			if (cap >= (1u << 24))
				return -ENFILE;
			slots = realloc(l->slots, cap * sizeof *slots);
			if (!slots)
				return -ENOMEM;
			l->slots = slots;
			gens = realloc(l->gens, cap * sizeof *gens);
			if (!gens)
				return -ENOMEM;
			l->gens = gens;
			fs = realloc(l->free_slots, cap * sizeof *fs);
			if (!fs)
				return -ENOMEM;
			l->free_slots = fs;
			memset(l->gens + l->cap, 0, (cap - l->cap) * sizeof *gens);
			l->cap = cap;
		}
		s = l->nslots++;
	}
	l->slots[s] = io;
	io->slot = s;
	io->gen = l->gens[s];
	io->inflight = 0;
	return 0;
}

void rs_loop_unregister(struct rs_loop *l, struct rs_io *io)
{
	uint32_t s = io->slot;

	l->slots[s] = NULL;
	l->gens[s]++;
	l->free_slots[l->nfree++] = s;
}

struct io_uring_sqe *rs_loop_sqe(struct rs_loop *l, struct rs_io *io, enum rs_op op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	while (!sqe) {
		/* The SQ is full: hand what we have to the kernel and go on. */
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	io_uring_sqe_set_data64(sqe, rs_udata(io, op));
	io->inflight++;
	return sqe;
}

static void dispatch(struct rs_loop *l, const struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	enum rs_op op = (enum rs_op)(ud & 0xff);
	uint32_t slot = (uint32_t)(ud >> 8) & 0xffffff;
	uint32_t gen = (uint32_t)(ud >> 32);
	struct rs_io *io;

	if (op == RS_OP_NONE || op >= RS_OP__COUNT)
		return;
	io = slot < l->nslots ? l->slots[slot] : NULL;
	if (!io || l->gens[slot] != gen) {
		/* Stale: the owner is gone. A buffer it was given goes back. */
		if (cqe->flags & IORING_CQE_F_BUFFER)
			rs_loop_buf_recycle(l, (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
		return;
	}
	if (!(cqe->flags & IORING_CQE_F_MORE))
		io->inflight--;
	io->ops->on[op](io, cqe);
}

/* Busy-polls for completions for up to spin_ns before sleeping. Waking a
 * sleeping CPU costs tens of microseconds on a VM, often more than the
 * proxying itself; a short spin after each batch catches the next event on
 * a busy connection while this core is still awake. */
static void spin(struct rs_loop *l)
{
	uint64_t until = rs_now_ns() + l->spin_ns;

	do {
		/* Submits what is queued and runs deferred task work, so
		 * completions appear without waiting. */
		io_uring_submit_and_get_events(&l->ring);
		if (io_uring_cq_ready(&l->ring))
			return;
		/* Another task this CPU could run (a second proxy on it, the
		 * peer this shard waits for) goes first. */
		sched_yield();
	} while (rs_now_ns() < until);
}

void rs_loop_defer(struct rs_loop *l, struct rs_defer *d)
{
	if (d->queued)
		return;
	d->queued = true;
	d->prev = NULL;
	d->next = l->deferred;
	if (l->deferred)
		l->deferred->prev = d;
	l->deferred = d;
}

void rs_loop_undefer(struct rs_loop *l, struct rs_defer *d)
{
	if (!d->queued)
		return;
	if (d->prev)
		d->prev->next = d->next;
	else
		l->deferred = d->next;
	if (d->next)
		d->next->prev = d->prev;
	d->queued = false;
}

/* What the batch deferred (sends), each once; a call may defer more. */
static void run_deferred(struct rs_loop *l)
{
	while (l->deferred) {
		struct rs_defer *d = l->deferred;

		rs_loop_undefer(l, d);
		d->fn(d);
	}
}

void rs_loop_run(struct rs_loop *l)
{
	struct io_uring_cqe *cqes[256];

	while (!l->stop) {
		uint64_t next = rs_timer_run(&l->timers, l->now);
		struct __kernel_timespec ts, *tsp = NULL;
		struct io_uring_cqe *cqe;
		unsigned n;
		int ret;

		run_deferred(l);
		bufring_publish(l);
		if (l->stop)
			break;
		if (next != UINT64_MAX) {
			uint64_t d = next > l->now ? next - l->now : 0;

			ts.tv_sec = (long long)(d / 1000000000u);
			ts.tv_nsec = (long long)(d % 1000000000u);
			tsp = &ts;
		}
		if (l->spin_ns)
			spin(l);
		/* One io_uring_enter per turn: submit everything queued during the
		 * last batch and wait for at least one completion or the next timer. */
		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, tsp, NULL);
		l->now = rs_now_ns();
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN) {
			rs_error("io_uring_submit_and_wait_timeout: %s", strerror(-ret));
			break;
		}
		do {
			n = io_uring_peek_batch_cqe(&l->ring, cqes, 256);
			for (unsigned i = 0; i < n; i++)
				dispatch(l, cqes[i]);
			io_uring_cq_advance(&l->ring, n);
		} while (n == 256);
		if (l->after_batch)
			l->after_batch(l, l->arg);
	}
}

int rs_thread_start(pthread_t *t, int cpu, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	int ret;

	pthread_attr_init(&attr);
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		pthread_attr_setaffinity_np(&attr, sizeof set, &set);
	}
	ret = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return -ret;
}
