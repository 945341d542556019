/* Connections on a shard's ring: multishot receive from the provided buffer
 * ring, one sendmsg in flight over the output queue, connect with a linked
 * timeout, and closing only after every operation has completed. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringside/net.h"
#include "ringside/telemetry.h"

#define LINGER_NS (2ull * 1000000000u)

static void arm_recv(struct rs_conn *c)
{
	struct io_uring_sqe *sqe = rs_loop_sqe(c->loop, &c->io, RS_OP_RECV);

	/* Multishot: one submission keeps delivering until it fails, the buffer
	 * ring runs dry (-ENOBUFS) or it is cancelled. */
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = RS_BUFRING_GROUP;
	c->flags |= RS_CONN_RECV_ARMED;
}

static void cancel_recv(struct rs_conn *c)
{
	struct io_uring_sqe *sqe = rs_loop_sqe(c->loop, &c->io, RS_OP_CANCEL);

	io_uring_prep_cancel64(sqe, rs_udata(&c->io, RS_OP_RECV), 0);
	c->flags |= RS_CONN_RECV_CANCEL;
}

static void hard_close(struct rs_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->flags & RS_CONN_CLOSING)
		return;
	c->flags |= RS_CONN_CLOSING;
	c->flags &= (uint16_t)~RS_CONN_READ_WANTED;
	rs_timer_cancel(&c->loop->timers, &c->linger);
	rs_loop_undefer(c->loop, &c->flush);
	/* Always one more completion: freeing then happens in dispatch, never
	 * inside the owner's call to close. */
	sqe = rs_loop_sqe(c->loop, &c->io, RS_OP_CANCEL);
	io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
}

/* Called after every completion: a closing connection is freed once nothing
 * of it is left in the kernel. */
static void maybe_finish(struct rs_conn *c)
{
	if (!(c->flags & RS_CONN_CLOSING) || c->io.inflight)
		return;
	close(c->fd);
	c->fd = -1;
	rs_outq_clear(&c->out, &c->loop->chunks);
	rs_outq_clear(&c->wire, &c->loop->chunks);
	if (c->layer)
		c->layer->free(c);
	c->layer = NULL;
	rs_loop_unregister(c->loop, &c->io);
	c->cbs->on_closed(c);
}

static void start_linger(struct rs_conn *c)
{
	c->flags = (uint16_t)((c->flags & ~RS_CONN_FLUSH_CLOSE) | RS_CONN_LINGER);
	if (c->flags & RS_CONN_EOF) {
		hard_close(c);
		return;
	}
	shutdown(c->fd, SHUT_WR);
	rs_conn_read_start(c);
	rs_timer_arm(&c->loop->timers, &c->linger, c->loop->now + LINGER_NS);
}

static void on_linger_timeout(struct rs_timer *t)
{
	hard_close((struct rs_conn *)((char *)t - offsetof(struct rs_conn, linger)));
}

/* Bytes through the layer; what it has to send back (a handshake's next
 * flight, an alert) goes out at once. */
static void layer_rx(struct rs_conn *c, const char *p, size_t n)
{
	int rc = c->layer->rx(c, p, n);

	if (rc < 0) {
		c->flags |= RS_CONN_EOF;
		if (!(c->flags & RS_CONN_CLOSING))
			c->cbs->on_eof(c, rc);
		return;
	}
	rs_conn_flush(c);
}

static void on_recv(struct rs_io *io, const struct io_uring_cqe *cqe)
{
	struct rs_conn *c = (struct rs_conn *)io;
	int res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		c->flags &= (uint16_t)~(RS_CONN_RECV_ARMED | RS_CONN_RECV_CANCEL);
	if (res > 0) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);

		c->last_io = c->loop->now;
		/* Once closing, what the peer sends is read and dropped: the
		 * owner has decided, and buffering it would cost memory. */
		if (!(c->flags & (RS_CONN_CLOSING | RS_CONN_LINGER | RS_CONN_FLUSH_CLOSE))) {
			if (c->rx_bytes)
				rs_stat_add(c->rx_bytes, (uint64_t)res);
			if (!c->layer)
				c->cbs->on_data(c, rs_loop_buf(c->loop, bid), (size_t)res);
			else
				layer_rx(c, rs_loop_buf(c->loop, bid), (size_t)res);
		}
		rs_loop_buf_recycle(c->loop, bid);
	} else if (res == 0) {
		/* A FIN while the last response drains is a half-close: finish
		 * sending, then close (start_linger sees the EOF). */
		c->flags |= RS_CONN_EOF;
		if (c->flags & RS_CONN_LINGER)
			hard_close(c);
		else if (!(c->flags & (RS_CONN_CLOSING | RS_CONN_FLUSH_CLOSE)))
			c->cbs->on_eof(c, c->layer ? c->layer->eof(c) : 0);
	} else if (res != -ENOBUFS && res != -ECANCELED) {
		c->flags |= RS_CONN_EOF;
		if (c->flags & (RS_CONN_LINGER | RS_CONN_FLUSH_CLOSE))
			hard_close(c);
		else if (!(c->flags & RS_CONN_CLOSING))
			c->cbs->on_eof(c, res);
	}
	/* -ENOBUFS is backpressure from the buffer ring, not an error: buffers
	 * come back at the end of this batch, and the data waits in the socket. */
	if (!(c->flags & (RS_CONN_RECV_ARMED | RS_CONN_CLOSING | RS_CONN_EOF)) &&
	    (c->flags & RS_CONN_READ_WANTED))
		arm_recv(c);
	maybe_finish(c);
}

/* What is sent: the owner's queue, or the layer's encoding of it. */
static struct rs_outq *sendq(struct rs_conn *c)
{
	return c->layer ? &c->wire : &c->out;
}

static void submit_send(struct rs_conn *c)
{
	struct io_uring_sqe *sqe;
	int n;

	if (c->layer && c->out.bytes && c->layer->tx(c) < 0) {
		/* The encoder failed: nothing more can be sent. */
		rs_outq_clear(&c->out, &c->loop->chunks);
		rs_conn_abort(c);
		return;
	}
	n = rs_outq_iov(sendq(c), c->iov, RS_CONN_IOV);
	if (n == 0) {
		/* Closing, and what is queued cannot go (a TLS handshake never
		 * finished, so the owner's bytes never will): close now. */
		if (c->flags & RS_CONN_FLUSH_CLOSE)
			start_linger(c);
		return;
	}
	memset(&c->msg, 0, sizeof c->msg);
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = (size_t)n;
	sqe = rs_loop_sqe(c->loop, &c->io, RS_OP_SEND);
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	c->flags |= RS_CONN_SEND_BUSY;
}

static void on_send(struct rs_io *io, const struct io_uring_cqe *cqe)
{
	struct rs_conn *c = (struct rs_conn *)io;

	c->flags &= (uint16_t)~RS_CONN_SEND_BUSY;
	if (c->flags & RS_CONN_CLOSING) {
		maybe_finish(c);
		return;
	}
	if (cqe->res < 0) {
		rs_outq_clear(&c->out, &c->loop->chunks);
		rs_outq_clear(&c->wire, &c->loop->chunks);
		if (c->flags & (RS_CONN_FLUSH_CLOSE | RS_CONN_LINGER))
			hard_close(c);
		else
			c->cbs->on_eof(c, cqe->res);
		maybe_finish(c);
		return;
	}
	c->last_io = c->loop->now;
	if (c->tx_bytes)
		rs_stat_add(c->tx_bytes, (uint64_t)cqe->res);
	rs_outq_consume(sendq(c), &c->loop->chunks, (size_t)cqe->res);
	if (rs_conn_queued(c)) {
		submit_send(c); /* a short send, or bytes queued meanwhile */
	} else if (c->flags & RS_CONN_FLUSH_CLOSE) {
		start_linger(c);
	} else {
		c->cbs->on_flushed(c);
	}
	maybe_finish(c);
}

static void on_connect(struct rs_io *io, const struct io_uring_cqe *cqe)
{
	struct rs_conn *c = (struct rs_conn *)io;
	int res = cqe->res;

	c->flags &= (uint16_t)~RS_CONN_CONNECTING;
	if (!(c->flags & RS_CONN_CLOSING)) {
		/* The linked timeout cancels the connect when it fires. */
		if (res == -ECANCELED)
			res = -ETIMEDOUT;
		c->cbs->on_connect(c, res);
	}
	maybe_finish(c);
}

static void on_other(struct rs_io *io, const struct io_uring_cqe *cqe)
{
	maybe_finish((struct rs_conn *)io);
}

static const struct rs_io_ops conn_ops = {.on = {
	[RS_OP_RECV] = on_recv,
	[RS_OP_SEND] = on_send,
	[RS_OP_CONNECT] = on_connect,
	[RS_OP_LINK_TIMEOUT] = on_other,
	[RS_OP_CANCEL] = on_other,
}};

static void deferred_flush(struct rs_defer *d);

int rs_conn_init(struct rs_conn *c, struct rs_loop *loop, int fd, const struct rs_conn_cbs *cbs)
{
	int ret;

	memset(c, 0, offsetof(struct rs_conn, iov));
	c->io.ops = &conn_ops;
	c->fd = fd;
	c->loop = loop;
	c->cbs = cbs;
	c->linger.fn = on_linger_timeout;
	c->flush.fn = deferred_flush;
	c->last_io = loop->now;
	ret = rs_loop_register(loop, &c->io);
	return ret;
}

void rs_conn_read_start(struct rs_conn *c)
{
	if (c->flags & RS_CONN_CLOSING)
		return;
	c->flags |= RS_CONN_READ_WANTED;
	if (!(c->flags & (RS_CONN_RECV_ARMED | RS_CONN_EOF | RS_CONN_CONNECTING)))
		arm_recv(c);
}

void rs_conn_read_stop(struct rs_conn *c)
{
	c->flags &= (uint16_t)~RS_CONN_READ_WANTED;
	if ((c->flags & RS_CONN_RECV_ARMED) && !(c->flags & RS_CONN_RECV_CANCEL))
		cancel_recv(c);
}

static void deferred_flush(struct rs_defer *d)
{
	struct rs_conn *c = (struct rs_conn *)((char *)d - offsetof(struct rs_conn, flush));

	if (!(c->flags & (RS_CONN_SEND_BUSY | RS_CONN_CLOSING | RS_CONN_CONNECTING)) &&
	    rs_conn_queued(c))
		submit_send(c);
}

/* The send goes when the loop is about to enter the ring anyway: every
 * byte the batch queued for this connection (several HTTP/2 streams'
 * responses, a head and its body) leaves in one sendmsg, and under TLS in
 * as few records. */
void rs_conn_flush(struct rs_conn *c)
{
	if (c->flags & (RS_CONN_SEND_BUSY | RS_CONN_CLOSING | RS_CONN_CONNECTING))
		return;
	if (rs_conn_queued(c))
		rs_loop_defer(c->loop, &c->flush);
}

void rs_conn_set_layer(struct rs_conn *c, const struct rs_conn_layer_ops *ops, void *data)
{
	c->layer = ops;
	c->layer_data = data;
}

void rs_conn_deliver(struct rs_conn *c, const char *p, size_t n)
{
	if (!(c->flags & (RS_CONN_CLOSING | RS_CONN_LINGER | RS_CONN_FLUSH_CLOSE)))
		c->cbs->on_data(c, p, n);
}

int rs_conn_connect(struct rs_conn *c, const struct sockaddr *sa, socklen_t len,
		    uint64_t timeout_ns)
{
	struct io_uring_sqe *sqe;

	memcpy(&c->peer, sa, len);
	c->peer_len = len;
	/* The connect and its linked timeout must reach the kernel together:
	 * a flush between them would submit an unterminated link. */
	if (io_uring_sq_space_left(&c->loop->ring) < 2)
		io_uring_submit(&c->loop->ring);
	sqe = rs_loop_sqe(c->loop, &c->io, RS_OP_CONNECT);
	io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)&c->peer, len);
	c->flags |= RS_CONN_CONNECTING;
	if (timeout_ns) {
		sqe->flags |= IOSQE_IO_LINK;
		c->connect_timeout.tv_sec = (long long)(timeout_ns / 1000000000u);
		c->connect_timeout.tv_nsec = (long long)(timeout_ns % 1000000000u);
		sqe = rs_loop_sqe(c->loop, &c->io, RS_OP_LINK_TIMEOUT);
		io_uring_prep_link_timeout(sqe, &c->connect_timeout, 0);
	}
	return 0;
}

void rs_conn_close(struct rs_conn *c)
{
	hard_close(c);
}

void rs_conn_abort(struct rs_conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (c->flags & RS_CONN_CLOSING)
		return;
	/* SO_LINGER 0: the close that follows the last completion sends RST. */
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	hard_close(c); /* the queue is freed after the last completion */
}

void rs_conn_close_graceful(struct rs_conn *c)
{
	if (c->flags & (RS_CONN_CLOSING | RS_CONN_FLUSH_CLOSE | RS_CONN_LINGER))
		return;
	if (c->flags & RS_CONN_CONNECTING) {
		hard_close(c);
		return;
	}
	c->flags |= RS_CONN_FLUSH_CLOSE;
	if (c->layer && c->layer->close)
		c->layer->close(c);
	if (!(c->flags & RS_CONN_SEND_BUSY)) {
		if (rs_conn_queued(c))
			submit_send(c);
		else
			start_linger(c);
	}
}
