/* Types of clusters (a service port, or a subset of it) and endpoints. */
#ifndef RINGSIDE_UPSTREAM_T_H
#define RINGSIDE_UPSTREAM_T_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct rs_endpoint {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char *name; /* owns: "ip:port" for logs */
};

struct rs_cluster {
	char *name; /* owns: Istio's form, "outbound|80||reviews.default.svc.cluster.local" */
	char *host; /* owns */
	char *subset; /* owns; NULL for the whole service */
	uint32_t port;
	struct rs_endpoint *eps; /* owns */
	size_t neps;
};

struct rs_clusters {
	struct rs_cluster *v; /* owns */
	size_t n;
};

#endif
