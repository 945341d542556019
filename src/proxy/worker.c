/* A shard: one pinned thread, one ring, one listener, its own connections,
 * pools, timers and statistics. Nothing here is written by another thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "internal.h"
#include "ringside/tls-session.h"

#define SWEEP_NS 1000000000ull

static void arm_wake(struct rs_worker *w)
{
	struct io_uring_sqe *sqe = rs_loop_sqe(&w->loop, &w->wake, RS_OP_WAKE);

	io_uring_prep_read(sqe, w->wake_fd, &w->wake_val, sizeof w->wake_val, 0);
}

static void start_drain(struct rs_worker *w)
{
	if (w->draining)
		return;
	w->draining = true;
	rs_info("draining: %s",
		w->ds_list ? "waiting for requests in flight" : "no connections open");
	rs_listener_close(&w->lsn);
	if (w->lsn_in.loop)
		rs_listener_close(&w->lsn_in);
	for (struct rs_ds *ds = w->ds_list, *next; ds; ds = next) {
		next = ds->next;
		rs_proxy__ds_drain(ds);
	}
	rs_proxy__us_close_idle(w);
	if (w->opts->drain_timeout_ns)
		rs_timer_arm(&w->loop.timers, &w->drain_deadline,
			     w->loop.now + w->opts->drain_timeout_ns);
}

static void on_wake(struct rs_io *io, const struct io_uring_cqe *cqe)
{
	struct rs_worker *w = (struct rs_worker *)((char *)io - offsetof(struct rs_worker, wake));

	if (atomic_load_explicit(&w->shared->drain, memory_order_acquire))
		start_drain(w);
	else
		arm_wake(w);
}

static const struct rs_io_ops wake_ops = {.on = {[RS_OP_WAKE] = on_wake}};

static void on_drain_deadline(struct rs_timer *t)
{
	struct rs_worker *w =
		(struct rs_worker *)((char *)t - offsetof(struct rs_worker, drain_deadline));

	rs_warn("drain timeout: closing %s connections still open",
		w->ds_list ? "downstream" : "no");
	for (struct rs_ds *ds = w->ds_list; ds; ds = ds->next)
		rs_proxy__ds_abort(ds);
}

static void on_sweep(struct rs_timer *t)
{
	struct rs_worker *w = (struct rs_worker *)((char *)t - offsetof(struct rs_worker, sweep));

	rs_proxy__us_sweep(w);
	if (!w->draining)
		rs_timer_arm(&w->loop.timers, &w->sweep, w->loop.now + SWEEP_NS);
}

/* The shard's quiescent point, between completion batches: move new
 * requests to the newest snapshot, let go of older ones that no request holds
 * any more, and report the oldest still held. */
static void quiesce(struct rs_worker *w)
{
	const struct rs_snapshot *s = rs_rcu_current(&w->shared->rcu);
	uint64_t oldest;
	bool changed = false;
	unsigned n = 0;

	if (s != w->snap) {
		if (rs_snap_shard(w->snap, w->id)->refs) {
			if (w->nheld == w->cap_held) {
				unsigned cap = w->cap_held ? w->cap_held * 2 : 4;
				const struct rs_snapshot **v = realloc(w->held, cap * sizeof *v);

				/* Out of memory: stay on this snapshot, try again
				 * after the next batch. */
				if (!v)
					return;
				w->held = v;
				w->cap_held = cap;
			}
			w->held[w->nheld++] = w->snap;
		}
		w->snap = s;
		changed = true;
	}
	for (unsigned i = 0; i < w->nheld; i++) {
		if (rs_snap_shard(w->held[i], w->id)->refs)
			w->held[n++] = w->held[i];
		else
			changed = true;
	}
	w->nheld = n;
	if (!changed)
		return;
	oldest = w->snap->generation;
	for (unsigned i = 0; i < w->nheld; i++)
		if (w->held[i]->generation < oldest)
			oldest = w->held[i]->generation;
	rs_rcu_report(&w->shared->rcu.readers[w->id], oldest, w->snap->generation);
}

/* Between batches: pick up a new snapshot; stop once drained. */
static void after_batch(struct rs_loop *l, void *arg)
{
	struct rs_worker *w = arg;

	quiesce(w);
	if (atomic_load_explicit(&w->shared->cb_waiting, memory_order_relaxed))
		rs_proxy__us_shed_idle(w);
	if (w->draining && !w->ds_list && w->lsn.fd < 0 && (!w->lsn_in.loop || w->lsn_in.fd < 0) &&
	    w->loop.nslots - w->loop.nfree <= 1) {
		/* Only the wake read is left registered: every connection, upstream
		 * ones included, has completed its close. */
		l->stop = true;
	}
}

static void on_accept(struct rs_listener *l, int fd)
{
	rs_proxy__ds_accept(l->owner, fd, false);
}

static void on_accept_inbound(struct rs_listener *l, int fd)
{
	rs_proxy__ds_accept(l->owner, fd, true);
}

int rs_worker_init(struct rs_worker *w, unsigned id, int cpu, const struct rs_proxy_opts *o,
		   struct rs_proxy_shared *shared)
{
	char name[16];
	int ret;

	w->id = id;
	w->cpu = cpu;
	w->opts = o;
	w->shared = shared;
	snprintf(name, sizeof name, "shard %u", id);
	rs_log_set_thread(name);
	/* 4096 entries: a batch of accepts, receives and sends for a few
	 * thousand connections fits without a mid-batch flush. */
	ret = rs_loop_init(&w->loop, id, 4096, o->nbufs, o->buf_size);
	if (ret < 0) {
		rs_error("io_uring set-up failed: %s", strerror(-ret));
		return ret;
	}
	w->loop.after_batch = after_batch;
	w->loop.spin_ns = o->busy_poll_ns;
	w->loop.arg = w;
	if (getrandom(w->rng, sizeof w->rng, 0) != sizeof w->rng || (w->rng[0] | w->rng[1]) == 0) {
		w->rng[0] = rs_now_ns() ^ 0x9e3779b97f4a7c15ull;
		w->rng[1] = (uint64_t)id + 1;
	}
	w->snap = rs_rcu_current(&shared->rcu);
	rs_rcu_report(&shared->rcu.readers[id], w->snap->generation, w->snap->generation);
	w->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (w->wake_fd < 0)
		return -errno;
	w->wake.ops = &wake_ops;
	ret = rs_loop_register(&w->loop, &w->wake);
	if (ret < 0)
		return ret;
	arm_wake(w);
	w->lsn.on_accept = on_accept;
	w->lsn.owner = w;
	ret = rs_listener_start(&w->lsn, &w->loop, w->listen_fd);
	if (ret < 0)
		return ret;
	w->listen_fd = -1; /* the listener owns it now */
	if (w->inbound_fd >= 0) {
		w->lsn_in.on_accept = on_accept_inbound;
		w->lsn_in.owner = w;
		ret = rs_listener_start(&w->lsn_in, &w->loop, w->inbound_fd);
		if (ret < 0)
			return ret;
		w->inbound_fd = -1;
	}
	w->sweep.fn = on_sweep;
	w->drain_deadline.fn = on_drain_deadline;
	rs_timer_arm(&w->loop.timers, &w->sweep, w->loop.now + SWEEP_NS);
	return 0;
}

void *rs_worker_main(void *arg)
{
	struct rs_worker *w = arg;

	rs_loop_run(&w->loop);
	rs_timer_cancel(&w->loop.timers, &w->sweep);
	while (w->pools) {
		struct rs_pool *p = w->pools;

		w->pools = p->next;
		rs_tls_resume_free(p->tls_resume);
		free(p);
	}
	/* Every request has ended: this shard reaches no snapshot any more. */
	free(w->held);
	w->held = NULL;
	w->nheld = w->cap_held = 0;
	rs_rcu_report(&w->shared->rcu.readers[w->id], UINT64_MAX, UINT64_MAX);
	rs_loop_fini(&w->loop);
	close(w->wake_fd);
	rs_tls_thread_done();
	rs_info("stopped");
	return NULL;
}

void rs_worker_wake(struct rs_worker *w)
{
	uint64_t one = 1;

	if (w->wake_fd >= 0)
		(void)!write(w->wake_fd, &one, sizeof one);
}
