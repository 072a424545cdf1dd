#!/usr/bin/env bash
# Runs every test qosgate has, from a fresh Debian 12 machine, as root:
#   1. installs packages and builds (tools/setup.sh), warnings as errors;
#   2. checks formatting (clang-format) and lints (clang-tidy);
#   3. runs all suites: unit, fuzz corpus replay, DPDK in-process, integration
#      (network namespaces; needs root);
#   4. rebuilds with AddressSanitizer + UBSan and runs the unit, fuzz and DPDK
#      suites again;
#   5. builds the libFuzzer targets with clang and fuzzes each for 30 s
#      (FUZZ_SECONDS) from its checked-in corpus.
# Exit status 0 only if everything passed.  Under CI=true a test that would
# skip for want of root or namespaces fails instead.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

step() { printf '\n=== %s\n' "$*"; }

step "set-up and build (build/)"
bash tools/setup.sh "$repo/build"

step "format"
bash tools/ci/format.sh

step "lint"
bash tools/ci/dataplane_rules.sh
bash tools/ci/tidy.sh "$repo/build"

step "tests: unit, fuzz, dpdk, integration"
meson test -C build --print-errorlogs --num-processes 2

step "sanitizers: ASan + UBSan build (build-asan/)"
bash tools/ci/sanitize.sh "$repo/build-asan"

step "fuzzing: each libFuzzer target ${FUZZ_SECONDS:-30} s, clang + ASan/UBSan (build-fuzz/)"
bash tools/ci/fuzz.sh "$repo/build-fuzz"

step "all tests passed"
