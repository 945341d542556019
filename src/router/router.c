#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringside/router.h"
#include "ringside/upstream.h"
#include <stdint.h>

static uint32_t hash_host(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static struct rs_router_host *slot_for(const struct rs_router *r, const char *host, uint32_t h)
{
	for (uint32_t i = h & r->mask;; i = (i + 1) & r->mask) {
		struct rs_router_host *e = &r->slots[i];

		if (!e->host || (e->hash == h && strcmp(e->host, host) == 0))
			return e;
	}
}

int rs_router_init(struct rs_router *r, const struct rs_clusters *cs, const char *ns)
{
	uint32_t cap = 16;

	memset(r, 0, sizeof *r);
	r->clusters = cs;
	while (cap < cs->n * 2)
		cap *= 2;
	r->mask = cap - 1;
	r->ns = strdup(ns);
	r->slots = calloc(cap, sizeof *r->slots);
	if (!r->ns || !r->slots)
		goto nomem;
	for (size_t i = 0; i < cs->n; i++) {
		uint32_t h = hash_host(cs->v[i].host);
		struct rs_router_host *e = slot_for(r, cs->v[i].host, h);
		uint32_t *port;
		int *cl;

		if (!e->host) {
			e->host = cs->v[i].host;
			e->hash = h;
		}
		port = realloc(e->port, (e->nports + 1) * sizeof *port);
		if (!port)
			goto nomem;
		e->port = port;
		cl = realloc(e->cluster, (e->nports + 1) * sizeof *cl);
		if (!cl)
			goto nomem;
		e->cluster = cl;
		e->port[e->nports] = cs->v[i].port;
		e->cluster[e->nports] = (int)i;
		e->nports++;
	}
	for (uint32_t i = 0; i <= r->mask; i++) {
		struct rs_router_host *e = &r->slots[i];

		if (!e->host)
			continue;
		e->default_idx = e->nports == 1 ? e->cluster[0] : -1;
		for (uint32_t k = 0; k < e->nports; k++)
			if (e->port[k] == 80)
				e->default_idx = e->cluster[k];
	}
	return 0;
nomem:
	rs_router_free(r);
	return -ENOMEM;
}

void rs_router_free(struct rs_router *r)
{
	if (r->slots) {
		for (uint32_t i = 0; i <= r->mask; i++) {
			free(r->slots[i].port);
			free(r->slots[i].cluster);
		}
	}
	free(r->slots);
	free(r->ns);
	r->slots = NULL;
	r->ns = NULL;
}

/* Finds host with a port (0: the host's default port). */
static int find(const struct rs_router *r, const char *host, uint32_t port)
{
	const struct rs_router_host *e = slot_for(r, host, hash_host(host));

	if (!e->host)
		return -1;
	if (!port)
		return e->default_idx;
	for (uint32_t k = 0; k < e->nports; k++)
		if (e->port[k] == port)
			return e->cluster[k];
	return -1;
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
