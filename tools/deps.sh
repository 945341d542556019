#!/usr/bin/env bash
# Installs the Debian packages ringside needs that are missing, and nothing
# else. Used by tools/demo and tools/check; safe to run again.
#   tools/deps.sh build   packages to build ringside
#   tools/deps.sh test    ... and to run its tests
#   tools/deps.sh bench   ... and to run the bench suite
set -euo pipefail

# libwolfssl-dev is the fallback (-Dwolfssl=system) and the micro-benchmark's
# baseline; dpkg-dev, autoconf, automake, libtool and make build wolfSSL from
# Debian's source package (tools/wolfssl.sh).
build_pkgs=(meson ninja-build pkg-config gcc g++ liburing-dev libnghttp2-dev libyaml-dev libjansson-dev
	libmimalloc-dev libre2-dev libxxhash-dev libcmocka-dev libbenchmark-dev libwolfssl-dev node-llhttp
	dpkg-dev autoconf automake libtool make)
test_pkgs=(curl openssl faketime testssl.sh bsdextrautils iproute2 iptables python3 python3-pytest python3-httpx python3-h2 python3-grpcio nghttp2-client nginx-light clang
	libclang-rt-14-dev)
bench_pkgs=(wrk haproxy nginx-light nghttp2-client gnuplot-nox linux-perf)

want=("${build_pkgs[@]}")
case "${1:-build}" in
build) ;;
test) want+=("${test_pkgs[@]}") ;;
bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ringside: installing missing Debian packages: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# nginx's package starts the system service on install; the tests run their
# own instances, so keep the service from starting.
if [[ " ${missing[*]} " == *" nginx-light "* || " ${missing[*]} " == *" haproxy "* ]]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
	$sudo chmod +x /usr/sbin/policy-rc.d
	trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
