#ifndef RINGSIDE_BENCH_MICRO_CASES_H
#define RINGSIDE_BENCH_MICRO_CASES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

size_t micro_h1_request_size(void);
int micro_h1_parse(void);
int micro_strip_hop_by_hop(void);
void micro_hist_record(void);
void micro_hist_merge(void);
int micro_router_setup(size_t n);
int micro_router_match(size_t i);

#ifdef __cplusplus
}
#endif

#endif
