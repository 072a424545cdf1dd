#!/usr/bin/env bash
# The data plane's house rules, checked by grep in the spirit of DPDK's
# checkpatches: no heap allocation, locks, type-erased callables, stdio,
# volatile or exceptions in appliance/dataplane/.  Control-thread helpers that
# build immutable tables (policy_snapshot.cc) may allocate through containers,
# never with a bare `new`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
pattern='(^|[^_[:alnum:]])(new |malloc\(|std::mutex|std::lock_guard|std::function|printf|volatile|throw |rte_exit)'
# Comments are prose: strip them before matching.
if awk '{ line = $0; sub(/\/\/.*$/, "", line); print FILENAME ":" FNR ": " line }' \
    appliance/dataplane/*.h appliance/dataplane/*.cc | grep -E "$pattern"; then
  echo "dataplane rules: forbidden token above (see tools/ci/dataplane_rules.sh)" >&2
  exit 1
fi
echo "dataplane rules: clean"
