/* The original destination of a connection that iptables redirected to the
 * proxy (`-j REDIRECT`, the capture istio-iptables sets up in a pod): the
 * address the application connected to, which netfilter's connection
 * tracking keeps and getsockopt(SO_ORIGINAL_DST) returns. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "ringside/net.h"

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>,
 * which clash with the libc headers when included beside them; the values
 * are the kernel's ABI. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

int rs_sock_original_dst(int fd, struct sockaddr_storage *out, socklen_t *len)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof local;
	int level;

	if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
		return -errno;
	if (local.ss_family == AF_INET) {
		level = SOL_IP;
		*len = sizeof(struct sockaddr_in);
	} else if (local.ss_family == AF_INET6) {
		level = SOL_IPV6;
		*len = sizeof(struct sockaddr_in6);
	} else {
		return -ENOENT;
	}
	memset(out, 0, sizeof *out);
	/* ENOENT: connection tracking has no entry (nothing redirected it, or
	 * conntrack is not loaded at all). */
	if (getsockopt(fd, level, local.ss_family == AF_INET ? SO_ORIGINAL_DST : IP6T_SO_ORIGINAL_DST,
		       out, len) < 0)
		return -errno;
	/* A connection made to the proxy's own address is tracked too, with
	 * that address as its destination: it was not redirected, and
	 * connecting there would loop. */
	return rs_sockaddr_same(out, &local) ? -ENOENT : 0;
}
