/* The load generator's loop: one io_uring, N connections, the schedule.
 *
 * Each loop turn reaps completions, hands due requests to connections that
 * can take them (first in, first served, so load spreads over every
 * connection), writes what the codecs queued, and sleeps in the kernel until
 * the next completion or the next due request, whichever is first. */
#include <errno.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"

#define RBUF_SIZE 16384
#define CONNECT_TIMEOUT_NS 5000000000ull
#define RECONNECT_DELAY_NS 10000000ull /* after a failed connect */
#define SCAN_NS 50000000ull            /* how often request timeouts are checked */

enum op { OP_CONNECT, OP_RECV, OP_SEND, OP_IGNORE };

enum phase {
	PH_CONNECT, /* opening every connection before the clock starts */
	PH_RUN,     /* warm-up, then measurement */
	PH_DRAIN,   /* nothing more is sent; waiting for what is outstanding */
};

struct lg_engine {
	struct io_uring ring;
	const struct lg_opts *o;
	const struct lg_codec *codec;
	struct lg_tls *tls;
	struct addrinfo *ai;
	struct lg_conn *conns;
	unsigned n;
	/* connections that can take a request, oldest first */
	unsigned *rq;
	unsigned rq_head, rq_len;
	/* connections with bytes to write */
	unsigned *dirty;
	unsigned ndirty;
	/* due times of refused requests to send again, oldest first; at most
	 * one per request in flight, so n * streams slots */
	uint64_t *retry;
	unsigned retry_head, retry_len, retry_cap;
	struct lg_sched sched;
	enum phase phase;
	uint64_t t0, meas_start, meas_end, drain_end, next_scan;
	uint64_t timeout_ns;
	uint64_t inflight;
	unsigned open_conns;
	int start_error; /* during PH_CONNECT: the first connect error (errno) */
	struct lg_run *run;
	uint8_t *h1req;
	size_t h1len;
	nghttp2_nv *nv;
	size_t nnv;
};

static inline uint64_t ud(unsigned idx, enum op op)
{
	return ((uint64_t)idx << 2) | op;
}

static struct lg_result *result_at(struct lg_engine *e, uint64_t t)
{
	return t < e->meas_start || e->phase == PH_CONNECT ? &e->run->warm : &e->run->meas;
}

static struct io_uring_sqe *sqe_get(struct lg_engine *e)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

	if (!sqe) {
		/* Full: hand the kernel what is queued and take a fresh one. */
		io_uring_submit(&e->ring);
		sqe = io_uring_get_sqe(&e->ring);
	}
	return sqe;
}

int lg_buf_put(struct lg_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *q;

		while (cap < b->len + n)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return -1;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

const struct lg_opts *lg_conn_opts(const struct lg_conn *c)
{
	return c->e->o;
}

void lg_conn_h1_request(const struct lg_conn *c, const uint8_t **p, size_t *n)
{
	*p = c->e->h1req;
	*n = c->e->h1len;
}

void lg_conn_h2_headers(const struct lg_conn *c, const nghttp2_nv **nv, size_t *n)
{
	*nv = c->e->nv;
	*n = c->e->nnv;
}

static void mark_dirty(struct lg_conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->e->dirty[c->e->ndirty++] = c->idx;
	}
}

int lg_conn_write(struct lg_conn *c, const void *p, size_t n)
{
	int rc = c->ssl ? lg_tls_write(c, p, n) : lg_buf_put(&c->pend, p, n) == 0 ? 0 : -LG_E_RESET;

	mark_dirty(c);
	return rc;
}

void lg_conn_done(struct lg_conn *c, struct lg_req *r, int status)
{
	struct lg_engine *e = c->e;

	lg_result_done(result_at(e, r->due), r->due, r->sent, lg_now(), status);
	e->inflight--;
	c->served++;
}

void lg_conn_fail(struct lg_conn *c, struct lg_req *r, enum lg_error err)
{
	struct lg_engine *e = c->e;

	result_at(e, r->due)->errors[err]++;
	e->inflight--;
}

void lg_conn_refused(struct lg_conn *c, struct lg_req *r)
{
	struct lg_engine *e = c->e;

	e->inflight--;
	if (e->retry_len == e->retry_cap) { /* cannot happen: one slot per request */
		lg_conn_fail(c, r, LG_E_PROTOCOL);
		e->inflight++;
		return;
	}
	e->retry[(e->retry_head + e->retry_len++) % e->retry_cap] = r->due;
}

static void ready_push(struct lg_engine *e, struct lg_conn *c)
{
	if (c->queued)
		return;
	c->queued = true;
	e->rq[(e->rq_head + e->rq_len++) % e->n] = c->idx;
}

static struct lg_conn *ready_pop(struct lg_engine *e)
{
	while (e->rq_len > 0) {
		struct lg_conn *c = &e->conns[e->rq[e->rq_head]];

		e->rq_head = (e->rq_head + 1) % e->n;
		e->rq_len--;
		c->queued = false;
		if (c->state == LG_CS_OPEN && e->codec->capacity(c) > 0)
			return c;
	}
	return NULL;
}

/* Requests written on the connection and not yet answered. */
static unsigned outstanding(const struct lg_conn *c)
{
	return c->e->o->proto == LG_H1 ? c->h1busy : c->h2active;
}

/* Whether the connection has been handed its --per-conn requests. */
static bool used_up(const struct lg_conn *c, unsigned left)
{
	uint64_t lim = c->e->o->per_conn;

	return lim && c->served + left >= lim;
}

static void post_recv(struct lg_conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(c->e);

	io_uring_prep_recv(sqe, c->fd, c->rbuf, RBUF_SIZE, 0);
	io_uring_sqe_set_data64(sqe, ud(c->idx, OP_RECV));
	c->ops++;
}

static void conn_open(struct lg_conn *c);

static void conn_finish_close(struct lg_conn *c)
{
	struct lg_engine *e = c->e;

	close(c->fd);
	c->fd = -1;
	c->state = LG_CS_IDLE;
	c->out.len = c->pend.len = c->out_off = 0;
	c->roff = c->rlen = 0;
	c->peer_closed = false;
	/* A connection closed before it answered anything (a server refusing
	 * the protocol, say) is not replaced at once: scan_timeouts reopens it
	 * after a pause, rather than in a loop that uses up ports. */
	if (c->served == 0) {
		c->retry_at = lg_now() + RECONNECT_DELAY_NS;
		return;
	}
	c->served = 0;
	if (e->phase != PH_CONNECT)
		conn_open(c);
}

/* err: an lg_error for what is outstanding, or -1 when the close is orderly
 * (anything still outstanding then counts as closed by the peer). */
static void conn_close(struct lg_conn *c, int err)
{
	if (c->state == LG_CS_CLOSING || c->state == LG_CS_IDLE)
		return;
	if (c->state == LG_CS_OPEN)
		c->e->open_conns--;
	c->e->codec->close(c, err < 0 ? LG_E_CLOSED : err);
	lg_tls_detach(c);
	c->state = LG_CS_CLOSING;
	/* Wakes the pending recv (and send) so that their completions arrive and
	 * the descriptor can be closed once the kernel holds no operation on it. */
	shutdown(c->fd, SHUT_RDWR);
	if (c->ops == 0)
		conn_finish_close(c);
}

static void conn_open(struct lg_conn *c)
{
	struct lg_engine *e = c->e;
	struct __kernel_timespec ts = {.tv_sec = CONNECT_TIMEOUT_NS / 1000000000ull};
	struct io_uring_sqe *sqe;
	int one = 1;

	c->fd = socket(e->ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		result_at(e, lg_now())->errors[LG_E_CONNECT]++;
		c->retry_at = lg_now() + RECONNECT_DELAY_NS;
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = LG_CS_CONNECTING;
	sqe = sqe_get(e);
	io_uring_prep_connect(sqe, c->fd, e->ai->ai_addr, e->ai->ai_addrlen);
	io_uring_sqe_set_data64(sqe, ud(c->idx, OP_CONNECT));
	/* A connect that never completes (a silent peer) fails after 5 s. */
	sqe->flags |= IOSQE_IO_LINK;
	sqe = sqe_get(e);
	io_uring_prep_link_timeout(sqe, &ts, 0);
	io_uring_sqe_set_data64(sqe, ud(c->idx, OP_IGNORE));
	c->ops++;
}

static void conn_ready(struct lg_conn *c)
{
	struct lg_engine *e = c->e;
	int rc = e->codec->open(c);

	if (rc < 0) {
		conn_close(c, -rc);
		return;
	}
	c->state = LG_CS_OPEN;
	e->open_conns++;
	result_at(e, lg_now())->connects++;
	if (e->open_conns > e->run->peak_conns)
		e->run->peak_conns = e->open_conns;
	if (c->ssl && !e->run->alpn)
		e->run->alpn = lg_tls_alpn(c);
	mark_dirty(c);
	ready_push(e, c);
}

static void on_connect(struct lg_conn *c, int res)
{
	struct lg_engine *e = c->e;

	if (c->state == LG_CS_CLOSING) {
		if (c->ops == 0)
			conn_finish_close(c);
		return;
	}
	if (res < 0) {
		if (e->phase == PH_CONNECT && !e->start_error)
			e->start_error = res == -ECANCELED ? ETIMEDOUT : -res;
		result_at(e, lg_now())->errors[LG_E_CONNECT]++;
		close(c->fd);
		c->fd = -1;
		c->state = LG_CS_IDLE;
		c->retry_at = lg_now() + RECONNECT_DELAY_NS;
		return;
	}
	if (e->tls) {
		if (lg_tls_attach(e->tls, c) < 0) {
			conn_close(c, LG_E_TLS);
			return;
		}
		c->state = LG_CS_HANDSHAKE;
		if (lg_tls_handshake(c) < 0) {
			conn_close(c, LG_E_TLS);
			return;
		}
		mark_dirty(c);
	} else {
		conn_ready(c);
	}
	if (c->state != LG_CS_CLOSING)
		post_recv(c);
}

static void on_recv(struct lg_conn *c, int res)
{
	struct lg_engine *e = c->e;
	int rc = 0;

	if (c->state == LG_CS_CLOSING) {
		if (c->ops == 0)
			conn_finish_close(c);
		return;
	}
	if (res <= 0) {
		if (e->phase == PH_CONNECT && !e->start_error)
			e->start_error = res < 0 ? -res : ECONNRESET;
		if (res < 0) {
			conn_close(c, LG_E_RESET);
			return;
		}
		c->peer_closed = true;
		if (c->state == LG_CS_OPEN && c->ssl)
			rc = lg_tls_input(c, e->codec); /* what wolfSSL still holds */
		if (c->state == LG_CS_OPEN && rc == 0)
			rc = e->codec->eof(c);
		conn_close(c, rc < 0 ? -rc : -1);
		return;
	}
	result_at(e, lg_now())->bytes_in += (uint64_t)res;
	if (!c->ssl) {
		rc = e->codec->input(c, c->rbuf, (size_t)res);
	} else {
		c->roff = 0;
		c->rlen = (size_t)res;
		if (c->state == LG_CS_HANDSHAKE) {
			rc = lg_tls_handshake(c);
			mark_dirty(c);
			if (rc == 1) {
				conn_ready(c);
				rc = c->state == LG_CS_OPEN ? lg_tls_input(c, e->codec) : 0;
			} else if (rc < 0 && e->phase == PH_CONNECT && !e->start_error) {
				e->start_error = EPROTO;
			}
		} else {
			rc = lg_tls_input(c, e->codec);
		}
	}
	if (rc != 0) {
		conn_close(c, rc < 0 ? -rc : -1);
		return;
	}
	if (c->state == LG_CS_OPEN) {
		unsigned left = outstanding(c);

		if (used_up(c, left)) {
			if (left == 0) {
				conn_close(c, -1); /* --per-conn: replaced by a new one */
				return;
			}
		} else if (e->codec->capacity(c) > 0) {
			ready_push(e, c);
		}
	}
	post_recv(c);
}

static void post_send(struct lg_conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(c->e);

	io_uring_prep_send(sqe, c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud(c->idx, OP_SEND));
	c->ops++;
	c->sending = true;
}

static void on_send(struct lg_conn *c, int res)
{
	c->sending = false;
	if (c->state == LG_CS_CLOSING) {
		if (c->ops == 0)
			conn_finish_close(c);
		return;
	}
	if (res < 0) {
		conn_close(c, LG_E_RESET);
		return;
	}
	result_at(c->e, lg_now())->bytes_out += (uint64_t)res;
	c->out_off += (size_t)res;
	if (c->out_off < c->out.len) {
		post_send(c); /* short send */
		return;
	}
	c->out.len = c->out_off = 0;
	if (c->pend.len)
		mark_dirty(c);
}

/* Writes what every dirty connection has queued: swaps the written-since
 * buffer in when no send is in flight. */
static void flush(struct lg_engine *e)
{
	for (unsigned i = 0; i < e->ndirty; i++) {
		struct lg_conn *c = &e->conns[e->dirty[i]];
		struct lg_buf t;

		if (c->state == LG_CS_OPEN) {
			int rc = e->codec->flush(c);

			if (rc != 0) {
				c->dirty = false;
				conn_close(c, rc < 0 ? -rc : -1);
				continue;
			}
		}
		/* Only now: what the codec wrote above must not list c twice. */
		c->dirty = false;
		if (c->sending || c->pend.len == 0 || c->state == LG_CS_CLOSING ||
		    c->state == LG_CS_IDLE)
			continue;
		t = c->out;
		c->out = c->pend;
		c->pend = t;
		c->pend.len = 0;
		c->out_off = 0;
		post_send(c);
	}
	e->ndirty = 0;
}

/* Hands due requests to connections that can take them. */
/* Open loop: requests due before the end of the measurement and not sent
 * yet. They are sent after the end too (their wait counts): leaving them
 * out would hide a server that stalls near the end. */
static uint64_t unsent_in_window(const struct lg_engine *e)
{
	uint64_t due;

	if (e->sched.rate <= 0)
		return 0;
	due = (uint64_t)((double)(e->meas_end - e->t0) * e->sched.rate / 1e9);
	while (due > 0 && lg_sched_at(&e->sched, due - 1) >= e->meas_end)
		due--;
	while (lg_sched_at(&e->sched, due) < e->meas_end)
		due++;
	return due > e->sched.issued ? due - e->sched.issued : 0;
}

static void dispatch(struct lg_engine *e, uint64_t now)
{
	/* Closed loop sends nothing new once the time is up. */
	uint64_t backlog = e->phase == PH_RUN || e->sched.rate > 0 ? lg_sched_backlog(&e->sched, now) : 0;

	while (backlog > 0 || e->retry_len > 0) {
		struct lg_conn *c;
		struct lg_req r;
		int rc;

		if (!e->retry_len && e->sched.rate > 0 &&
		    lg_sched_at(&e->sched, e->sched.issued) >= e->meas_end)
			return; /* the schedule ends with the measurement */
		c = ready_pop(e);
		if (!c)
			return;
		if (e->retry_len) {
			r.due = e->retry[e->retry_head];
			e->retry_head = (e->retry_head + 1) % e->retry_cap;
			e->retry_len--;
		} else {
			r.due = lg_sched_take(&e->sched, now);
			result_at(e, r.due)->sent++;
			backlog--;
		}
		r.sent = now;
		r.status = 0;
		r.stream_id = 0;
		r.next_free = NULL;
		e->inflight++;
		rc = e->codec->submit(c, &r);
		if (rc < 0) {
			lg_conn_fail(c, &r, (enum lg_error)-rc);
			conn_close(c, -rc);
			continue;
		}
		mark_dirty(c); /* HTTP/2 frames are written at the flush */
		if (e->codec->capacity(c) > 0 && !used_up(c, outstanding(c)))
			ready_push(e, c);
	}
}

/* Requests outstanding past --timeout fail and take their connection down:
 * an HTTP/1.1 connection cannot be used again until its answer comes. */
static void scan_timeouts(struct lg_engine *e, uint64_t now)
{
	uint64_t limit = now - e->timeout_ns;

	for (unsigned i = 0; i < e->n; i++) {
		struct lg_conn *c = &e->conns[i];
		bool late = false;

		if (c->state == LG_CS_CONNECTING || c->state == LG_CS_CLOSING)
			continue;
		if (c->state == LG_CS_IDLE) {
			if (e->phase != PH_CONNECT && now >= c->retry_at)
				conn_open(c);
			continue;
		}
		if (e->o->proto == LG_H1) {
			late = c->h1busy && c->h1req.sent < limit;
		} else if (c->h2) {
			for (unsigned k = 0; k < e->o->streams && !late; k++)
				late = nghttp2_session_get_stream_user_data(c->h2, c->reqs[k].stream_id) ==
					       &c->reqs[k] &&
				       c->reqs[k].sent < limit;
		}
		if (late)
			conn_close(c, LG_E_TIMEOUT);
	}
}

static void reap(struct lg_engine *e)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	io_uring_for_each_cqe(&e->ring, head, cqe) {
		uint64_t d = io_uring_cqe_get_data64(cqe);
		struct lg_conn *c = &e->conns[d >> 2];

		seen++;
		switch ((enum op)(d & 3)) {
		case OP_CONNECT:
			c->ops--;
			on_connect(c, cqe->res);
			break;
		case OP_RECV:
			c->ops--;
			on_recv(c, cqe->res);
			break;
		case OP_SEND:
			c->ops--;
			on_send(c, cqe->res);
			break;
		case OP_IGNORE:
			break;
		}
	}
	io_uring_cq_advance(&e->ring, seen);
}

static int build_requests(struct lg_engine *e)
{
	const struct lg_opts *o = e->o;
	struct lg_buf b = {0};
	char line[4096];
	int n;

	if (o->proto == LG_H1) {
		n = snprintf(line, sizeof(line), "%s %s HTTP/1.1\r\nHost: %s\r\n", o->method, o->path,
			     o->authority);
		lg_buf_put(&b, line, (size_t)n);
		for (unsigned i = 0; i < o->nheaders; i++) {
			if (strncasecmp(o->headers[i], "host:", 5) == 0)
				continue;
			lg_buf_put(&b, o->headers[i], strlen(o->headers[i]));
			lg_buf_put(&b, "\r\n", 2);
		}
		if (o->body_size) {
			n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n", o->body_size);
			lg_buf_put(&b, line, (size_t)n);
		}
		lg_buf_put(&b, "\r\n", 2);
		for (size_t i = 0; i < o->body_size; i++)
			lg_buf_put(&b, "x", 1);
		if (!b.p)
			return -1;
		e->h1req = b.p;
		e->h1len = b.len;
		return 0;
	}
	e->nv = calloc(4 + o->nheaders, sizeof(*e->nv));
	if (!e->nv)
		return -1;
#define NV(k, v) \
	e->nv[e->nnv++] = (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), \
				       NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}
	NV(":method", o->method);
	NV(":scheme", o->tls ? "https" : "http");
	NV(":authority", o->authority);
	NV(":path", o->path);
#undef NV
	for (unsigned i = 0; i < o->nheaders; i++) {
		const char *h = o->headers[i], *colon = strchr(h, ':'), *v;
		char *name;

		if (strncasecmp(h, "host:", 5) == 0)
			continue;
		name = strndup(h, (size_t)(colon - h));
		if (!name)
			return -1;
		/* RFC 9113 §8.2.1: field names are lowercase on the wire. */
		for (char *p = name; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		e->nv[e->nnv++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)v, strlen(name), strlen(v),
					       NGHTTP2_NV_FLAG_NO_COPY_VALUE};
	}
	return 0;
}

static int setup(struct lg_engine *e, const struct lg_opts *o, struct lg_run *run)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct io_uring_params p = {0};
	unsigned entries = 64;
	int rc;

	e->o = o;
	e->run = run;
	/* A sleeping thread is woken up to timer_slack_ns late (50 µs by
	 * default): that would be added to every open-loop request's latency. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	e->codec = o->proto == LG_H2 ? &lg_h2_codec : &lg_h1_codec;
	e->n = o->connections;
	e->timeout_ns = (uint64_t)(o->timeout * 1e9);
	rc = getaddrinfo(o->host, o->port, &hints, &e->ai);
	if (rc != 0) {
		fprintf(stderr, "ringside-load: %s:%s: %s\n", o->host, o->port, gai_strerror(rc));
		return -1;
	}
	while (entries < 3 * e->n + 16 && entries < 8192)
		entries *= 2;
	/* One thread submits and reaps: SINGLE_ISSUER lets the kernel skip
	 * locking, DEFER_TASKRUN runs completion work only when this thread
	 * waits, in one batch. Kernels before 6.1 take neither: plain ring. */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	rc = io_uring_queue_init_params(entries, &e->ring, &p);
	if (rc == -EINVAL) {
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(entries, &e->ring, &p);
	}
	if (rc < 0) {
		fprintf(stderr, "ringside-load: io_uring_setup: %s\n", strerror(-rc));
		return -1;
	}
	if (o->tls && !(e->tls = lg_tls_new(o)))
		return -1;
	if (build_requests(e) < 0)
		return -1;
	e->conns = calloc(e->n, sizeof(*e->conns));
	e->rq = calloc(e->n, sizeof(*e->rq));
	e->dirty = calloc(e->n, sizeof(*e->dirty));
	e->retry_cap = e->n * (o->proto == LG_H2 ? o->streams : 1);
	e->retry = calloc(e->retry_cap, sizeof(*e->retry));
	if (!e->conns || !e->rq || !e->dirty || !e->retry)
		return -1;
	for (unsigned i = 0; i < e->n; i++) {
		struct lg_conn *c = &e->conns[i];

		c->e = e;
		c->idx = i;
		c->fd = -1;
		c->rbuf = malloc(RBUF_SIZE);
		if (!c->rbuf)
			return -1;
	}
	return 0;
}

static void teardown(struct lg_engine *e)
{
	for (unsigned i = 0; e->conns && i < e->n; i++) {
		struct lg_conn *c = &e->conns[i];

		if (c->h2)
			nghttp2_session_del(c->h2);
		lg_tls_detach(c);
		if (c->fd >= 0)
			close(c->fd);
		free(c->rbuf);
		free(c->reqs);
		free(c->out.p);
		free(c->pend.p);
	}
	if (e->nv)
		for (size_t i = 4; i < e->nnv; i++)
			free(e->nv[i].name);
	free(e->nv);
	free(e->h1req);
	free(e->conns);
	free(e->rq);
	free(e->dirty);
	free(e->retry);
	lg_tls_free(e->tls);
	if (e->ring.ring_fd > 0)
		io_uring_queue_exit(&e->ring);
	if (e->ai)
		freeaddrinfo(e->ai);
}

/* Sleeps until a completion or `until`, whichever comes first. */
static void wait_until(struct lg_engine *e, uint64_t now, uint64_t until)
{
	struct io_uring_cqe *cqe;
	uint64_t d = until > now ? until - now : 0;
	struct __kernel_timespec ts = {.tv_sec = (long long)(d / 1000000000ull),
				       .tv_nsec = (long long)(d % 1000000000ull)};

	/* --spin: close to a due time, look for completions without
	 * sleeping, so that waking up late is not added to the latency. */
	if (d == 0 || d <= e->o->spin_ns)
		io_uring_submit(&e->ring);
	else
		io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
}

int lg_run(const struct lg_opts *o, struct lg_run *run)
{
	struct lg_engine e = {0};
	uint64_t now, deadline;
	int ret = -1;

	memset(run, 0, sizeof(*run));
	lg_result_reset(&run->warm);
	lg_result_reset(&run->meas);
	e.ring.ring_fd = -1;
	if (setup(&e, o, run) < 0)
		goto out;

	/* Every connection is open (and handshaken) before the clock starts. */
	e.phase = PH_CONNECT;
	for (unsigned i = 0; i < e.n; i++)
		conn_open(&e.conns[i]);
	deadline = lg_now() + CONNECT_TIMEOUT_NS + 1000000000ull;
	while (e.open_conns < e.n) {
		now = lg_now();
		if (e.start_error || now > deadline) {
			fprintf(stderr, "ringside-load: cannot open %u connections to %s:%s: %s\n", e.n,
				o->host, o->port,
				e.start_error == EPROTO ? "TLS handshake failed"
				: e.start_error	       ? strerror(e.start_error)
						       : "timed out");
			goto out;
		}
		flush(&e);
		wait_until(&e, now, deadline);
		reap(&e);
	}

	e.phase = PH_RUN;
	e.t0 = lg_now();
	e.meas_start = e.t0 + (uint64_t)(o->warmup * 1e9);
	e.meas_end = e.meas_start + (uint64_t)(o->duration * 1e9);
	e.next_scan = e.t0 + SCAN_NS;
	lg_sched_init(&e.sched, e.t0, o->rate);
	lg_result_reset(&run->warm); /* the connect phase is not part of the run */
	run->warm.connects = e.n;
	for (;;) {
		uint64_t until;

		now = lg_now();
		if (e.phase == PH_RUN && now >= e.meas_end) {
			e.phase = PH_DRAIN;
			e.drain_end = now + e.timeout_ns;
		}
		if (e.phase == PH_DRAIN &&
		    ((e.inflight == 0 && e.retry_len == 0 && unsent_in_window(&e) == 0) ||
		     now >= e.drain_end))
			break;
		if (now >= e.next_scan) {
			scan_timeouts(&e, now);
			e.next_scan = now + SCAN_NS;
		}
		dispatch(&e, now);
		flush(&e);

		until = e.phase == PH_RUN ? e.meas_end : e.drain_end;
		if (e.next_scan < until)
			until = e.next_scan;
		/* Wake for the next due request only if a connection can take it:
		 * otherwise the next completion is what frees one. */
		if (e.phase == PH_RUN && e.sched.rate > 0 && e.rq_len > 0) {
			uint64_t next = lg_sched_at(&e.sched, e.sched.issued);

			if (next < until)
				until = next;
		}
		wait_until(&e, now, until);
		reap(&e);
	}
	run->measured_s = (double)(e.meas_end - e.meas_start) / 1e9;
	run->inflight_end = e.inflight + e.retry_len;
	run->backlog_end = unsent_in_window(&e);
	ret = 0;
out:
	teardown(&e);
	return ret;
}
