// Google Benchmark harness over ringside's C API (cases.c does the work).
#include <benchmark/benchmark.h>

#include "cases.h"

static void BM_H1ParseTypicalRequest(benchmark::State &state)
{
	for (auto _ : state)
		benchmark::DoNotOptimize(micro_h1_parse());
	state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(micro_h1_request_size()));
}
BENCHMARK(BM_H1ParseTypicalRequest);

static void BM_StripHopByHop(benchmark::State &state)
{
	for (auto _ : state)
		benchmark::DoNotOptimize(micro_strip_hop_by_hop());
}
BENCHMARK(BM_StripHopByHop);

static void BM_H1EncodeResponseHead(benchmark::State &state)
{
	for (auto _ : state)
		benchmark::DoNotOptimize(micro_h1_encode_response_head());
}
BENCHMARK(BM_H1EncodeResponseHead);

static void BM_HistRecord(benchmark::State &state)
{
	for (auto _ : state)
		micro_hist_record();
}
BENCHMARK(BM_HistRecord);

static void BM_HistMerge(benchmark::State &state)
{
	for (auto _ : state)
		micro_hist_merge();
}
BENCHMARK(BM_HistMerge);

static void BM_RouterMatch(benchmark::State &state)
{
	micro_router_setup(size_t(state.range(0)));
	size_t i = 0;
	for (auto _ : state)
		benchmark::DoNotOptimize(micro_router_match(i++));
}
// Only the first table size takes effect (the table is built once); the
// linear host scan is what this measures until routing gets its index.
BENCHMARK(BM_RouterMatch)->Arg(1000);

static void BM_RouteRequest(benchmark::State &state)
{
	if (micro_routes_setup() < 0) {
		state.SkipWithError("route table set-up failed");
		return;
	}
	size_t i = 0;
	for (auto _ : state)
		benchmark::DoNotOptimize(micro_route_request(i++));
}
// 1,000 VirtualServices x 10 routes: host lookup, first match, weighted pick.
BENCHMARK(BM_RouteRequest);

static void BM_LbPick(benchmark::State &state)
{
	int kind = int(state.range(0));
	micro_lb_setup(kind);
	size_t i = 0;
	for (auto _ : state)
		benchmark::DoNotOptimize(micro_lb_pick(kind, i++));
}
// 0 least request, 1 round robin, 2 random, 3 ring hash, 4 Maglev (10 endpoints).
BENCHMARK(BM_LbPick)->DenseRange(0, 4);

BENCHMARK_MAIN();
