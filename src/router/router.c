#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/router.h"
#include "ringside/upstream.h"

int rs_router_init(struct rs_router *r, const struct rs_clusters *cs, const char *ns)
{
	r->clusters = cs;
	r->ns = strdup(ns);
	return r->ns ? 0 : -ENOMEM;
}

void rs_router_free(struct rs_router *r)
{
	free(r->ns);
	r->ns = NULL;
}

/* Finds host (with an optional port, 0 = any) among the clusters. */
static int find(const struct rs_router *r, const char *host, uint32_t port)
{
	const struct rs_clusters *cs = r->clusters;
	int only = -1, n = 0;

	if (port)
		return rs_clusters_find(cs, host, port);
	for (size_t i = 0; i < cs->n; i++) {
		if (strcmp(cs->v[i].host, host) != 0)
			continue;
		if (cs->v[i].port == 80)
			return (int)i;
		only = (int)i;
		n++;
	}
	return n == 1 ? only : -1;
}

int rs_router_match(const struct rs_router *r, const char *authority, size_t len, char *host,
		    size_t hostlen)
{
	char fq[300];
	const char *colon = NULL;
	size_t hl, dots = 0;
	uint32_t port = 0;
	int idx;

	const char *end = authority + len;

	if (len && authority[0] == '[') {
		const char *rb = memchr(authority, ']', len);

		if (!rb)
			return -1;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -1;
			colon = rb + 1;
		}
		authority++;
		hl = (size_t)(rb - authority);
	} else {
		colon = memchr(authority, ':', len);
		hl = colon ? (size_t)(colon - authority) : len;
	}
	if (colon) {
		const char *p = colon + 1;

		if (p == end)
			return -1;
		for (; p < end; p++) {
			if (!isdigit((unsigned char)*p))
				return -1;
			port = port * 10 + (uint32_t)(*p - '0');
			if (port > 65535)
				return -1;
		}
		if (port == 0)
			return -1;
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	for (size_t i = 0; i < hl; i++) {
		host[i] = (char)tolower((unsigned char)authority[i]);
		dots += host[i] == '.';
	}
	host[hl] = '\0';
	idx = find(r, host, port);
	if (idx >= 0)
		return idx;
	if (dots == 0)
		snprintf(fq, sizeof fq, "%s.%s.svc.cluster.local", host, r->ns);
	else if (dots == 1)
		snprintf(fq, sizeof fq, "%s.svc.cluster.local", host);
	else if (hl > 4 && strcmp(host + hl - 4, ".svc") == 0)
		snprintf(fq, sizeof fq, "%s.cluster.local", host);
	else
		return -1;
	return find(r, fq, port);
}
