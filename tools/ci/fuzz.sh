#!/usr/bin/env bash
# Builds the libFuzzer targets (test/fuzz/) with clang, AddressSanitizer and
# UBSan, with coverage in the libraries they link as well as in the targets,
# and runs each: its checked-in corpus first, then FUZZ_SECONDS (default 30)
# of fuzzing from it.  New inputs go to a scratch directory, never into the
# checked-in corpus; a crash leaves its input in BUILD_DIR/crashes/ and fails.
#
#   bash tools/ci/fuzz.sh [BUILD_DIR] [TARGET...]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$repo/build-fuzz}"
shift || true
seconds="${FUZZ_SECONDS:-30}"
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(packet_parser envelope flat_request manager_config appliance_config store_row)
fi
targets=("${targets[@]/%/_fuzz}")
if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang CXX=clang++ meson setup "$build" "$repo" --buildtype=debugoptimized -Dwerror=true \
    -Dfuzz=true -Dtests=enabled -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$build" "${targets[@]/#/test/fuzz/}" >/dev/null
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
mkdir -p "$build/crashes"
failed=0
for target in "${targets[@]}"; do
  target=${target%_fuzz}
  scratch=$(mktemp -d "/tmp/fuzz-$target.XXXXXX")
  log="$build/crashes/$target.log"
  if "$build/test/fuzz/${target}_fuzz" -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$build/crashes/$target-" \
    "$scratch" "$repo/test/fuzz/${target}_corpus" >"$log" 2>&1; then
    printf 'fuzz %-17s %s\n' "$target" "$(grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" |
      sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1 executions/p; s/.*cov: \([0-9]*\) ft: \([0-9]*\).*/coverage \1 edges, \2 features/p' | paste -sd, -)"
  else
    printf 'fuzz %-17s FAILED (input and log in %s/crashes/)\n' "$target" "$build"
    tail -n 30 "$log"
    failed=1
  fi
  rm -rf "$scratch"
done
exit "$failed"
