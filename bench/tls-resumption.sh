#!/bin/bash
# bench/tls-resumption.sh: what resuming a session saves ringside's inbound
# port. openssl s_time connects with a client certificate for -t seconds,
# first with a full TLS 1.3 handshake per connection (-new), then resuming
# the first connection's session with its ticket (-reuse); each connection
# fetches / from the application behind the port. Prints connections made,
# ringside's CPU time (utime+stime from /proc, 10 ms ticks) per connection
# and its counters. ringside is pinned to CPU 1, openssl and the application
# (Python's http.server) to CPU 0. Numbers depend on the machine: compare the
# two lines of one run.
#
#   bench/tls-resumption.sh [-b ringside-binary] [-t seconds]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
bin="$SCRIPT_DIR/../build/src/cmd/ringside"
secs=5
die() { echo "bench/tls-resumption.sh: $*" >&2; exit 1; }
while getopts "b:t:" o; do
	case $o in
	b) bin=$OPTARG ;;
	t) secs=$OPTARG ;;
	*) die "usage: $0 [-b ringside-binary] [-t seconds]" ;;
	esac
done
[ -x "$bin" ] || die "no ringside binary at $bin (tools/build.sh release, or -b)"
command -v openssl >/dev/null || die "openssl is not installed"
# shellcheck source=bench/ports.sh
source "$SCRIPT_DIR/ports.sh"

dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

"$bin" ca init --dir "$dir/ca" >/dev/null
for sa in a b; do
	"$bin" ca issue --dir "$dir/ca" --namespace default --service-account "$sa" --out "$dir/$sa" >/dev/null
done
alloc_port; app=$ALLOC_PORT
ports=()
for _ in 1 2 3 4 5; do alloc_port; ports+=("$ALLOC_PORT"); done
inbound=${ports[1]} admin=${ports[2]}
cat >"$dir/b.yaml" <<EOF
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  ingress:
  - port: {number: 80, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:$app
EOF
(cd "$dir" && exec taskset -c 0 /usr/bin/python3 -m http.server "$app" --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=($!)
taskset -c 1 "$bin" proxy --config "$dir/b.yaml" --concurrency 1 --outbound-port "${ports[0]}" \
	--inbound-port "$inbound" --admin-port "$admin" --stats-port "${ports[3]}" \
	--health-port "${ports[4]}" --log-level warn --namespace default --service-account b \
	--cert "$dir/b/cert-chain.pem" --key "$dir/b/key.pem" --ca "$dir/b/root-cert.pem" &
pid=$!
pids+=("$pid")
for _ in $(seq 50); do
	curl -fs "127.0.0.1:$admin/ready" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fs "127.0.0.1:$admin/ready" >/dev/null || die "ringside did not get ready"

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
for mode in -new -reuse; do
	t0=$(ticks)
	out=$(taskset -c 0 openssl s_time -connect "127.0.0.1:$inbound" -cert "$dir/a/cert-chain.pem" \
		-key "$dir/a/key.pem" -CAfile "$dir/a/root-cert.pem" "$mode" -time "$secs" -www / 2>&1)
	t1=$(ticks)
	n=$(echo "$out" | awk '/connections in .* real seconds/ {print $1; exit}')
	if [ -z "$n" ] || [ "$n" -eq 0 ]; then die "openssl s_time $mode made no connection: $out"; fi
	awk -v m="$mode" -v n="$n" -v s="$secs" -v t="$((t1 - t0))" 'BEGIN {
		printf "%-7s %6d connections in %s s; ringside CPU %5.0f ms, %6.1f µs per connection\n",
			m, n, s, t * 10, t * 10000 / n }'
done
curl -fs "127.0.0.1:$admin/stats/prometheus" | grep -E "^ringside_downstream_cx_tls(_resumed)?_total"
