#!/usr/bin/env bash
# qos-agent as a real process between local clients (qosctl, pointed at the
# agent's ipc:// socket, is one) and a real qosmgr with CURVE on loopback:
# a grant through the agent, a client that goes away released after
# client_timeout, SIGTERM releasing what the agent holds, kill -9 leaving
# the grants to lapse with their leases, a restart on the same socket, a
# user the socket's permissions keep out, and socket_group letting a group
# in.  Needs root for the last two (it skips them otherwise, except under
# CI=true).
set -uo pipefail

QOSMGR="${QOSMGR:?path to qosmgr}"
QOSCTL="${QOSCTL:?path to qosctl}"
QOS_AGENT="${QOS_AGENT:?path to qos-agent}"
work="$(mktemp -d /tmp/qos-agent-test.XXXXXX)"
pids=()
failures=0
passes=0

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

pass() { echo "PASS: $*"; passes=$((passes + 1)); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/keys" "$work/run"
chmod 755 "$work"
for name in qosmgr host-a ops; do
  "$QOSCTL" keygen "$work/keys/$name" >/dev/null || { echo "FAIL: keygen"; exit 1; }
done
mgr="tcp://127.0.0.1:$(free_port)"
sock="ipc://$work/run/agent.sock"
cat >"$work/qosmgr.toml" <<TOML
[manager]
listen = "$mgr"
state = "$work/state.db"
lease = "3s"
[metrics]
listen = "127.0.0.1:$(free_port)"
[[network]]
name = "lan-a"
prefixes = ["198.18.1.0/24"]
class_enabled = true
classes = { EF = { dscp = 46, capacity = "10mbit" } }
[[network]]
name = "lan-b"
prefixes = ["198.19.1.0/24"]
[[link]]
between = ["lan-a", "lan-b"]
[[application]]
name = "voip"
default = { class = "EF", rate = "100kbit", burst = "10kB" }
[security]
mode = "curve"
secret_key = "keys/qosmgr.key"
[[peer]]
name = "host-a"
role = "host"
public_key = "keys/host-a.pub"
[[peer]]
name = "ops"
role = "admin"
public_key = "keys/ops.pub"
TOML
cat >"$work/agent.toml" <<TOML
[agent]
listen = "$sock"
name = "host-a"
manager = "$mgr"
secret_key = "keys/host-a.key"
manager_public_key = "keys/qosmgr.pub"
client_timeout = "2s"
TOML

start_agent() {
  # The log is appended to: wait for this agent's own "serving" line.
  local before
  before=$(grep -c "serving local applications" "$work/agent.log" 2>/dev/null)
  "$QOS_AGENT" --config "$work/agent.toml" >>"$work/agent.log" 2>&1 &
  agent_pid=$!
  pids+=("$agent_pid")
  for _ in $(seq 1 100); do
    (($(grep -c "serving local applications" "$work/agent.log" 2>/dev/null) > ${before:-0})) && return 0
    sleep 0.05
  done
  echo "qos-agent did not start:"; cat "$work/agent.log"; return 1
}
ops() { "$QOSCTL" --endpoint "$mgr" --timeout 3000 --key "$work/keys/ops.key" --manager-key "$work/keys/qosmgr.pub" "$@"; }
via_agent() { "$QOSCTL" --endpoint "$sock" --timeout 3000 "$@"; }
flow_count() { ops --json flows | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["flows"]))'; }
# wait_flows N SECONDS: until the manager holds N flows; prints the time taken.
wait_flows() {
  local want=$1 start=$SECONDS
  while (($(flow_count) != want)); do
    ((SECONDS - start < $2)) || return 1
    sleep 0.1
  done
}
request() { via_agent --json request --app voip --src "198.18.1.10:$1" --dst 198.19.1.20:20000 --proto udp; }

"$QOSMGR" --config "$work/qosmgr.toml" >"$work/qosmgr.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "serving on" "$work/qosmgr.log" && break; sleep 0.05; done

printf '[agent]\nname = "host-a"\nmanager = "tcp://192.0.2.1:7700"\n' >"$work/bad.toml"
out=$("$QOS_AGENT" --config "$work/bad.toml" --check-config 2>&1)
[[ $? == 2 && $out == *"bad.toml:3:"* ]] && pass "a bad config: exit 2 with file:line:column" || fail "bad config: $out"
"$QOS_AGENT" --config "$work/agent.toml" --check-config >/dev/null && pass "--check-config accepts the config" || fail "--check-config"

start_agent || exit 1
[[ $(via_agent --json ping | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["peer"])') == host-a ]] &&
  pass "ping through the agent: it is host-a" || fail "ping through the agent"

# A grant through the agent is host-a's at the manager.
out=$(request 40000)
[[ $(/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["dscp"], d["client"], d["heartbeat_ms"])' <<<"$out") == "46 host-a 666" ]] &&
  pass "granted through the agent: DSCP 46, client host-a, heartbeat 666 ms asked" || fail "grant: $out"
# qosctl has exited: to the agent a client gone silent.
start=$SECONDS
if wait_flows 0 6; then
  pass "the client went away: its grant released after client_timeout (2 s; took $((SECONDS - start)) s)"
else
  fail "the gone client's grant is still held"
fi
grep -q "went silent: released 1" "$work/agent.log" && pass "the agent logged the release" || fail "agent log: $(cat "$work/agent.log")"

# SIGTERM: the agent releases what it holds before it exits.
request 40001 >/dev/null
kill -TERM "$agent_pid"
wait "$agent_pid"
rc=$?
[[ $rc == 0 ]] && pass "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
(($(flow_count) == 0)) && pass "SIGTERM: the grant was released at once" || fail "SIGTERM: $(flow_count) flow(s) left"

# kill -9: nothing is released; the grant lapses with its 3 s lease.
start_agent || exit 1
request 40002 >/dev/null
kill -KILL "$agent_pid"
wait "$agent_pid" 2>/dev/null
(($(flow_count) == 1)) && pass "kill -9: the grant is still held at the manager" || fail "kill -9: $(flow_count) flows"
start=$SECONDS
if wait_flows 0 8; then
  pass "kill -9: the grant lapsed with its lease (took $((SECONDS - start)) s, lease 3 s)"
else
  fail "kill -9: the grant did not lapse"
fi

# The restarted agent binds the socket a killed one left.
start_agent || exit 1
request 40003 >/dev/null && pass "restarted on the socket a killed agent left" || fail "restart: request failed"

# The socket's permissions decide who may ask.
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
  chmod 700 "$work/run"
  setpriv --reuid=nobody --regid=nogroup --clear-groups "$QOSCTL" --endpoint "$sock" --timeout 1000 ping >"$work/out" 2>&1
  rc=$?
  [[ $rc == 1 ]] && pass "a user the socket's directory keeps out is refused (exit 1)" || fail "nobody: exit $rc: $(cat "$work/out")"
  chmod 755 "$work/run"
elif [[ ${CI:-} == true ]]; then
  fail "the permission check needs root and setpriv"
else
  echo "SKIP: the permission check needs root"
fi

# socket_group: members of the group may ask, others may not.
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null && getent group nogroup >/dev/null &&
  getent group daemon >/dev/null; then
  kill -TERM "$agent_pid"
  wait "$agent_pid"
  printf 'socket_mode = "0660"\nsocket_group = "nogroup"\n' >>"$work/agent.toml"
  start_agent || exit 1
  perms=$(stat -c '%a %G' "$work/run/agent.sock")
  [[ $perms == "660 nogroup" ]] && pass "the socket is mode 0660, group nogroup" || fail "socket: $perms"
  setpriv --reuid=nobody --regid=nogroup --clear-groups "$QOSCTL" --endpoint "$sock" --timeout 2000 ping >"$work/out" 2>&1 &&
    pass "a member of socket_group may ask" || fail "nobody:nogroup refused: $(cat "$work/out")"
  setpriv --reuid=daemon --regid=daemon --clear-groups "$QOSCTL" --endpoint "$sock" --timeout 1000 ping >"$work/out" 2>&1
  rc=$?
  [[ $rc == 1 ]] && pass "a user outside socket_group is refused (exit 1)" || fail "daemon:daemon: exit $rc"
elif [[ ${CI:-} == true ]]; then
  fail "the socket_group check needs root, setpriv and the groups nogroup and daemon"
fi

echo "$passes passed, $failures failed"
((failures == 0 && passes > 0))
