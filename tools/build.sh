#!/usr/bin/env bash
# Configures (once) and builds one build directory:
#   tools/build.sh release   -> build/       (default: optimised, frame pointers kept)
#   tools/build.sh debug     -> build-debug/
#   tools/build.sh asan      -> build-asan/  (AddressSanitizer + UndefinedBehaviorSanitizer)
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
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" "${args[@]}" >/dev/null
else
	meson configure "$dir" "${args[@]}" >/dev/null
fi
if ! ninja -C "$dir" >"$dir/.build.log" 2>&1; then
	cat "$dir/.build.log" >&2
	exit 1
fi
echo "$dir"
