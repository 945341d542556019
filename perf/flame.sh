#!/usr/bin/env bash
# A flame graph of ringside under a fixed request rate, in one command:
# builds the release, starts an nginx origin (CPU 0) and one ringside shard
# (CPU 1), drives it at RATE requests/s from CPU 0, records the shard with
# `perf record -e cpu-clock` (hardware counters are not available on these
# VMs) and draws perf/out/flame.svg with tools/flamegraph.py.
#
#   perf/flame.sh [--rate N] [--duration SECONDS] [--conns N] [--callgraph dwarf|fp]
#
# Environment (flags win): RATE=20000 (0: closed loop, as fast as it goes),
# DURATION=10 (seconds recorded, after 1 s of warm-up; 10s works too), CONNS=16,
# CALLGRAPH=dwarf, RINGSIDE_ARGS="..." (extra proxy flags), OUT=perf/out.
# The load is build/tools/loadgen/ringside-load (LOADGEN=path overrides); without
# it, wrk runs closed loop instead and the script says so.
# Output in $OUT: flame.svg, flame-user.svg (the samples taken in user space),
# stacks.folded, perf.data, report.txt (top symbols, by DSO), load.txt.
# perf/README.md says how to read them.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; }
die() { echo "perf/flame.sh: $*" >&2; exit 1; }
# Not SECONDS: bash counts that one up by itself.
rate="${RATE:-20000}" duration="${DURATION:-10}" conns="${CONNS:-16}"
callgraph="${CALLGRAPH:-dwarf}" out="${OUT:-perf/out}"
while [ $# -gt 0 ]; do
	case "$1" in
	--rate) rate="${2:?--rate needs a value}"; shift 2 ;;
	--duration) duration="${2:?--duration needs a value}"; shift 2 ;;
	--conns) conns="${2:?--conns needs a value}"; shift 2 ;;
	--callgraph) callgraph="${2:?--callgraph needs a value}"; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done
duration="${duration%s}" # 10s or 10
for v in rate duration conns; do
	[[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((duration > 0 && conns > 0)) || die "duration and conns must be above 0"
# Debian's liburing is built without frame pointers, so a frame-pointer walk
# (-g) stops inside it: every sample taken in io_uring_enter, most of the
# proxy's time, loses its caller (1 sample in 8 reached shard_main, against
# all of them with DWARF). DWARF unwinding copies 16 KiB of stack a sample
# and unwinds through liburing's .eh_frame; fp is the cheaper, plain -g.
case "$callgraph" in
dwarf) cg=(--call-graph "dwarf,16384") ;;
fp) cg=(-g) ;;
*) die "--callgraph is dwarf or fp, not '$callgraph'" ;;
esac

tools/deps.sh bench
build="$(tools/build.sh release)"
bin="$build/src/cmd/ringside"
loadgen="${LOADGEN:-$build/tools/loadgen/ringside-load}"
mkdir -p "$out"
tmp="$(mktemp -d)"
pids=()
cleanup() {
	local p
	for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=bench/ports.sh
source bench/ports.sh
alloc_port; origin_port=$ALLOC_PORT
alloc_port; proxy_port=$ALLOC_PORT
alloc_port; inbound_port=$ALLOC_PORT
alloc_port; admin_port=$ALLOC_PORT

# The origin of bench/compare.py: one nginx worker, a fixed 18-byte body.
user_directive=""
[ "$(id -u)" -ne 0 ] || user_directive="user $(id -un) $(id -gn);"
mkdir -p "$tmp/nginx-origin.tmp"
sed -e "s|@RUN_DIR@|$tmp|g" -e "s|@ORIGIN_PORT@|$origin_port|g" \
	-e "s|@USER_DIRECTIVE@|$user_directive|g" bench/nginx-origin.conf >"$tmp/origin.conf"
cat >"$tmp/se.yaml" <<CONF
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: origin, namespace: default}
spec:
  hosts: [origin.test]
  ports: [{number: 80, name: http}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: $origin_port}}]
CONF
taskset -c 0 nginx -p "$tmp/" -e "$tmp/origin.err" -c "$tmp/origin.conf" >"$tmp/origin.out" 2>&1 &
pids+=($!)
# shellcheck disable=SC2086 # RINGSIDE_ARGS is a list of flags
taskset -c 1 "$bin" proxy --config "$tmp/se.yaml" --concurrency 1 --listen-address 127.0.0.1 \
	--outbound-port "$proxy_port" --inbound-port "$inbound_port" --admin-port "$admin_port" \
	--stats-port 0 --health-port 0 --log-level warn ${RINGSIDE_ARGS:-} >"$tmp/ringside.log" 2>&1 &
pid=$!
pids+=("$pid")
url="http://127.0.0.1:$proxy_port/"
for _ in $(seq 100); do
	curl -sf -o /dev/null --max-time 1 -H 'Host: origin.test' "$url" && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/ringside.log" >&2; die "ringside exited at start"; }
	sleep 0.2
done
[ "$(curl -s --max-time 1 -H 'Host: origin.test' "$url")" = "hello from origin" ] ||
	{ tail -n 20 "$tmp/ringside.log" "$tmp/origin.err" >&2; die "no origin body through ringside on $url"; }

# One second of warm-up before recording, one of slack after.
load_secs=$((duration + 2))
if [ -x "$loadgen" ]; then
	load="ringside-load -c $conns -r $rate"
	[ "$rate" -ne 0 ] || load="ringside-load -c $conns, closed loop"
	taskset -c 0 timeout --kill-after=5 $((load_secs + 30)) "$loadgen" -c "$conns" -r "$rate" \
		-d "${load_secs}s" -H 'Host: origin.test' "$url" >"$out/load.txt" 2>&1 &
else
	echo "perf/flame.sh: WARNING: $loadgen is not built; wrk -c$conns runs closed loop" \
		"(as fast as it can), not at $rate requests/s: the profile is of a saturated shard" >&2
	load="wrk -c$conns closed loop (no ringside-load)"
	taskset -c 0 timeout --kill-after=5 $((load_secs + 30)) wrk -t1 -c"$conns" -d"${load_secs}s" \
		-H 'Host: origin.test' "$url" >"$out/load.txt" 2>&1 &
fi
load_pid=$!
pids+=("$load_pid")
sleep 1
kill -0 "$load_pid" 2>/dev/null || { cat "$out/load.txt" >&2; die "the load generator exited at start"; }
rm -f "$out/perf.data" "$out/perf.data.old"
perf record -e cpu-clock -F 999 "${cg[@]}" -p "$pid" -o "$out/perf.data" -- sleep "$duration" \
	2>"$tmp/perf-record.err" || { cat "$tmp/perf-record.err" >&2; die "perf record failed"; }
wait "$load_pid" || { cat "$out/load.txt" >&2; die "the load generator failed"; }
kill -0 "$pid" 2>/dev/null || { tail -n 20 "$tmp/ringside.log" >&2; die "ringside exited under load"; }

rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
title="ringside $rev, 1 shard (CPU 1): $load, ${duration} s; perf cpu-clock 999 Hz, $callgraph"
perf script -i "$out/perf.data" 2>/dev/null | tools/flamegraph.py fold >"$out/stacks.folded"
tools/flamegraph.py svg --title "$title" "$out/stacks.folded" >"$out/flame.svg"
tools/flamegraph.py svg --user-only --title "$title; user space only" "$out/stacks.folded" \
	>"$out/flame-user.svg"
{
	echo "# perf/flame.sh: $title"
	grep -E "^ *(requests|errors|warning)|Requests/sec|Socket errors|Non-2xx" "$out/load.txt" || true
	echo "## by DSO"
	perf report -i "$out/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E "^ +[0-9.]+%"
	echo "## top symbols (self)"
	perf report -i "$out/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
		grep -E "^ +[0-9.]+%" | sed -n 1,40p
} >"$out/report.txt"
sed -n 1,20p "$out/report.txt"
# ringside-load says when the target fell behind the rate (a busy machine, or
# a rate above what the shard can do): then the profile is of a saturated shard.
sed -n 's/^ *warning: /perf\/flame.sh: WARNING from the load generator: /p' "$out/load.txt" >&2
echo "samples: $(awk '{n += $NF} END {print n + 0}' "$out/stacks.folded")"
echo "flame graph: $out/flame.svg, user space only: $out/flame-user.svg"
echo "folded stacks: $out/stacks.folded, report: $out/report.txt, load: $out/load.txt"
