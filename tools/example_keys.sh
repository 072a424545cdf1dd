#!/usr/bin/env bash
# Makes the CURVE keys the example configs name, in conf/keys/ (or KEYS_DIR): the
# manager's (qosmgr), the gateway's (gw1), an operator's (ops) and a host's
# (host-a).  A key that exists is kept.  Secret keys are mode 0600 and never
# part of the repository.
#
#   bash tools/example_keys.sh [BUILD_DIR [KEYS_DIR]]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build}"
qosctl="$build/tools/qosctl/qosctl"
keys="${2:-$repo/conf/keys}"
[[ -x $qosctl ]] || { echo "example_keys: no $qosctl: build first (tools/setup.sh)" >&2; exit 1; }
mkdir -p "$keys"
for name in qosmgr gw1 ops host-a; do
  if [[ -f $keys/$name.key ]]; then
    echo "example_keys: $keys/$name.key exists: kept"
  else
    "$qosctl" keygen "$keys/$name" | sed 's/^/example_keys: /'
  fi
done
