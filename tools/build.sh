#!/usr/bin/env bash
# Configures (once) and builds one build directory:
#   tools/build.sh release   -> build/       (default: optimised, frame pointers kept)
#   tools/build.sh debug     -> build-debug/
#   tools/build.sh asan      -> build-asan/  (AddressSanitizer + UndefinedBehaviorSanitizer)
# RINGSIDE_WOLFSSL=system links Debian's libwolfssl rather than the AES-NI build.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"
case "$kind" in
release) dir=build; args=(-Dbuildtype=release) ;;
debug) dir=build-debug; args=(-Dbuildtype=debug) ;;
asan) dir=build-asan; args=(-Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dallocator=libc) ;;
*) echo "usage: $0 release|debug|asan" >&2; exit 2 ;;
esac
# Warnings are errors: the tree builds clean or not at all.
args+=(-Dwerror=true)
# wolfSSL: Debian's source package built with AES-NI by tools/wolfssl.sh, once
# per clone and set of options (progress on stderr, the prefix on stdout); every
# build type links the same library. RINGSIDE_WOLFSSL=system links Debian's
# libwolfssl instead.
case "${RINGSIDE_WOLFSSL:-built}" in
built) args+=(-Dwolfssl=built -Dwolfssl_prefix="$(tools/wolfssl.sh)") ;;
system) args+=(-Dwolfssl=system) ;;
*) echo "$0: RINGSIDE_WOLFSSL must be built or system" >&2; exit 2 ;;
esac
# Quiet unless it fails: the callers read the directory from stdout.
if [ ! -f "$dir/build.ninja" ]; then
	setup=(meson setup "$dir")
else
	setup=(meson configure "$dir")
fi
# A build directory set up before an option existed does not know it yet:
# configure refuses, and a reconfigure (which reads meson_options.txt again)
# takes it.
if ! out="$("${setup[@]}" "${args[@]}" 2>&1)" &&
	! out="$(meson setup --reconfigure "$dir" "${args[@]}" 2>&1)"; then
	echo "$out" >&2
	exit 1
fi
if ! ninja -C "$dir" >"$dir/.build.log" 2>&1; then
	cat "$dir/.build.log" >&2
	exit 1
fi
echo "$dir"
