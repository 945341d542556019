/* Private to src/router/. */
#ifndef RINGSIDE_ROUTER_INTERNAL_H
#define RINGSIDE_ROUTER_INTERNAL_H

#include "ringside/router.h"

/* Compiles src for workload id into r, from arena a (route.c). 0 or
 * -ENOMEM (r freed). */
int rs_router__route_compile(struct rs_route *r, const struct rs_vs_http_route *src,
			     const struct rs_identity *id, struct rs_arena *a);
/* Frees what r owns outside the arena: its regexes. */
void rs_router__route_free(struct rs_route *r);
/* How many match keys route r needs (route.c). */
uint32_t rs_router__nkeys(const struct rs_route *r);
/* Writes t->keys (room for every route's, allocated by the caller) from
 * t's routes, and sets t->nkeys (route.c). */
void rs_router__keys_fill(struct rs_route_table *t);
/* The first route of t that matches m, with the block that did. */
const struct rs_table_route *rs_router__first_match(const struct rs_route_table *t,
						    const struct rs_msg *m, uint32_t port,
						    const char *scheme,
						    const struct rs_rmatch **matched);

#endif
