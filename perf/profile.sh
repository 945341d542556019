#!/usr/bin/env bash
# Profiles ringside under load: starts an nginx origin and one ringside shard,
# drives them with wrk, records `perf record -e cpu-clock -g` (hardware
# counters are not available on these VMs) and prints where the time went.
#   perf/profile.sh [SECONDS]        default 8
# Output: perf/out/perf.data and perf/out/report.txt (top symbols, by DSO).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
tools/deps.sh bench
command -v perf >/dev/null || { apt-get install -y -qq linux-perf >/dev/null; }
bin="$(tools/build.sh release)/src/cmd/ringside"
out=perf/out
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

cat >"$tmp/origin.conf" <<CONF
worker_processes 1; daemon off; pid $tmp/origin.pid; error_log $tmp/origin.err;
events {}
http { access_log off; keepalive_requests 10000000;
  client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp;
  uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  server { listen 127.0.0.1:28080; location / { return 200 "hello from origin\n"; } } }
CONF
cat >"$tmp/se.yaml" <<CONF
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: origin, namespace: default}
spec:
  hosts: [origin.test]
  ports: [{number: 80, name: http}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: 28080}}]
CONF
taskset -c 0 nginx -c "$tmp/origin.conf" &
taskset -c 1 "$bin" proxy --config "$tmp/se.yaml" --concurrency 1 --outbound-port 28001 \
	--admin-port 28000 --stats-port 0 --health-port 0 --log-level warn &
pid=$!
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:28000/ready && break; sleep 0.1; done
taskset -c 0 wrk -t1 -c64 -d$((secs + 3))s -H 'Host: origin.test' http://127.0.0.1:28001/ >"$tmp/wrk.txt" &
sleep 1
perf record -e cpu-clock -g -p "$pid" -o "$out/perf.data" -- sleep "$secs" 2>/dev/null
wait %3 || true
{
	echo "# perf/profile.sh: ringside, 1 shard on CPU 1, wrk -c64 and nginx origin on CPU 0"
	grep -E "Requests/sec" "$tmp/wrk.txt" || true
	echo "## by DSO"
	perf report -i "$out/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E "^ +[0-9]"
	echo "## top symbols"
	perf report -i "$out/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
		grep -E "^ +[0-9]" | head -40
} | tee "$out/report.txt"
echo "perf data: $out/perf.data (perf report -i $out/perf.data)"
