#!/usr/bin/env bash
# bench/h1-compare.sh — side-by-side HTTP/1.1 benchmark: direct vs ringside vs nginx vs HAProxy.
#
# In one run, with the same CPU pinning for every subject, measures:
#   (a) throughput:  wrk -t1 -c64 -d$DURATION --latency   -> requests/s
#   (b) latency:     wrk -t1 -c1  -d$DURATION --latency   -> p50/p90/p99 (µs)
# and reports the latency each proxy adds over the direct path, plus ratios
# ringside/nginx and ringside/haproxy.  See bench/README.md.
#
# Usage: bench/h1-compare.sh [--quick] [--subjects direct,ringside,nginx,haproxy]
#                            [--wait-idle SECONDS] [--help]
#   --quick            DURATION=3s (CI smoke)
#   --subjects LIST    comma-separated subset, measured in that order
#   --wait-idle SECS   first wait (at most SECS) until both CPUs are <10% busy for 1 s
# Environment:
#   DURATION=10s         length of each measured wrk run (--quick sets 3s)
#   WARMUP=2s            warm-up wrk run per subject (c64, discarded)
#   RINGSIDE_BIN=...     ringside binary (default: <repo>/build/src/cmd/ringside)
#   RINGSIDE_ARGS=...    extra flags for ringside (e.g. "--busy-poll 50us")
#   PROXY_CPU=1          CPU the proxy under test is pinned to
#   LOAD_CPU=0           CPU the origin and wrk are pinned to
#   RESULTS_DIR=...      where JSON/Markdown go (default: <repo>/bench/results)
#   KEEP_TMP=1           keep the temporary run directory (configs, logs, raw wrk output)
set -euo pipefail

ORIG_ARGS=("$@")
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

ALL_SUBJECTS="direct,ringside,ringside-busypoll,nginx,haproxy"
SUBJECTS_ARG="$ALL_SUBJECTS"
QUICK=0
WAIT_IDLE=0
ENV_DURATION="${DURATION:-}"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1; shift ;;
        --wait-idle) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "error: --wait-idle needs seconds" >&2; exit 2; }
                     WAIT_IDLE="$2"; shift 2 ;;
        --subjects) [[ $# -ge 2 ]] || { echo "error: --subjects needs a value" >&2; exit 2; }
                    SUBJECTS_ARG="$2"; shift 2 ;;
        --subjects=*) SUBJECTS_ARG="${1#--subjects=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [[ $QUICK -eq 1 ]]; then DURATION=3s; else DURATION="${DURATION:-10s}"; fi
WARMUP="${WARMUP:-2s}"
CONNS_TPUT=64
RINGSIDE_BIN="${RINGSIDE_BIN:-$REPO_ROOT/build/src/cmd/ringside}"
RESULTS_DIR="${RESULTS_DIR:-$REPO_ROOT/bench/results}"
HOST_HDR="origin.test"
EXPECTED_BODY="hello from origin"

# ---------------------------------------------------------------- subjects
IFS=',' read -r -a SUBJECTS <<<"$SUBJECTS_ARG"
for s in "${SUBJECTS[@]}"; do
    case "$s" in direct|ringside|ringside-busypoll|nginx|haproxy) ;;
        *) echo "error: unknown subject '$s' (known: $ALL_SUBJECTS)" >&2; exit 2 ;;
    esac
done
[[ ${#SUBJECTS[@]} -gt 0 ]] || { echo "error: no subjects" >&2; exit 2; }
has_subject() { local x; for x in "${SUBJECTS[@]}"; do [[ "$x" == "$1" ]] && return 0; done; return 1; }

# ---------------------------------------------------------------- helpers
log() { printf '[h1-compare] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

to_seconds() {  # 10s / 2m / 1h / 10 -> seconds
    local d="$1"
    [[ "$d" =~ ^([0-9]+)([smh]?)$ ]] || die "cannot parse duration '$d' (use e.g. 10s, 1m)"
    case "${BASH_REMATCH[2]}" in
        m) echo $((BASH_REMATCH[1] * 60)) ;;
        h) echo $((BASH_REMATCH[1] * 3600)) ;;
        *) echo "${BASH_REMATCH[1]}" ;;
    esac
}
to_seconds "$DURATION" >/dev/null   # validate early
to_seconds "$WARMUP" >/dev/null


for tool in wrk taskset curl ss awk sed timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "required tool '$tool' not found"
done
if has_subject direct || has_subject ringside || has_subject nginx || has_subject haproxy; then
    command -v nginx >/dev/null 2>&1 || die "nginx is required (origin); apt-get install nginx-light"
fi
if has_subject haproxy && ! command -v haproxy >/dev/null 2>&1; then
    die "haproxy not found; apt-get install haproxy (or drop it from --subjects)"
fi

# ---------------------------------------------------------------- pinning
NCPU="$(nproc)"
if [[ "$NCPU" -ge 2 ]]; then
    PROXY_CPU="${PROXY_CPU:-1}"
    LOAD_CPU="${LOAD_CPU:-0}"
else
    log "warning: only $NCPU CPU; everything runs on CPU 0 (numbers are not meaningful)"
    PROXY_CPU="${PROXY_CPU:-0}"
    LOAD_CPU="${LOAD_CPU:-0}"
fi
PINNING="proxy under test: taskset -c $PROXY_CPU; origin (nginx) and load generator (wrk): taskset -c $LOAD_CPU"

# ---------------------------------------------------------------- run dir + cleanup
declare -A RS_CMDLINE_S=()
RUN_DIR="$(mktemp -d /tmp/ringside-h1-compare.XXXXXX)"
ANY_FAILED=0   # a subject failed: keep RUN_DIR (logs, raw wrk output) for inspection
PIDS=()

child_pids() { pgrep -P "$1" 2>/dev/null || true; }

stop_pid() {  # stop one process we started, plus its direct children (nginx workers)
    local pid="$1" kids i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kids="$(child_pids "$pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not exit on SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for k in $kids; do
        if kill -0 "$k" 2>/dev/null; then kill -KILL "$k" 2>/dev/null || true; fi
    done
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}"
    done
    if [[ "${KEEP_TMP:-0}" == 1 || $rc -ne 0 || $ANY_FAILED -eq 1 ]]; then
        log "run directory kept: $RUN_DIR"
    else
        rm -rf "$RUN_DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

STARTED_PID=""
start_bg() {  # start_bg <name> <cpu> <cmd...>; sets STARTED_PID
    local name="$1" cpu="$2"; shift 2
    taskset -c "$cpu" "$@" >"$RUN_DIR/$name.out" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

forget_pid() {  # remove a stopped pid from PIDS
    local pid="$1" p keep=()
    for p in "${PIDS[@]}"; do [[ "$p" == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# ---------------------------------------------------------------- ports
# shellcheck source=bench/ports.sh
source "$SCRIPT_DIR/ports.sh"

# ---------------------------------------------------------------- http checks
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$@" 2>/dev/null || true; }

wait_body() {  # wait_body <url> <timeout_s> <pid>: wait until the origin body comes back
    local url="$1" t="$2" pid="$3" i body
    for ((i = 0; i < t * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        body="$(curl -s --max-time 1 -H "Host: $HOST_HDR" "$url" 2>/dev/null || true)"
        [[ "$body" == "$EXPECTED_BODY" ]] && return 0
        sleep 0.1
    done
    return 1
}

show_log_tail() {
    local f
    for f in "$@"; do
        [[ -s "$f" ]] || continue
        log "--- last lines of $(basename "$f"):"
        tail -n 20 "$f" | sed 's/^/    /' >&2
    done
}

render() {  # render <template> <output>: substitute @VAR@ placeholders
    sed -e "s|@RUN_DIR@|$RUN_DIR|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
        -e "s|@LISTEN_PORT@|${LISTEN_PORT:-}|g" -e "s|@USER_DIRECTIVE@|$USER_DIRECTIVE|g" \
        "$1" >"$2"
}

if [[ $EUID -eq 0 ]]; then
    # nginx started by root would switch its worker to "nobody"; keep it the current user.
    USER_DIRECTIVE="user $(id -un) $(id -gn);"
else
    USER_DIRECTIVE=""
fi

start_nginx() {  # start_nginx <name> <template> <cpu>; sets STARTED_PID
    local name="$1" tmpl="$2" cpu="$3"
    mkdir -p "$RUN_DIR/$name.tmp"
    render "$tmpl" "$RUN_DIR/$name.conf"
    nginx -t -q -p "$RUN_DIR/" -e "$RUN_DIR/$name.error.log" -c "$RUN_DIR/$name.conf" \
        >"$RUN_DIR/$name.configtest" 2>&1 || { cat "$RUN_DIR/$name.configtest" >&2; return 1; }
    start_bg "$name" "$cpu" nginx -p "$RUN_DIR/" -e "$RUN_DIR/$name.error.log" \
        -c "$RUN_DIR/$name.conf"
}

# ---------------------------------------------------------------- /proc sampling
cpu_sample() {  # cpu_sample <cpu>: "busy_ticks total_ticks steal_ticks"
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= 9; i++) t += $i;
                                 print t - $5 - $6, t, $9 }' /proc/stat
}
proc_ticks() {  # proc_ticks <pid>: utime+stime of pid and its direct children
    local p sum=0 v
    for p in "$1" $(child_pids "$1"); do
        v="$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)"
        sum=$((sum + v))
    done
    echo "$sum"
}
CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
busy_pct() {  # busy_pct "<before sample>" "<after sample>" -> busy % of that CPU
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]
                                     printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

# ---------------------------------------------------------------- wrk
WRK_TIMEOUT_PAD=30
run_wrk() {  # run_wrk <conns> <duration> <url> <outfile>
    local c="$1" d="$2" url="$3" out="$4" secs
    secs="$(to_seconds "$d")"
    timeout --kill-after=5 $((secs + WRK_TIMEOUT_PAD)) \
        taskset -c "$LOAD_CPU" wrk -t1 -c"$c" -d"$d" --latency -H "Host: $HOST_HDR" "$url" \
        >"$out" 2>&1
}

# parse_wrk <file> -> "rps p50 p75 p90 p99 requests sock_errors non2xx" (latencies in µs)
parse_wrk() {
    awk '
    function us(v,   n, u) {
        n = v; sub(/[a-zA-Z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") return n + 0
        if (u == "ms") return n * 1000
        if (u == "s")  return n * 1000000
        if (u == "m")  return n * 60000000
        if (u == "h")  return n * 3600000000
        return -1
    }
    /Latency Distribution/ { ld = 1; next }
    ld && $1 ~ /^[0-9.]+%$/ { p = $1; sub(/%/, "", p); lat[p + 0] = us($2); next }
    ld { ld = 0 }
    /requests in/ { req = $1 }
    /Requests\/sec:/ { rps = $2 }
    /Socket errors:/ { s = $0; gsub(/,/, "", s); split(s, a, " ")
                       errs = a[4] + a[6] + a[8] + a[10]; errtxt = $0 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    END {
        printf "%s %s %s %s %s %s %s %s\n",
            (rps == "" ? "null" : rps),
            (50 in lat ? sprintf("%.1f", lat[50]) : "null"),
            (75 in lat ? sprintf("%.1f", lat[75]) : "null"),
            (90 in lat ? sprintf("%.1f", lat[90]) : "null"),
            (99 in lat ? sprintf("%.1f", lat[99]) : "null"),
            (req == "" ? "null" : req), errs + 0, non2xx + 0
    }' "$1"
}

# ---------------------------------------------------------------- results
declare -A ST REASON RPS P50 P75 P90 P99 T_P50 T_P99 REQ64 REQ1 ERR64 ERR1 NON64 NON1
declare -A LOADBUSY PROXYBUSY PROXYSELF STEAL PROXY_CPU_US
NOTES=()

wrk_phase() {  # wrk_phase <subject> <proxy-pid or ""> <phase> <conns> <duration> <url> <out>
    # runs wrk; on failure records why (proxy died / wrk failed) and returns 1
    local s="$1" ppid="$2" phase="$3" c="$4" d="$5" url="$6" out="$7" rc=0
    run_wrk "$c" "$d" "$url" "$out" || rc=$?
    proxy_died "$s" "$ppid" "$phase" && return 1
    if [[ $rc -ne 0 ]] || ! grep -q 'Requests/sec' "$out"; then
        ST[$s]=failed; ANY_FAILED=1
        REASON[$s]="wrk failed in the $phase (rc=$rc): $(grep -v -E '^(Running|  1 threads)' "$out" | head -n1 | cut -c1-160)"
        log "$s: ${REASON[$s]}"
        sed 's/^/    /' "$out" >&2
        return 1
    fi
    return 0
}

measure() {  # measure <subject> <url> <proxy-pid or "">
    local s="$1" url="$2" ppid="$3" f64="$RUN_DIR/$1.wrk-c64.txt" f1="$RUN_DIR/$1.wrk-c1.txt"
    local a b t0 t1 pt0=0 pt1=0 r e n ff
    log "$s: warm-up $WARMUP (c$CONNS_TPUT)"
    wrk_phase "$s" "$ppid" "warm-up (c$CONNS_TPUT)" "$CONNS_TPUT" "$WARMUP" "$url" \
        "$RUN_DIR/$s.wrk-warmup.txt" || return 0

    log "$s: throughput wrk -t1 -c$CONNS_TPUT -d$DURATION"
    a="$(cpu_sample "$LOAD_CPU")"; b="$(cpu_sample "$PROXY_CPU")"
    [[ -z "$ppid" ]] || pt0="$(proc_ticks "$ppid")"
    wrk_phase "$s" "$ppid" "throughput run (c$CONNS_TPUT)" "$CONNS_TPUT" "$DURATION" "$url" "$f64" \
        || return 0
    t0="$(cpu_sample "$LOAD_CPU")"; t1="$(cpu_sample "$PROXY_CPU")"
    [[ -z "$ppid" ]] || pt1="$(proc_ticks "$ppid")"

    read -r RPS[$s] T_P50[$s] _ _ T_P99[$s] REQ64[$s] ERR64[$s] NON64[$s] <<<"$(parse_wrk "$f64")"
    LOADBUSY[$s]="$(busy_pct "$a" "$t0")"
    PROXYBUSY[$s]="$(busy_pct "$b" "$t1")"
    STEAL[$s]="$(awk -v a="$a" -v b="$t0" -v c="$b" -v d="$t1" 'BEGIN {
        split(a, x, " "); split(b, y, " "); split(c, u, " "); split(d, v, " ")
        t = (y[2] - x[2]) + (v[2] - u[2])
        printf "%.1f", (t > 0 ? 100 * ((y[3] - x[3]) + (v[3] - u[3])) / t : 0) }')"
    # share of the proxy CPU used by the proxy itself; the rest is other work on that CPU
    PROXYSELF[$s]="$(awk -v p="$((pt1 - pt0))" -v a="$b" -v b="$t1" 'BEGIN {
        split(a, x, " "); split(b, y, " "); t = y[2] - x[2]
        printf "%.0f", (t > 0 ? 100 * p / t : 0) }')"
    if [[ -n "$ppid" && "${REQ64[$s]}" != null && "${REQ64[$s]}" -gt 0 ]]; then
        PROXY_CPU_US[$s]="$(awk -v t="$((pt1 - pt0))" -v hz="$CLK_TCK" -v n="${REQ64[$s]}" \
            'BEGIN { printf "%.2f", t * 1000000 / hz / n }')"
    else
        PROXY_CPU_US[$s]=null
    fi
    if [[ -z "$ppid" ]] && (( PROXYBUSY[$s] > 10 )); then
        NOTES+=("$s c$CONNS_TPUT: CPU $PROXY_CPU (idle for this subject) was ${PROXYBUSY[$s]}% busy — other work is running on the machine")
    elif (( PROXYBUSY[$s] - PROXYSELF[$s] > 10 )); then
        NOTES+=("$s c$CONNS_TPUT: CPU $PROXY_CPU was ${PROXYBUSY[$s]}% busy but the subject's proxy process used only ${PROXYSELF[$s]}% of it — other work ran on the proxy CPU; this row is contaminated")
    fi

    log "$s: latency wrk -t1 -c1 -d$DURATION"
    wrk_phase "$s" "$ppid" "latency run (c1)" 1 "$DURATION" "$url" "$f1" || return 0
    read -r _ P50[$s] P75[$s] P90[$s] P99[$s] REQ1[$s] ERR1[$s] NON1[$s] <<<"$(parse_wrk "$f1")"

    ST[$s]=ok
    for r in 64 1; do
        if [[ $r == 64 ]]; then e="${ERR64[$s]}"; n="${NON64[$s]}"; ff="$f64"
        else e="${ERR1[$s]}"; n="${NON1[$s]}"; ff="$f1"; fi
        if [[ "$e" != 0 || "$n" != 0 ]]; then
            NOTES+=("$s c$r: wrk reported $(grep -h -E 'Socket errors|Non-2xx' "$ff" | sed 's/^ *//' | tr '\n' ';' | sed 's/;$//')")
        fi
    done
    if [[ "${RPS[$s]}" == null || "${P50[$s]}" == null ]]; then
        ST[$s]=failed; ANY_FAILED=1; REASON[$s]="could not parse wrk output"
    fi
}

proxy_died() {  # proxy_died <subject> <pid> <phase>: true (and records why) if the proxy is gone
    local s="$1" pid="$2" phase="$3" rc=0 why
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null && return 1
    wait "$pid" 2>/dev/null || rc=$?
    if (( rc > 128 )); then why="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
    else why="exit status $rc"; fi
    ST[$s]=failed; ANY_FAILED=1
    REASON[$s]="proxy process exited during the $phase ($why)"
    log "$s: ${REASON[$s]}"
    show_log_tail "$RUN_DIR/$s.out"
    NOTES+=("$s: ${REASON[$s]}; last log line: $(tail -n1 "$RUN_DIR/$s.out" 2>/dev/null | cut -c1-200)")
    return 0
}

skip() { [[ "$1" == ringside && ! -x "$RINGSIDE_BIN" ]] || ANY_FAILED=1; ST[$1]=skipped; REASON[$1]="$2"; log "$1: SKIPPED — $2"; }

# ---------------------------------------------------------------- background load
# 1 s sample of both CPUs before anything starts: other work on the machine (builds, tests)
# shows up here and in the cpu% of the direct run, and makes every number noisier.
sample_background() {
    local bl0 bp0
    bl0="$(cpu_sample "$LOAD_CPU")"; bp0="$(cpu_sample "$PROXY_CPU")"
    sleep 1
    BG_LOAD="$(busy_pct "$bl0" "$(cpu_sample "$LOAD_CPU")")"
    BG_PROXY="$(busy_pct "$bp0" "$(cpu_sample "$PROXY_CPU")")"
}
sample_background
if (( WAIT_IDLE > 0 )); then
    idle_deadline=$((SECONDS + WAIT_IDLE))
    while (( (BG_LOAD >= 10 || BG_PROXY >= 10) && SECONDS < idle_deadline )); do
        log "waiting for an idle machine (CPU $LOAD_CPU ${BG_LOAD}%, CPU $PROXY_CPU ${BG_PROXY}%)"
        sleep 4
        sample_background
    done
fi
log "background busy before the run: CPU $LOAD_CPU ${BG_LOAD}%, CPU $PROXY_CPU ${BG_PROXY}%"
if (( BG_LOAD > 10 || BG_PROXY > 10 )); then
    NOTES+=("machine not idle before the run: CPU $LOAD_CPU ${BG_LOAD}% busy, CPU $PROXY_CPU ${BG_PROXY}% busy (1 s sample) — numbers are noisier than usual")
fi
RS_CMDLINE=""

# ---------------------------------------------------------------- origin
alloc_port; ORIGIN_PORT=$ALLOC_PORT
log "run dir $RUN_DIR; pinning: $PINNING"
log "origin: nginx on 127.0.0.1:$ORIGIN_PORT (CPU $LOAD_CPU)"
start_nginx nginx-origin "$SCRIPT_DIR/nginx-origin.conf" "$LOAD_CPU" || die "origin nginx config test failed"
ORIGIN_PID=$STARTED_PID
if ! wait_body "http://127.0.0.1:$ORIGIN_PORT/" 10 "$ORIGIN_PID"; then
    show_log_tail "$RUN_DIR/nginx-origin.out" "$RUN_DIR/nginx-origin.error.log"
    die "origin did not come up"
fi

# ---------------------------------------------------------------- subjects
for s in "${SUBJECTS[@]}"; do
    case "$s" in
    direct)
        measure direct "http://127.0.0.1:$ORIGIN_PORT/" ""
        ;;
    nginx)
        alloc_port; LISTEN_PORT=$ALLOC_PORT
        if ! start_nginx nginx-proxy "$SCRIPT_DIR/nginx-proxy.conf" "$PROXY_CPU"; then
            skip nginx "nginx proxy config test failed"; continue
        fi
        pid=$STARTED_PID
        if wait_body "http://127.0.0.1:$LISTEN_PORT/" 10 "$pid"; then
            log "nginx: proxy on 127.0.0.1:$LISTEN_PORT (CPU $PROXY_CPU)"
            measure nginx "http://127.0.0.1:$LISTEN_PORT/" "$pid"
        else
            show_log_tail "$RUN_DIR/nginx-proxy.out" "$RUN_DIR/nginx-proxy.error.log"
            skip nginx "proxy did not return the origin body"
        fi
        stop_pid "$pid"; forget_pid "$pid"
        ;;
    haproxy)
        alloc_port; LISTEN_PORT=$ALLOC_PORT
        render "$SCRIPT_DIR/haproxy.cfg" "$RUN_DIR/haproxy.cfg"
        if ! haproxy -c -q -f "$RUN_DIR/haproxy.cfg" >"$RUN_DIR/haproxy.configtest" 2>&1; then
            cat "$RUN_DIR/haproxy.configtest" >&2
            skip haproxy "haproxy config check failed"; continue
        fi
        start_bg haproxy "$PROXY_CPU" haproxy -db -f "$RUN_DIR/haproxy.cfg"
        pid=$STARTED_PID
        if wait_body "http://127.0.0.1:$LISTEN_PORT/" 10 "$pid"; then
            log "haproxy: proxy on 127.0.0.1:$LISTEN_PORT (CPU $PROXY_CPU)"
            measure haproxy "http://127.0.0.1:$LISTEN_PORT/" "$pid"
        else
            show_log_tail "$RUN_DIR/haproxy.out"
            skip haproxy "proxy did not return the origin body"
        fi
        stop_pid "$pid"; forget_pid "$pid"
        ;;
    ringside|ringside-busypoll)
        if [[ ! -x "$RINGSIDE_BIN" ]]; then
            skip "$s" "binary not found or not executable: $RINGSIDE_BIN (build it, or set RINGSIDE_BIN)"
            continue
        fi
        alloc_port; RS_OUT=$ALLOC_PORT
        alloc_port; RS_IN=$ALLOC_PORT
        alloc_port; RS_ADMIN=$ALLOC_PORT
        alloc_port; RS_STATS=$ALLOC_PORT
        alloc_port; RS_HEALTH=$ALLOC_PORT
        cat >"$RUN_DIR/ringside-serviceentry.yaml" <<EOF
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: origin, namespace: default}
spec:
  hosts: [$HOST_HDR]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: $ORIGIN_PORT}}]
EOF
        RS_EXTRA=()
        # keep the traffic ports on loopback when this build has the flag (default is 0.0.0.0)
        if timeout 5 "$RINGSIDE_BIN" proxy --help 2>&1 | grep -q -- '--listen-address'; then
            RS_EXTRA+=(--listen-address 127.0.0.1)
        fi
        # ringside-busypoll: the same binary spinning 50 us for work before it
        # sleeps (--busy-poll), which saves the wake-up of an idle CPU
        [[ "$s" != ringside-busypoll ]] || RS_EXTRA+=(--busy-poll 50us)
        # extra flags for the subject, e.g. RINGSIDE_ARGS="--busy-poll 50us"
        if [[ -n "${RINGSIDE_ARGS:-}" ]]; then
            read -r -a rs_args <<<"$RINGSIDE_ARGS"
            RS_EXTRA+=("${rs_args[@]}")
        fi
        start_bg "$s" "$PROXY_CPU" "$RINGSIDE_BIN" proxy \
            --config "$RUN_DIR/ringside-serviceentry.yaml" --concurrency 1 \
            --outbound-port "$RS_OUT" --inbound-port "$RS_IN" --admin-port "$RS_ADMIN" \
            --stats-port "$RS_STATS" --health-port "$RS_HEALTH" --log-level warn \
            "${RS_EXTRA[@]+"${RS_EXTRA[@]}"}"
        RS_CMDLINE_S[$s]="$RINGSIDE_BIN proxy --config <ServiceEntry> --concurrency 1 --outbound-port $RS_OUT --inbound-port $RS_IN --admin-port $RS_ADMIN --stats-port $RS_STATS --health-port $RS_HEALTH --log-level warn ${RS_EXTRA[*]+"${RS_EXTRA[*]}"}"
        log "$s: ${RS_CMDLINE_S[$s]}"; RS_CMDLINE="${RS_CMDLINE_S[ringside]:-${RS_CMDLINE_S[$s]}}"
        pid=$STARTED_PID
        ready=0
        for ((i = 0; i < 200; i++)); do   # up to 20 s
            kill -0 "$pid" 2>/dev/null || break
            if [[ "$(http_code "http://127.0.0.1:$RS_ADMIN/ready")" == 200 ]]; then ready=1; break; fi
            sleep 0.1
        done
        if [[ $ready -ne 1 ]]; then
            show_log_tail "$RUN_DIR/$s.out"
            if kill -0 "$pid" 2>/dev/null; then
                skip "$s" "GET http://127.0.0.1:$RS_ADMIN/ready did not answer 200 within 20 s"
            else
                skip "$s" "process exited before becoming ready (see log above)"
            fi
        elif ! wait_body "http://127.0.0.1:$RS_OUT/" 5 "$pid"; then
            got="$(curl -s -i --max-time 2 -H "Host: $HOST_HDR" "http://127.0.0.1:$RS_OUT/" 2>&1 | head -c 400 || true)"
            log "$s: sanity request returned: ${got:-<nothing>}"
            show_log_tail "$RUN_DIR/$s.out"
            skip "$s" "ready, but GET / with Host: $HOST_HDR on the outbound port did not return the origin body"
        else
            log "$s: outbound 127.0.0.1:$RS_OUT admin :$RS_ADMIN (CPU $PROXY_CPU)"
            measure "$s" "http://127.0.0.1:$RS_OUT/" "$pid"
        fi
        if [[ -s "$RUN_DIR/$s.out" ]]; then
            n="$(wc -l <"$RUN_DIR/$s.out")"
            NOTES+=("$s wrote $n line(s) to stdout/stderr at --log-level warn; first: $(head -n1 "$RUN_DIR/$s.out" | cut -c1-200)")
        fi
        stop_pid "$pid"; forget_pid "$pid"
        ;;
    esac
done

# origin health after the run: did it survive?
kill -0 "$ORIGIN_PID" 2>/dev/null || NOTES+=("origin nginx exited during the run")

# ---------------------------------------------------------------- derived numbers
num_or_null() { [[ -n "${1:-}" ]] && echo "$1" || echo null; }
sub_or_null() {
    if [[ "$1" != null && "$2" != null ]]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'
    else echo null; fi
}
ratio_or_null() {  # a/b with b>0
    [[ "$1" != null && "$2" != null ]] || { echo null; return; }
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "null" }'
}

declare -A ADD50 ADD90 ADD99
for s in "${SUBJECTS[@]}"; do
    ADD50[$s]=null; ADD90[$s]=null; ADD99[$s]=null
    [[ "${ST[$s]}" == ok && "$s" != direct && "${ST[direct]:-}" == ok ]] || continue
    ADD50[$s]="$(sub_or_null "${P50[$s]}" "${P50[direct]}")"
    ADD90[$s]="$(sub_or_null "${P90[$s]}" "${P90[direct]}")"
    ADD99[$s]="$(sub_or_null "${P99[$s]}" "${P99[direct]}")"
done
okv() { [[ "${ST[$1]:-}" == ok ]] && echo "$2" || echo null; }
R_RPS_NGINX="$(ratio_or_null "$(okv ringside "${RPS[ringside]:-null}")" "$(okv nginx "${RPS[nginx]:-null}")")"
R_RPS_HAPROXY="$(ratio_or_null "$(okv ringside "${RPS[ringside]:-null}")" "$(okv haproxy "${RPS[haproxy]:-null}")")"
R_ADD_NGINX="$(ratio_or_null "${ADD50[ringside]:-null}" "${ADD50[nginx]:-null}")"
R_ADD_HAPROXY="$(ratio_or_null "${ADD50[ringside]:-null}" "${ADD50[haproxy]:-null}")"
R_BP_RPS_NGINX="$(ratio_or_null "$(okv ringside-busypoll "${RPS[ringside-busypoll]:-null}")" "$(okv nginx "${RPS[nginx]:-null}")")"
R_BP_ADD_NGINX="$(ratio_or_null "${ADD50[ringside-busypoll]:-null}" "${ADD50[nginx]:-null}")"
R_BP_ADD_HAPROXY="$(ratio_or_null "${ADD50[ringside-busypoll]:-null}" "${ADD50[haproxy]:-null}")"

# ---------------------------------------------------------------- metadata
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
DATE_ISO="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
KERNEL="$(uname -r)"
CPU_MODEL="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
[[ -n "$CPU_MODEL" ]] || CPU_MODEL="$(uname -m)"
WRK_VER="$(wrk -v 2>&1 | head -n1 | sed -e 's/ *Copyright.*//' -e 's/ *$//' || true)"
NGINX_VER="$(nginx -v 2>&1 | sed 's/^nginx version: //' || true)"
HAPROXY_VER="$( (command -v haproxy >/dev/null && haproxy -v 2>&1 | head -n1 | awk '{print $3}') || echo n/a)"
RINGSIDE_VER="n/a"
if [[ -x "$RINGSIDE_BIN" ]]; then
    RINGSIDE_VER="$(timeout 5 "$RINGSIDE_BIN" version 2>/dev/null | head -n1 || true)"
    [[ -n "$RINGSIDE_VER" ]] || RINGSIDE_VER="unknown"
fi
GIT_REV="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
if [[ "$GIT_REV" != none ]] && [[ -n "$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null | head -n1)" ]]; then
    GIT_REV="$GIT_REV-dirty"
fi
shq() {  # quote for a shell only when needed
    if [[ "$1" =~ ^[A-Za-z0-9_,./=:+@%-]+$ ]]; then printf '%s' "$1"; else printf '%q' "$1"; fi
}
CMD=""
for v in DURATION WARMUP RINGSIDE_BIN PROXY_CPU LOAD_CPU; do
    case $v in
        DURATION) [[ -n "$ENV_DURATION" && $QUICK -eq 0 ]] && CMD+="DURATION=$(shq "$ENV_DURATION") " ;;
        *) if [[ -n "${!v+x}" ]] && printenv "$v" >/dev/null 2>&1; then CMD+="$v=$(shq "${!v}") "; fi ;;
    esac
done
CMD+="$(shq "${SCRIPT_DIR#"$REPO_ROOT"/}/$(basename "$0")")"   # relative to the repo root
for a in "${ORIG_ARGS[@]+"${ORIG_ARGS[@]}"}"; do CMD+=" $(shq "$a")"; done

# ---------------------------------------------------------------- text table
fmt() { [[ "$1" == null || -z "$1" ]] && echo "-" || echo "$1"; }
fmt0() { if [[ "$1" == null || -z "$1" ]]; then echo "-"; else awk -v a="$1" 'BEGIN { printf "%.0f", a }'; fi; }

echo
echo "HTTP/1.1 side by side — $DATE_ISO"
echo "machine : $(uname -n) | kernel $KERNEL | nproc $NCPU | $CPU_MODEL"
echo "pinning : $PINNING"
echo "idle    : background busy before the run (1 s): CPU $LOAD_CPU ${BG_LOAD}%, CPU $PROXY_CPU ${BG_PROXY}%"
echo "load    : wrk -t1 -c$CONNS_TPUT -d$DURATION --latency (throughput), wrk -t1 -c1 -d$DURATION --latency (latency); warm-up $WARMUP at c$CONNS_TPUT; Host: $HOST_HDR"
echo "versions: $WRK_VER | nginx $NGINX_VER | haproxy $HAPROXY_VER | $RINGSIDE_VER (rev $GIT_REV)"
echo "command : $CMD"
echo
printf '%-9s %10s %9s %9s %9s %10s %10s %8s %8s %9s\n' \
    subject "rps(c64)" "p50(c1)" "p90(c1)" "p99(c1)" "+p50(c1)" "+p99(c1)" "cpu0%" "cpu1%" "proxy-cpu"
printf '%-9s %10s %9s %9s %9s %10s %10s %8s %8s %9s\n' \
    "" "req/s" "µs" "µs" "µs" "µs" "µs" "(c64)" "(c64)" "µs/req"
for s in "${SUBJECTS[@]}"; do
    if [[ "${ST[$s]}" != ok ]]; then
        printf '%-9s %s: %s\n' "$s" "${ST[$s]}" "${REASON[$s]}"
        continue
    fi
    printf '%-9s %10s %9s %9s %9s %10s %10s %8s %8s %9s\n' "$s" "$(fmt0 "${RPS[$s]}")" \
        "$(fmt0 "${P50[$s]}")" "$(fmt0 "${P90[$s]}")" "$(fmt0 "${P99[$s]}")" \
        "$(fmt0 "${ADD50[$s]}")" "$(fmt0 "${ADD99[$s]}")" \
        "${LOADBUSY[$s]}" "${PROXYBUSY[$s]}" "$(fmt "${PROXY_CPU_US[$s]}")"
done
echo
echo "ratios (same run, same pinning):"
echo "  ringside rps / nginx rps             : $(fmt "$R_RPS_NGINX")"
echo "  ringside rps / haproxy rps           : $(fmt "$R_RPS_HAPROXY")"
echo "  ringside added p50 / nginx added p50 : $(fmt "$R_ADD_NGINX")"
echo "  ringside added p50 / haproxy added p50: $(fmt "$R_ADD_HAPROXY")"
echo "  ringside-busypoll rps / nginx rps             : $(fmt "$R_BP_RPS_NGINX")"
echo "  ringside-busypoll added p50 / nginx added p50 : $(fmt "$R_BP_ADD_NGINX")"
echo "  ringside-busypoll added p50 / haproxy added p50: $(fmt "$R_BP_ADD_HAPROXY")"
echo "(cpu0%/cpu1% = busy share of CPU $LOAD_CPU (origin+wrk) and CPU $PROXY_CPU (proxy) during the c$CONNS_TPUT run;"
echo " if cpu$LOAD_CPU is ~100% and cpu$PROXY_CPU is not, the c$CONNS_TPUT rps is limited by origin+wrk, not by the proxy)"
if [[ ${#NOTES[@]} -gt 0 ]]; then
    echo
    echo "notes:"
    for n in "${NOTES[@]}"; do echo "  - $n"; done
fi

# ---------------------------------------------------------------- JSON + Markdown
mkdir -p "$RESULTS_DIR"
JSON="$RESULTS_DIR/h1-compare-$STAMP.json"
MD="$RESULTS_DIR/h1-compare-$STAMP.md"

jstr() {  # JSON string literal
    local s="$1"
    s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//$'\t'/\\t}"; s="${s//$'\n'/\\n}"; s="${s//$'\r'/}"
    printf '"%s"' "$s"
}
jnum() { [[ -z "${1:-}" || "$1" == null ]] && echo null || echo "$1"; }

{
    echo "{"
    echo "  \"benchmark\": \"h1-compare\","
    echo "  \"date\": $(jstr "$DATE_ISO"),"
    echo "  \"command\": $(jstr "$CMD"),"
    echo "  \"machine\": {\"hostname\": $(jstr "$(uname -n)"), \"kernel\": $(jstr "$KERNEL"), \"nproc\": $NCPU, \"cpu_model\": $(jstr "$CPU_MODEL")},"
    echo "  \"pinning\": {\"proxy_cpu\": $PROXY_CPU, \"origin_cpu\": $LOAD_CPU, \"loadgen_cpu\": $LOAD_CPU, \"description\": $(jstr "$PINNING")},"
    echo "  \"background_busy_pct_before_run\": {\"load_cpu\": $BG_LOAD, \"proxy_cpu\": $BG_PROXY},"
    echo "  \"ringside_command\": $(if [[ -n "$RS_CMDLINE" ]]; then jstr "$RS_CMDLINE"; else echo null; fi),"
    echo "  \"load\": {\"tool\": $(jstr "$WRK_VER"), \"threads\": 1, \"throughput_connections\": $CONNS_TPUT, \"latency_connections\": 1, \"duration\": $(jstr "$DURATION"), \"warmup\": $(jstr "$WARMUP"), \"host_header\": $(jstr "$HOST_HDR"), \"response_body\": $(jstr "$EXPECTED_BODY"$'\n')},"
    echo "  \"versions\": {\"nginx\": $(jstr "$NGINX_VER"), \"haproxy\": $(jstr "$HAPROXY_VER"), \"ringside\": $(jstr "$RINGSIDE_VER"), \"ringside_git\": $(jstr "$GIT_REV"), \"ringside_bin\": $(jstr "$RINGSIDE_BIN")},"
    echo "  \"units\": {\"latency\": \"us\", \"throughput\": \"requests/s\", \"cpu_busy\": \"percent of one CPU\", \"proxy_cpu_per_request\": \"us\"},"
    echo "  \"subjects\": ["
    first=1
    for s in "${SUBJECTS[@]}"; do
        [[ $first -eq 1 ]] || echo ","
        first=0
        if [[ "${ST[$s]}" != ok ]]; then
            printf '    {"name": %s, "status": %s, "reason": %s}' "$(jstr "$s")" "$(jstr "${ST[$s]}")" "$(jstr "${REASON[$s]}")"
            continue
        fi
        printf '    {"name": %s, "status": "ok",\n' "$(jstr "$s")"
        printf '     "c64": {"rps": %s, "requests": %s, "p50_us": %s, "p99_us": %s, "socket_errors": %s, "non_2xx_3xx": %s, "load_cpu_busy_pct": %s, "proxy_cpu_busy_pct": %s, "proxy_process_pct_of_proxy_cpu": %s, "steal_pct": %s, "proxy_cpu_us_per_request": %s},\n' \
            "$(jnum "${RPS[$s]}")" "$(jnum "${REQ64[$s]}")" "$(jnum "${T_P50[$s]}")" "$(jnum "${T_P99[$s]}")" \
            "$(jnum "${ERR64[$s]}")" "$(jnum "${NON64[$s]}")" "$(jnum "${LOADBUSY[$s]}")" \
            "$(jnum "${PROXYBUSY[$s]}")" "$(jnum "${PROXYSELF[$s]}")" "$(jnum "${STEAL[$s]}")" "$(jnum "${PROXY_CPU_US[$s]}")"
        printf '     "c1": {"p50_us": %s, "p75_us": %s, "p90_us": %s, "p99_us": %s, "requests": %s, "socket_errors": %s, "non_2xx_3xx": %s},\n' \
            "$(jnum "${P50[$s]}")" "$(jnum "${P75[$s]}")" "$(jnum "${P90[$s]}")" "$(jnum "${P99[$s]}")" \
            "$(jnum "${REQ1[$s]}")" "$(jnum "${ERR1[$s]}")" "$(jnum "${NON1[$s]}")"
        printf '     "added_over_direct_c1": {"p50_us": %s, "p90_us": %s, "p99_us": %s}}' \
            "$(jnum "${ADD50[$s]}")" "$(jnum "${ADD90[$s]}")" "$(jnum "${ADD99[$s]}")"
    done
    echo
    echo "  ],"
    echo "  \"ratios\": {\"ringside_rps_over_nginx_rps\": $R_RPS_NGINX, \"ringside_rps_over_haproxy_rps\": $R_RPS_HAPROXY, \"ringside_added_p50_over_nginx_added_p50\": $R_ADD_NGINX, \"ringside_added_p50_over_haproxy_added_p50\": $R_ADD_HAPROXY, \"ringside_busypoll_rps_over_nginx_rps\": $R_BP_RPS_NGINX, \"ringside_busypoll_added_p50_over_nginx_added_p50\": $R_BP_ADD_NGINX, \"ringside_busypoll_added_p50_over_haproxy_added_p50\": $R_BP_ADD_HAPROXY},"
    printf '  "notes": ['
    first=1
    for n in "${NOTES[@]+"${NOTES[@]}"}"; do
        [[ $first -eq 1 ]] || printf ', '
        first=0
        printf '%s' "$(jstr "$n")"
    done
    echo "]"
    echo "}"
} >"$JSON"

{
    echo "# HTTP/1.1 side by side — $DATE_ISO"
    echo
    echo "- machine: \`$(uname -n)\`, kernel \`$KERNEL\`, nproc $NCPU, CPU \`$CPU_MODEL\`"
    echo "- pinning: $PINNING"
    echo "- background busy before the run (1 s): CPU $LOAD_CPU ${BG_LOAD}%, CPU $PROXY_CPU ${BG_PROXY}%"
    [[ -z "$RS_CMDLINE" ]] || echo "- ringside: \`$RS_CMDLINE\`"
    echo "- load: \`wrk -t1 -c$CONNS_TPUT -d$DURATION --latency\` (throughput) and \`wrk -t1 -c1 -d$DURATION --latency\` (latency), warm-up $WARMUP at c$CONNS_TPUT, \`Host: $HOST_HDR\`, origin body \`$EXPECTED_BODY\\n\`"
    echo "- versions: $WRK_VER; nginx $NGINX_VER; haproxy $HAPROXY_VER; $RINGSIDE_VER (rev \`$GIT_REV\`)"
    echo "- command: \`$CMD\`"
    echo
    echo "| subject | rps (c64) | p50 c1 (µs) | p90 c1 (µs) | p99 c1 (µs) | added p50 (µs) | added p99 (µs) | CPU$LOAD_CPU busy % (c64) | CPU$PROXY_CPU busy % (c64) | proxy CPU µs/req |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for s in "${SUBJECTS[@]}"; do
        if [[ "${ST[$s]}" != ok ]]; then
            echo "| $s | ${ST[$s]}: ${REASON[$s]} | | | | | | | | |"
            continue
        fi
        echo "| $s | $(fmt0 "${RPS[$s]}") | $(fmt0 "${P50[$s]}") | $(fmt0 "${P90[$s]}") | $(fmt0 "${P99[$s]}") | $(fmt0 "${ADD50[$s]}") | $(fmt0 "${ADD99[$s]}") | ${LOADBUSY[$s]} | ${PROXYBUSY[$s]} | $(fmt "${PROXY_CPU_US[$s]}") |"
    done
    echo
    echo "| ratio | value |"
    echo "|---|---:|"
    echo "| ringside rps / nginx rps | $(fmt "$R_RPS_NGINX") |"
    echo "| ringside-busypoll rps / nginx rps | $(fmt "$R_BP_RPS_NGINX") |"
    echo "| ringside-busypoll added p50 / nginx added p50 | $(fmt "$R_BP_ADD_NGINX") |"
    echo "| ringside-busypoll added p50 / haproxy added p50 | $(fmt "$R_BP_ADD_HAPROXY") |"
    echo "| ringside rps / haproxy rps | $(fmt "$R_RPS_HAPROXY") |"
    echo "| ringside added p50 / nginx added p50 | $(fmt "$R_ADD_NGINX") |"
    echo "| ringside added p50 / haproxy added p50 | $(fmt "$R_ADD_HAPROXY") |"
    if [[ ${#NOTES[@]} -gt 0 ]]; then
        echo
        echo "Notes:"
        echo
        for n in "${NOTES[@]}"; do echo "- $n"; done
    fi
} >"$MD"

echo
echo "wrote $JSON"
echo "wrote $MD"
