/* Listening sockets: one per shard with SO_REUSEPORT, so the kernel spreads
 * connections across shards, and one multishot accept each. */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringside/net.h"

int rs_sockaddr_parse(const char *addr, uint16_t port, struct sockaddr_storage *sa,
		      socklen_t *len)
{
	memset(sa, 0, sizeof *sa);
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;

		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;

		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof *s4;
	}
	return 0;
}

bool rs_sockaddr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
	}
	return false;
}

void rs_sockaddr_ip(const struct sockaddr_storage *sa, char *buf, size_t len)
{
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, (socklen_t)len);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
	} else if (sa->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
			  (socklen_t)len);
	} else {
		snprintf(buf, len, "unknown");
	}
}

int rs_listen_socket(const char *addr, uint16_t port, int backlog)
{
	return rs_listen_socket_opts(addr, port, backlog, true);
}

int rs_listen_socket_opts(const char *addr, uint16_t port, int backlog, bool reuseport)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int fd, one = 1, ret;

	ret = rs_sockaddr_parse(addr, port, &sa, &len);
	if (ret < 0)
		return ret;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
	    /* Accepted sockets inherit TCP_NODELAY: responses leave at once. */
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, backlog) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static void arm_accept(struct rs_listener *l)
{
	struct io_uring_sqe *sqe = rs_loop_sqe(l->loop, &l->io, RS_OP_ACCEPT);

	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

static void maybe_finish(struct rs_listener *l)
{
	if (l->closing && l->io.inflight == 0 && l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
		rs_loop_unregister(l->loop, &l->io);
	}
}

static void on_retry(struct rs_timer *t)
{
	struct rs_listener *l = (struct rs_listener *)((char *)t - offsetof(struct rs_listener, retry));

	if (!l->closing)
		arm_accept(l);
}

static void on_accept(struct rs_io *io, const struct io_uring_cqe *cqe)
{
	struct rs_listener *l = (struct rs_listener *)io;
	bool backoff = false;

	if (cqe->res >= 0) {
		if (l->closing)
			close(cqe->res);
		else
			l->on_accept(l, cqe->res);
	} else if (cqe->res != -ECANCELED && !l->closing) {
		/* EMFILE/ENFILE/ENOMEM: the connection stays in the backlog.
		 * Retrying at once would spin; wait, and say so once a second. */
		backoff = true;
		l->accept_errors++;
		if (l->loop->now - l->last_warn >= 1000000000ull) {
			rs_warn("accept: %s (%llu failures); retrying in 100 ms",
				strerror(-cqe->res), (unsigned long long)l->accept_errors);
			l->last_warn = l->loop->now;
		}
	}
	if (!(cqe->flags & IORING_CQE_F_MORE) && !l->closing) {
		if (backoff)
			rs_timer_arm(&l->loop->timers, &l->retry, l->loop->now + 100000000ull);
		else
			arm_accept(l);
	}
	maybe_finish(l);
}

static void on_cancel(struct rs_io *io, const struct io_uring_cqe *cqe)
{
	maybe_finish((struct rs_listener *)io);
}

static const struct rs_io_ops listener_ops = {.on = {
	[RS_OP_ACCEPT] = on_accept,
	[RS_OP_CANCEL] = on_cancel,
}};

int rs_listener_start(struct rs_listener *l, struct rs_loop *loop, int fd)
{
	int ret;

	l->io.ops = &listener_ops;
	l->retry.fn = on_retry;
	l->fd = fd;
	l->loop = loop;
	l->closing = false;
	ret = rs_loop_register(loop, &l->io);
	if (ret < 0)
		return ret;
	arm_accept(l);
	return 0;
}

void rs_listener_close(struct rs_listener *l)
{
	struct io_uring_sqe *sqe;

	if (l->closing || l->fd < 0)
		return;
	l->closing = true;
	rs_timer_cancel(&l->loop->timers, &l->retry);
	sqe = rs_loop_sqe(l->loop, &l->io, RS_OP_CANCEL);
	io_uring_prep_cancel_fd(sqe, l->fd, IORING_ASYNC_CANCEL_ALL);
	/* Close the socket now, so new connections are refused at once and the
	 * kernel resets what waits in this shard's backlog. The pending accept
	 * keeps its own reference to the file until it is cancelled. */
	shutdown(l->fd, SHUT_RDWR);
}
