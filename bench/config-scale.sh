#!/usr/bin/env bash
# bench/config-scale.sh — load, reload and memory of a large generated mesh.
#
# Generates (bench/gen-mesh.py, seeded) N ServiceEntries, N VirtualServices and
# N DestinationRules, then measures:
#   (a) `ringside validate DIR`: wall time, best and median of 5 runs, max RSS;
#   (b) `ringside proxy --config DIR --concurrency 2`: time from spawn to
#       GET /ready, then SIGHUP reloads, each waited for until /config_status
#       shows the new generation in use on every shard; reload duration_ms
#       (min/median/max) from /config_status last_reload;
#   (c) memory: VmRSS with the mesh minus VmRSS with a one-service config,
#       divided by N, and VmRSS after the reloads.
# See bench/README.md.
#
# Usage: bench/config-scale.sh [N] [--reloads K] [--seed S] [--smoke] [--help]
#   N              services (default 1000)
#   --reloads K    SIGHUP reloads (default 20)
#   --seed S       generator seed (default 1)
#   --smoke        CI smoke: N=50, 3 reloads, no result files; exits 1 on any failure
# Environment:
#   RINGSIDE_BIN=...   ringside binary (default: <repo>/build/src/cmd/ringside,
#                      else <repo>/build-bench/src/cmd/ringside)
#   RESULTS_DIR=...    where JSON/Markdown go (default: <repo>/bench/results)
#   KEEP_TMP=1         keep the temporary directory (mesh, logs, raw numbers)
# Exits 1 if validate reports an error, the proxy does not become ready,
# rejects a resource, or a reload does not apply; the 1 s target is reported,
# not enforced.
set -euo pipefail

ORIG_ARGS=("$@")
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
PY=/usr/bin/python3 # Debian's: the first python3 on PATH may be another one

N=1000
RELOADS=20
SEED=1
SMOKE=0
VALIDATE_RUNS=5

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --smoke) SMOKE=1; N=50; RELOADS=3; shift ;;
        --reloads) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "error: --reloads needs a number" >&2; exit 2; }
                   RELOADS="$2"; shift 2 ;;
        --seed) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "error: --seed needs a number" >&2; exit 2; }
                SEED="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        [0-9]*) [[ "$1" =~ ^[1-9][0-9]*$ ]] || { echo "error: N must be a positive number" >&2; exit 2; }
                N="$1"; shift ;;
        *) echo "error: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf '[config-scale] %s\n' "$*" >&2; }
die() { log "error: $*"; KEEP_TMP=1; exit 1; }

if [[ -z "${RINGSIDE_BIN:-}" ]]; then
    RINGSIDE_BIN="$REPO_ROOT/build/src/cmd/ringside"
    [[ -x "$RINGSIDE_BIN" ]] || RINGSIDE_BIN="$REPO_ROOT/build-bench/src/cmd/ringside"
fi
RESULTS_DIR_SET="${RESULTS_DIR:+1}"
RESULTS_DIR="${RESULTS_DIR:-$REPO_ROOT/bench/results}"
[[ -x "$RINGSIDE_BIN" ]] || die "no ringside binary at $RINGSIDE_BIN (build first, or set RINGSIDE_BIN)"
[[ -x "$PY" ]] || die "$PY is needed"
for t in curl ss /usr/bin/time; do
    command -v "$t" >/dev/null || die "$t is needed"
done

# ---------------------------------------------------------------- temp dir, cleanup
TMP="$(mktemp -d /tmp/config-scale.XXXXXX)"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        wait "$p" 2>/dev/null || true
    done
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The proxy watches each config directory and its parent with inotify, so the
# meshes sit alone under cfg/ and logs go elsewhere: nothing written during
# the run can trigger a reload of its own.
MESH="$TMP/cfg/mesh"
TINY="$TMP/cfg-tiny/one"
mkdir -p "$MESH" "$TINY" "$TMP/logs"
RAW="$TMP/raw" # key<TAB>value lines, read by the report at the end
: >"$RAW"
raw() { printf '%s\t%s\n' "$1" "$2" >>"$RAW"; }

# ---------------------------------------------------------------- ports
# shellcheck source=bench/ports.sh
source "$SCRIPT_DIR/ports.sh"

now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000 )) | awk '{printf "%.1f", $1 / 1000}'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Prints "generation oldest_in_use duration_ms result rejected" from /config_status.
# Matched with bash regexes rather than a JSON parser: it runs every 20 ms
# while a reload is in progress, and a Python start-up each time would take
# CPU from the reload being measured on this 2-core machine.
config_status() {
    local b
    b="$(curl -s --max-time 2 "http://127.0.0.1:$1/config_status" 2>/dev/null)" || return 0
    local re_g='"generation": *([0-9]+)' re_o='"oldest_generation_in_use": *([0-9]+)'
    local re_d='"duration_ms": *([0-9.eE+-]+)' re_r='"result": *"([a-z]+)"'
    local re_j='"rejected_resources": *([0-9]+)' g o d r j
    [[ $b =~ $re_g ]] && g=${BASH_REMATCH[1]} || return 0
    [[ $b =~ $re_o ]] && o=${BASH_REMATCH[1]} || return 0
    [[ $b =~ $re_d ]] && d=${BASH_REMATCH[1]} || return 0
    [[ $b =~ $re_r ]] && r=${BASH_REMATCH[1]} || return 0
    [[ $b =~ $re_j ]] && j=${BASH_REMATCH[1]} || return 0
    echo "$g $o $d $r $j"
}

# ---------------------------------------------------------------- machine
NCPU="$(nproc)"
CPU_MODEL="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
[[ -n "$CPU_MODEL" ]] || CPU_MODEL="$(uname -m)"
KERNEL="$(uname -r)"
GIT_REV="$(git -C "$REPO_ROOT" describe --always --dirty --abbrev=7 2>/dev/null || echo unknown)"
BUILDTYPE="$("$PY" - "$RINGSIDE_BIN" <<'EOF' 2>/dev/null || echo unknown
import json, os, sys
d = os.path.dirname(os.path.realpath(sys.argv[1]))
while d != "/" and not os.path.isdir(os.path.join(d, "meson-info")):
    d = os.path.dirname(d)
opts = json.load(open(os.path.join(d, "meson-info", "intro-buildoptions.json")))
v = {o["name"]: o["value"] for o in opts}
print(f'{v["buildtype"]}, allocator {v.get("allocator", "?")}, sanitize {v["b_sanitize"]}')
EOF
)"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
raw ncpu "$NCPU"; raw cpu_model "$CPU_MODEL"; raw kernel "$KERNEL"; raw git "$GIT_REV"
raw build "$BUILDTYPE"; raw bin "$RINGSIDE_BIN"; raw n "$N"; raw reloads "$RELOADS"
raw seed "$SEED"; raw smoke "$SMOKE"; raw stamp "$STAMP"
# An allocator setting changes the memory figures: say so in the report.
while IFS= read -r e; do raw env "$e"; done < <(env | grep -E '^(MIMALLOC|MALLOC)_' | sort || true)
raw command "bench/config-scale.sh${ORIG_ARGS[*]+ ${ORIG_ARGS[*]}}"

# ---------------------------------------------------------------- 1. generate
log "generating $N services (seed $SEED) into $MESH"
GEN="$("$PY" "$SCRIPT_DIR/gen-mesh.py" "$N" "$MESH" --seed "$SEED")" || die "gen-mesh.py failed"
raw gen "$GEN"
cat >"$TINY/one.yaml" <<'EOF'
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: one
  namespace: default
spec:
  hosts:
  - one.default.svc.cluster.local
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
  - address: 10.0.0.1
EOF

# ---------------------------------------------------------------- 2a. validate
log "validate: $VALIDATE_RUNS runs"
for ((i = 1; i <= VALIDATE_RUNS; i++)); do
    t0=$(now_ns)
    rc=0
    /usr/bin/time -f '%M' -o "$TMP/logs/time.$i" "$RINGSIDE_BIN" validate "$MESH" \
        >"$TMP/logs/validate.$i" 2>&1 || rc=$?
    ms=$(ms_since "$t0")
    raw validate_ms "$ms"
    raw validate_maxrss_kb "$(tail -n1 "$TMP/logs/time.$i")"
    if [[ $rc -ne 0 ]]; then
        sed 's/^/  /' "$TMP/logs/validate.$i" | head -20 >&2
        die "ringside validate exited $rc"
    fi
done
cp "$TMP/logs/validate.1" "$TMP/validate.out"
NERR=$(grep -c ': error: ' "$TMP/validate.out" || true)
NWARN=$(grep -c ': warning: ' "$TMP/validate.out" || true)
NOTHER=$(grep -vc -e ': error: ' -e ': warning: ' "$TMP/validate.out" || true)
raw validate_errors "$NERR"; raw validate_warnings "$NWARN"; raw validate_other_lines "$NOTHER"
[[ $NERR -eq 0 ]] || die "validate printed $NERR error(s) (exit 0): see $TMP/validate.out"
[[ $NOTHER -eq 0 ]] || die "validate printed $NOTHER unexpected line(s): see $TMP/validate.out"
# Warnings grouped by message, positions and resource names cut off.
sed -n 's/^.*: warning: //p' "$TMP/validate.out" | sort | uniq -c | sort -rn |
    while read -r count msg; do raw warning "$count	$msg"; done

# ---------------------------------------------------------------- 2b/2c. proxy
PROXY_PID=""
ADMIN=""
start_proxy() {  # start_proxy <config dir> <log>: sets PROXY_PID, ADMIN; records start_ms
    local cfg="$1" plog="$2" t0 i
    alloc_port; local out=$ALLOC_PORT
    alloc_port; local in=$ALLOC_PORT
    alloc_port; ADMIN=$ALLOC_PORT
    alloc_port; local stats=$ALLOC_PORT
    alloc_port; local health=$ALLOC_PORT
    t0=$(now_ns)
    "$RINGSIDE_BIN" proxy --config "$cfg" --concurrency 2 --listen-address 127.0.0.1 \
        --outbound-port "$out" --inbound-port "$in" --admin-port "$ADMIN" \
        --stats-port "$stats" --health-port "$health" --log-level info 2>"$plog" &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    for ((i = 0; i < 3000; i++)); do  # 30 s
        kill -0 "$PROXY_PID" 2>/dev/null || { tail -n 20 "$plog" >&2; die "proxy exited during start"; }
        if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$ADMIN/ready"; then
            START_MS=$(ms_since "$t0")
            return 0
        fi
        sleep 0.01
    done
    tail -n 20 "$plog" >&2
    die "proxy not ready in 30 s"
}
stop_proxy() {
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PIDS=()
}

log "proxy: one-service config (baseline)"
start_proxy "$TINY" "$TMP/logs/proxy-tiny.log"
sleep 0.5 # let the shards settle after /ready
raw tiny_start_ms "$START_MS"
raw tiny_rss_kb "$(rss_kb "$PROXY_PID")"
stop_proxy

log "proxy: $N services, $RELOADS reloads"
PLOG="$TMP/logs/proxy-mesh.log"
start_proxy "$MESH" "$PLOG"
sleep 0.5
raw mesh_start_ms "$START_MS"
raw mesh_rss_kb "$(rss_kb "$PROXY_PID")"
read -r GEN0 _ _ RESULT0 REJ0 <<<"$(config_status "$ADMIN")" || true
[[ -n "${GEN0:-}" ]] || die "cannot read /config_status"
[[ "$RESULT0" == applied && "$REJ0" == 0 ]] ||
    die "start load: result $RESULT0, $REJ0 resource(s) rejected (see $PLOG)"
gen=$GEN0
for ((r = 1; r <= RELOADS; r++)); do
    t0=$(now_ns)
    kill -HUP "$PROXY_PID"
    ok=0
    for ((i = 0; i < 1500; i++)); do  # 30 s
        kill -0 "$PROXY_PID" 2>/dev/null || die "proxy exited during reload $r (see $PLOG)"
        read -r g oldest ms result rej <<<"$(config_status "$ADMIN")" || true
        if [[ "${g:-0}" -gt "$gen" && "$oldest" == "$g" ]]; then
            ok=1
            break
        fi
        sleep 0.02
    done
    [[ $ok -eq 1 ]] || die "reload $r did not apply in 30 s (see $PLOG)"
    [[ $g -eq $((gen + 1)) ]] || die "reload $r: generation went from $gen to $g"
    [[ "$result" == applied && "$rej" == 0 ]] || die "reload $r: result $result, $rej rejected"
    gen=$g
    raw reload_ms "$ms"
    raw reload_seen_ms "$(ms_since "$t0")"
    raw reload_rss_kb "$(rss_kb "$PROXY_PID")"
done
sleep 0.5
raw mesh_rss_after_kb "$(rss_kb "$PROXY_PID")"
stop_proxy
sed -n 's/.*config: generation [0-9]* applied (SIGHUP) in \([0-9.]*\) ms.*/\1/p' "$PLOG" |
    while read -r ms; do raw log_reload_ms "$ms"; done
NLOG=$(grep -c 'config: generation [0-9]* applied (SIGHUP)' "$PLOG" || true)
[[ $NLOG -eq $RELOADS ]] || die "$NLOG reload log line(s) for $RELOADS SIGHUPs (see $PLOG)"
grep -q -e ' error ' -e ' warn ' "$PLOG" && {
    grep -e ' error ' -e ' warn ' "$PLOG" | head -5 >&2
    die "the proxy logged warnings or errors (see $PLOG)"
}

# ---------------------------------------------------------------- 3. report
if [[ $SMOKE -eq 1 && -z "${RESULTS_DIR_SET:-}" ]]; then OUTDIR=""; else OUTDIR="$RESULTS_DIR"; fi
"$PY" - "$RAW" "$OUTDIR" <<'EOF'
import json, os, statistics, sys

raw, outdir = sys.argv[1], sys.argv[2]
one, many = {}, {}
for line in open(raw):
    k, v = line.rstrip("\n").split("\t", 1)
    one[k] = v
    many.setdefault(k, []).append(v)

def nums(k):
    return [float(x) for x in many.get(k, [])]

def mmm(v):
    return {"min": min(v), "median": statistics.median(v), "max": max(v)} if v else None

n = int(one["n"])
gen = json.loads(one["gen"])
val = nums("validate_ms")
tiny_kb, mesh_kb, after_kb = (int(one[k]) for k in ("tiny_rss_kb", "mesh_rss_kb", "mesh_rss_after_kb"))
reload_ms = nums("reload_ms")
res = {
    "benchmark": "config-scale",
    "date": one["stamp"],
    "command": one["command"],
    "environment": many.get("env", []),
    "machine": {"nproc": int(one["ncpu"]), "cpu_model": one["cpu_model"], "kernel": one["kernel"]},
    "ringside": {"git": one["git"], "bin": one["bin"], "build": one["build"]},
    "mesh": gen,
    "validate": {
        "runs": len(val), "wall_ms": val, "best_ms": min(val), "median_ms": statistics.median(val),
        "max_rss_kb": max(int(x) for x in many["validate_maxrss_kb"]),
        "errors": int(one["validate_errors"]), "warnings": int(one["validate_warnings"]),
        "warnings_by_message": [dict(zip(("count", "message"), (int(c), m)))
                                for c, m in (w.split("\t", 1) for w in many.get("warning", []))],
    },
    "proxy": {
        "command": "ringside proxy --config DIR --concurrency 2 --listen-address 127.0.0.1 ...",
        "start_to_ready_ms": float(one["mesh_start_ms"]),
        "start_to_ready_ms_one_service": float(one["tiny_start_ms"]),
        "reloads": len(reload_ms),
        "reload_duration_ms": mmm(reload_ms), "reload_duration_ms_all": reload_ms,
        "reload_duration_ms_from_log": nums("log_reload_ms"),
        "reload_sighup_to_in_use_ms": mmm(nums("reload_seen_ms")),
    },
    "memory": {
        "vmrss_kb_one_service": tiny_kb, "vmrss_kb": mesh_kb,
        "bytes_per_service": round((mesh_kb - tiny_kb) * 1024 / n),
        "vmrss_kb_after_reloads": after_kb,
        "vmrss_kb_after_each_reload": [int(x) for x in many.get("reload_rss_kb", [])],
    },
}
v, p, m = res["validate"], res["proxy"], res["memory"]
load_ms = max(p["reload_duration_ms"]["median"] if reload_ms else 0, v["median_ms"])
res["target_under_1s"] = load_ms < 1000
f = lambda x: f"{x:.1f}"
r = p["reload_duration_ms"] or {"min": 0, "median": 0, "max": 0}
rows = [
    ("mesh", f"{n} ServiceEntries + {n} VirtualServices + {n} DestinationRules, "
             f"{gen['files']} files, {gen['bytes'] / 1e6:.2f} MB (seed {gen['seed']})"),
    ("`ringside validate DIR` wall, best / median of %d" % len(val),
     f"{f(v['best_ms'])} / {f(v['median_ms'])} ms"),
    ("validate max RSS", f"{v['max_rss_kb'] / 1024:.1f} MiB"),
    ("validate errors / warnings", f"{v['errors']} / {v['warnings']}"),
    ("proxy spawn → /ready (one-service config)",
     f"{f(p['start_to_ready_ms'])} ms ({f(p['start_to_ready_ms_one_service'])} ms)"),
    ("reload (SIGHUP) load + compile + publish, min / median / max of %d" % len(reload_ms),
     f"{f(r['min'])} / {f(r['median'])} / {f(r['max'])} ms"),
    ("SIGHUP → new generation in use on all shards, median",
     f"{f(p['reload_sighup_to_in_use_ms']['median'])} ms" if reload_ms else "-"),
    ("proxy VmRSS, one service / mesh", f"{tiny_kb / 1024:.1f} / {mesh_kb / 1024:.1f} MiB"),
    ("memory per service ((mesh − one) / N)", f"{m['bytes_per_service']} bytes"),
    ("proxy VmRSS after %d reloads" % len(reload_ms), f"{after_kb / 1024:.1f} MiB"),
    ("under 1 s (validate and reload medians)", "yes" if res["target_under_1s"] else "**no**"),
]
md = [f"# Configuration at scale — {one['stamp']}", "",
      f"- machine: nproc {one['ncpu']}, CPU `{one['cpu_model']}`, kernel `{one['kernel']}`",
      f"- ringside: rev `{one['git']}`, {one['build']}",
      f"- command: `{one['command']}`"]
md += [f"- environment: `{e}`" for e in many.get("env", [])]
md += ["",
      "| measure | value |", "|---|---:|"]
md += [f"| {a} | {b} |" for a, b in rows]
if v["warnings_by_message"]:
    md += ["", "Warnings from validate:", ""]
    md += [f"- {w['count']}× {w['message']}" for w in v["warnings_by_message"]]
text = "\n".join(md) + "\n"
print(text)
if outdir:
    os.makedirs(outdir, exist_ok=True)
    base = os.path.join(outdir, f"config-scale-{one['stamp']}")
    with open(base + ".json", "w") as fh:
        json.dump(res, fh, indent=2)
        fh.write("\n")
    with open(base + ".md", "w") as fh:
        fh.write(text)
    print(f"wrote {base}.json\nwrote {base}.md")
EOF
