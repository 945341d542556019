/* Types of connections and listeners on a shard's ring. */
#ifndef RINGSIDE_NET_T_H
#define RINGSIDE_NET_T_H

#include <linux/time_types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "ringside/core-t.h"

struct rs_conn;
struct rs_loop;

/* What a connection's owner is told. Every callback may call rs_conn_close();
 * none is called after on_closed. */
struct rs_conn_cbs {
	/* Bytes received; the owner copies what it keeps. */
	void (*on_data)(struct rs_conn *c, const char *p, size_t n);
	/* The peer closed (err 0) or the connection failed (negative errno). */
	void (*on_eof)(struct rs_conn *c, int err);
	/* The output queue is empty again. */
	void (*on_flushed)(struct rs_conn *c);
	/* An outbound connect finished: 0 or a negative errno (-ETIMEDOUT). */
	void (*on_connect)(struct rs_conn *c, int err);
	/* All operations are done and the socket is closed: free the owner. */
	void (*on_closed)(struct rs_conn *c);
};

/* A layer between the socket and the owner (TLS): it turns the bytes received
 * into the owner's, and what the owner queued into the bytes sent. */
struct rs_conn_layer_ops {
	/* Received bytes: passes what they decode to on with rs_conn_deliver().
	 * 0, or a negative errno that fails the connection. */
	int (*rx)(struct rs_conn *c, const char *p, size_t n);
	/* Encodes what the owner queued in c->out into c->wire. 0 or -errno. */
	int (*tx)(struct rs_conn *c);
	/* The peer closed: a layer may still hold decoded bytes (0), or call the
	 * close unclean (negative errno). */
	int (*eof)(struct rs_conn *c);
	/* Optional. The owner closes gracefully: encode what it queued, then
	 * the end of the stream (TLS's close_notify), into c->wire. */
	void (*close)(struct rs_conn *c);
	/* The connection is gone: free what the layer holds. */
	void (*free)(struct rs_conn *c);
};

enum rs_conn_flag {
	RS_CONN_RECV_ARMED = 1u << 0,  /* a multishot recv is in the kernel */
	RS_CONN_READ_WANTED = 1u << 1, /* the owner wants bytes */
	RS_CONN_RECV_CANCEL = 1u << 2, /* a cancel of the recv is in flight */
	RS_CONN_SEND_BUSY = 1u << 3,   /* a sendmsg is in the kernel */
	RS_CONN_CONNECTING = 1u << 4,  /* an outbound connect is in the kernel */
	RS_CONN_CLOSING = 1u << 5,     /* closed by the owner; waiting for operations */
	RS_CONN_FLUSH_CLOSE = 1u << 6, /* close gracefully once the output is sent */
	RS_CONN_LINGER = 1u << 7,      /* write side shut; reading until the peer closes */
	RS_CONN_EOF = 1u << 8,         /* the peer closed its side */
};

#define RS_CONN_IOV 16

struct rs_conn {
	struct rs_io io;
	int fd;
	uint16_t flags;
	struct rs_loop *loop; /* borrowed */
	const struct rs_conn_cbs *cbs;
	uint64_t *rx_bytes; /* borrowed counters, may be NULL */
	uint64_t *tx_bytes;
	struct rs_outq out; /* what the owner queued to send */
	/* With a layer: the encoded bytes being sent. Without, out is sent. */
	struct rs_outq wire;
	const struct rs_conn_layer_ops *layer;
	void *layer_data; /* owned by the layer */
	uint64_t last_io; /* loop time of the last byte received or sent */
	struct rs_timer linger;
	struct rs_defer flush; /* the send rs_conn_flush asked for, at the turn's end */
	struct msghdr msg; /* the send in flight reads these */
	struct iovec iov[RS_CONN_IOV];
	struct __kernel_timespec connect_timeout;
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

struct rs_listener {
	struct rs_io io;
	int fd;
	bool closing;
	struct rs_loop *loop;
	void (*on_accept)(struct rs_listener *l, int fd);
	void *owner;
	struct rs_timer retry; /* re-arms accept after EMFILE and the like */
	uint64_t accept_errors;
	uint64_t last_warn;
};

#endif
