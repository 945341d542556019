/* Private to src/router/. */
#ifndef RINGSIDE_ROUTER_INTERNAL_H
#define RINGSIDE_ROUTER_INTERNAL_H

#include "ringside/router.h"

/* Compiles src for workload id into r (route.c). 0 or -ENOMEM (r freed). */
int rs_router__route_compile(struct rs_route *r, const struct rs_vs_http_route *src,
			     const struct rs_identity *id);
void rs_router__route_free(struct rs_route *r);

#endif
