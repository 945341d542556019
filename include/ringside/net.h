#ifndef RINGSIDE_NET_H
#define RINGSIDE_NET_H

#include "ringside/core.h"
#include "ringside/net-t.h"

/* Takes ownership of fd. Returns 0 or a negative errno (fd untouched). */
int rs_conn_init(struct rs_conn *c, struct rs_loop *loop, int fd, const struct rs_conn_cbs *cbs);
void rs_conn_read_start(struct rs_conn *c);
void rs_conn_read_stop(struct rs_conn *c);
/* Queues bytes; rs_conn_flush() sends them. Returns 0 or -ENOMEM. */
static inline int rs_conn_write(struct rs_conn *c, const void *p, size_t n)
{
	return rs_outq_append(&c->out, &c->loop->chunks, p, n);
}
void rs_conn_flush(struct rs_conn *c);
/* Puts a layer between the socket and the owner; it owns data from now on
 * and frees it through its ops. */
void rs_conn_set_layer(struct rs_conn *c, const struct rs_conn_layer_ops *ops, void *data);
/* For layers: hands decoded bytes to the owner. */
void rs_conn_deliver(struct rs_conn *c, const char *p, size_t n);
/* Bytes queued and not yet sent, encoded or not: what backpressure weighs. */
static inline size_t rs_conn_queued(const struct rs_conn *c)
{
	return c->out.bytes + c->wire.bytes;
}
/* Starts a non-blocking connect with a deadline (0: none). */
int rs_conn_connect(struct rs_conn *c, const struct sockaddr *sa, socklen_t len,
		    uint64_t timeout_ns);
/* Closes at once: pending output is dropped. on_closed follows, never inline. */
void rs_conn_close(struct rs_conn *c);
/* Closes at once with a reset (SO_LINGER 0): the peer sees an error, not an
 * end of stream. */
void rs_conn_abort(struct rs_conn *c);
/* Sends what is queued, shuts the write side, reads until the peer closes
 * (bounded), then closes: a final response is not lost to a reset. */
void rs_conn_close_graceful(struct rs_conn *c);
static inline bool rs_conn_closing(const struct rs_conn *c)
{
	return c->flags & (RS_CONN_CLOSING | RS_CONN_FLUSH_CLOSE | RS_CONN_LINGER);
}

/* A SO_REUSEPORT listening socket bound to addr:port. */
int rs_listen_socket(const char *addr, uint16_t port, int backlog);
/* The same, choosing SO_REUSEPORT: ports one process must own alone (admin)
 * go without it, so a second instance fails to bind instead of sharing. */
int rs_listen_socket_opts(const char *addr, uint16_t port, int backlog, bool reuseport);
int rs_listener_start(struct rs_listener *l, struct rs_loop *loop, int fd);
void rs_listener_close(struct rs_listener *l);

/* Parses "1.2.3.4" or "::1" with a port into sa. */
int rs_sockaddr_parse(const char *addr, uint16_t port, struct sockaddr_storage *sa,
		      socklen_t *len);
/* Whether a and b are the same IPv4 or IPv6 address and port (other
 * fields, such as an IPv6 flow label, aside). */
bool rs_sockaddr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* Writes the address (without port) of sa into buf. */
void rs_sockaddr_ip(const struct sockaddr_storage *sa, char *buf, size_t len);

/* The address an accepted connection was sent to before iptables redirected
 * it to this socket (SO_ORIGINAL_DST, IPv4 and IPv6). 0; -ENOENT when it was
 * not redirected (its original destination is the socket's own address, or
 * connection tracking has none); another negative errno when the socket
 * cannot say. One getsockname and one getsockopt: read it once per
 * connection, when needed. */
int rs_sock_original_dst(int fd, struct sockaddr_storage *out, socklen_t *len);

#endif
