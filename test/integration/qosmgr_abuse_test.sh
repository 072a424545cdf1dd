#!/usr/bin/env bash
# qosmgr's control channel under abuse (qosmgr_abuse.py): four peers each
# send 20,000 malformed, oversized, truncated, multi-frame, too deep and
# unknown messages, never reading a reply, while a valid client keeps
# getting grants.  Passes when every valid request is answered within a
# second, the manager's peak resident memory stays within 64 MiB of its
# idle size, and it still serves afterwards.  Loopback only; needs no root.
#
#   QOSMGR=... QOSCTL=... bash test/integration/qosmgr_abuse_test.sh
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
QOSMGR="${QOSMGR:?path to qosmgr}"
QOSCTL="${QOSCTL:?path to qosctl}"
PY=/usr/bin/python3
peers=${ABUSE_PEERS:-4}
messages=${ABUSE_MESSAGES:-20000}
work=$(mktemp -d /tmp/qosmgr-abuse.XXXXXX)
pid=""
cleanup() {
  [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
if ! "$PY" -c 'import zmq' 2>/dev/null; then
  [[ ${CI:-} == true ]] && { echo "FAIL: python3-zmq is missing (tools/setup.sh installs it)"; exit 1; }
  echo "SKIP: python3-zmq is missing"
  exit 77
fi
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint=tcp://127.0.0.1:$port
cat >"$work/qosmgr.toml" <<TOML
[manager]
listen = "$endpoint"
state = "$work/state.db"
[metrics]
listen = "127.0.0.1:0"
[[network]]
name = "lan-a"
prefixes = ["198.18.1.0/24"]
class_enabled = true
classes = { EF = { dscp = 46, capacity = "10gbit" } }
[[network]]
name = "lan-b"
prefixes = ["198.19.1.0/24"]
[[link]]
between = ["lan-a", "lan-b"]
[[application]]
name = "voip"
default = { class = "EF", rate = "100kbit", burst = "10kB" }
TOML
"$QOSMGR" --config "$work/qosmgr.toml" >"$work/qosmgr.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "serving on" "$work/qosmgr.log" && break; sleep 0.05; done
"$QOSCTL" --endpoint "$endpoint" ping >/dev/null || { echo "FAIL: qosmgr did not start"; cat "$work/qosmgr.log"; exit 1; }

out=$("$PY" "$here/qosmgr_abuse.py" --endpoint "$endpoint" --pid "$pid" --peers "$peers" --messages "$messages")
echo "$out"
failures=0
check() {
  if "$PY" -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$out"; then
    echo "PASS: $1"
  else
    echo "FAIL: $1"
    failures=$((failures + 1))
  fi
}
check "all $peers abusive peers sent their $messages messages" "d['peers_done'] == $peers"
check "the valid client got grants throughout, with no error" "d['granted'] > 10 and not d['valid_errors']"
check "every valid reply came within a second (max $(echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["latency_ms"]["max"])') ms)" "d['latency_ms']['max'] < 1000"
check "peak RSS within 64 MiB of idle" "d['rss_kib']['peak'] - d['rss_kib']['idle'] < 64 * 1024"
"$QOSCTL" --endpoint "$endpoint" ping >/dev/null && echo "PASS: qosmgr still answers" ||
  { echo "FAIL: qosmgr no longer answers"; failures=$((failures + 1)); }
kill -0 "$pid" 2>/dev/null || { echo "FAIL: qosmgr died"; failures=$((failures + 1)); }
((failures == 0))
