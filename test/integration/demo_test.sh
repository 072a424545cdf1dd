#!/usr/bin/env bash
# The README's demo (tools/demo.sh, then tools/demo.sh --dataplane) run as
# a test: each must end with exit 0, every step as it should be.  The
# example keys go to a temporary directory, not conf/keys.
#
#   bash test/integration/demo_test.sh BUILD_DIR
# Needs root; without it it skips (exit 77), except under CI=true.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/integration/lib.sh
source "$here/lib.sh"
build=${1:?usage: demo_test.sh BUILD_DIR}
qg_require_root
qg_require_netns
qg_init
qg_mktemp

for demo in "tools/demo.sh" "tools/demo.sh --dataplane"; do
  read -ra words <<<"$demo"
  QOS_DEMO_BUILT=1 QOS_DEMO_KEYS=$QG_TMP/keys bash "$repo/${words[0]}" "${words[@]:1}" "$build" \
    >"$QG_TMP/demo.log" 2>&1
  rc=$?
  if [[ $rc == 0 ]] && grep -q '^Demo complete' "$QG_TMP/demo.log"; then
    qg_pass "$demo: every step showed what it should ($(grep -c '   ok: ' "$QG_TMP/demo.log") checks)"
  else
    sed 's/^/  | /' "$QG_TMP/demo.log"
    qg_fail "$demo: exit $rc"
  fi
done
qg_summary
