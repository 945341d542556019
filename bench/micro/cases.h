#ifndef RINGSIDE_BENCH_MICRO_CASES_H
#define RINGSIDE_BENCH_MICRO_CASES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

size_t micro_h1_request_size(void);
int micro_h1_parse(void);
int micro_strip_hop_by_hop(void);
/* Encodes a 200 with six typical fields; returns the bytes written. */
int micro_h1_encode_response_head(void);
void micro_hist_record(void);
void micro_hist_merge(void);
int micro_router_setup(size_t n);
int micro_router_match(size_t i);
/* 1,000 VirtualServices of 10 http routes each over ServiceEntry services
 * with three subsets; one request is a host lookup, the first matching
 * route and a weighted destination. */
int micro_routes_setup(void);
int micro_route_request(size_t i);
/* One pick from a 10-endpoint cluster: 0 least request, 1 round robin,
 * 2 random, 3 ring hash, 4 Maglev. */
int micro_lb_setup(int kind);
int micro_lb_pick(int kind, size_t i);

#ifdef __cplusplus
}
#endif

#endif
