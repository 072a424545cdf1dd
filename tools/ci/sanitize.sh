#!/usr/bin/env bash
# Builds with AddressSanitizer and UndefinedBehaviorSanitizer and runs the
# unit, fuzz-replay and DPDK in-process suites under them.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$repo/build-asan}"
if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" "$repo" --buildtype=debug -Dwerror=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dtests=enabled
fi
# No full build: meson test builds what the three suites need (the daemons,
# tools and benchmarks were built and checked, without sanitizers, before).
# DPDK maps its memory outside ASan's view; leak checking would report EAL's
# own start-up allocations, so only errors are fatal here.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
meson test -C "$build" --print-errorlogs --num-processes 2 --suite unit --suite fuzz --suite dpdk
