#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time, as CI does (DESIGN.md "Tests").
#
#   tests/fuzz/run.sh            each target for its default time (tests/fuzz/meson.build)
#   FUZZ_SECONDS=60 tests/fuzz/run.sh
#
# Sets up $BUILD_FUZZ (default build-fuzz) with clang and ASan+UBSan when it
# does not exist yet; the default build uses gcc, which has no libFuzzer.
# Exits 0 when every target ran clean, 77 (skipped) when clang or its libFuzzer
# is missing, and the failing status otherwise: a crash leaves its input in
# $BUILD_FUZZ/tests/fuzz/<target>-crash-<sha1>, replayed by passing that file
# to the target, e.g. $BUILD_FUZZ/tests/fuzz/yaml_fuzz <file>.
set -euo pipefail
cd "$(dirname "$0")/../.."

build=${BUILD_FUZZ:-build-fuzz}
cc=${FUZZ_CC:-clang}
# RE2 makes the targets C++ at link time; g++ cannot link -fsanitize=fuzzer.
cxx=${FUZZ_CXX:-clang++}

if ! command -v "$cc" >/dev/null; then
	echo "fuzz: $cc not found; the fuzz targets need clang's libFuzzer (skipped)" >&2
	exit 77
fi
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
	"$cc" -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
	echo "fuzz: $cc cannot link -fsanitize=fuzzer (install libclang-rt-dev or clang's compiler-rt) (skipped)" >&2
	exit 77
fi

if [ ! -f "$build/build.ninja" ]; then
	# debug: assertions on and frames intact in the stacks a crash prints;
	# libc's allocator because ASan must own malloc; b_lundef off because
	# clang's sanitizer runtimes leave symbols to the executable.
	CC=$cc CXX=$cxx meson setup "$build" -Dbuildtype=debug -Db_sanitize=address,undefined \
		-Dallocator=libc -Db_lundef=false
fi

if ! meson test -C "$build" --list --suite fuzz 2>/dev/null | grep -q ':fuzz'; then
	echo "fuzz: $build defines no fuzz tests: is $build a clang build, and does" \
		"tests/meson.build have subdir('fuzz')?" >&2
	exit 1
fi

args=()
if [ -n "${FUZZ_SECONDS:-}" ]; then
	# libFuzzer takes the last value of a flag: this overrides meson.build's.
	args+=("--test-args=-max_total_time=$FUZZ_SECONDS")
	# meson's timeout per target is its time plus 120 s: scale it to fit.
	args+=("--timeout-multiplier=$(((FUZZ_SECONDS + 60 + 139) / 140))")
fi
exec meson test -C "$build" --suite fuzz --print-errorlogs ${args[@]+"${args[@]}"}
