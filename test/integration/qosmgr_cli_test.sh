#!/usr/bin/env bash
# qosmgr and qosctl as real processes over ZeroMQ on loopback: grants,
# alternates, denials and their exit codes, bad input, an unreachable
# manager, and recovery after kill -9 (every reservation and every class's
# remaining capacity the same after restart).  Needs no root.
set -uo pipefail

QOSMGR="${QOSMGR:?path to qosmgr}"
QOSCTL="${QOSCTL:?path to qosctl}"
work="$(mktemp -d /tmp/qosmgr-test.XXXXXX)"
mgr_pid=""
failures=0

cleanup() {
  if [[ -n "$mgr_pid" ]] && kill -0 "$mgr_pid" 2>/dev/null; then
    kill -TERM "$mgr_pid" 2>/dev/null
    wait "$mgr_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port="$(free_port)"
endpoint="tcp://127.0.0.1:$port"

# The shipped example (two LANs and a WAN), on this test's own
# endpoint, state file and metrics port; a long lease so none lapses mid-test.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
sed -e "s|^listen = \"tcp://127.0.0.1:7700\"|listen = \"$endpoint\"|" \
  -e "s|^state = \"/tmp/qosmgr-state.db\"|state = \"$work/state.db\"|" \
  -e "s|^lease = \"60s\"|lease = \"600s\"|" \
  -e "s|^listen = \"127.0.0.1:9471\"|listen = \"127.0.0.1:$(free_port)\"|" \
  "$repo/conf/qosmgr.toml" >"$work/qosmgr.toml"
# Its keys, made here as an operator makes them (the config names them
# relative to itself); the operator's key is the admin peer "ops".
mkdir -p "$work/keys"
for name in qosmgr gw1 ops host-a; do
  "$QOSCTL" keygen "$work/keys/$name" >/dev/null || { echo "FAIL: qosctl keygen $name"; exit 1; }
done
export QOSCTL_KEY="$work/keys/ops.key" QOSCTL_MANAGER_KEY="$work/keys/qosmgr.pub"
for setting in "listen = \"$endpoint\"" "state = \"$work/state.db\"" 'lease = "600s"'; do
  grep -qF "$setting" "$work/qosmgr.toml" || { echo "FAIL: conf/qosmgr.toml no longer has the line this test rewrites to: $setting"; exit 1; }
done

start_mgr() {
  "$QOSMGR" --config "$work/qosmgr.toml" >>"$work/qosmgr.log" 2>&1 &
  mgr_pid=$!
  for _ in $(seq 1 100); do
    if "$QOSCTL" --endpoint "$endpoint" --timeout 200 stats >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  echo "qosmgr did not come up:"; cat "$work/qosmgr.log"
  return 1
}

ctl() { "$QOSCTL" --endpoint "$endpoint" --timeout 3000 "$@"; }
json_field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

expect_exit() {
  local want="$1" what="$2"
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [[ "$got" == "$want" ]]; then pass "$what (exit $got)"; else
    fail "$what: exit $got, wanted $want"; cat "$work/out" "$work/err"; fi
}

"$QOSMGR" --config "$work/qosmgr.toml" --check-config >/dev/null && pass "--check-config accepts the example" || fail "--check-config"
start_mgr || exit 1

# A second manager on the same state file is refused.
timeout 5 "$QOSMGR" --config "$work/qosmgr.toml" >"$work/second.log" 2>&1
rc=$?
[[ $rc == 1 ]] && grep -q "another qosmgr" "$work/second.log" && pass "second qosmgr on the same state is refused" \
  || fail "second qosmgr: exit $rc: $(cat "$work/second.log")"

# Default profile: EF, DSCP of lan-a (the first class-enabled network).
out="$(ctl --json request --app voip --src 198.18.1.10:40000 --dst 198.19.1.20:20000 --proto udp)"
rc=$?
[[ $rc == 0 ]] && pass "voip granted (exit 0)" || fail "voip request exit $rc"
[[ "$(json_field '["dscp"]' <<<"$out")" == 46 ]] && pass "DSCP 46 from lan-a" || fail "dscp: $out"
[[ "$(json_field '["path"]' <<<"$out")" == "['lan-a', 'wan', 'lan-b']" ]] && pass "path lan-a -> wan -> lan-b" || fail "path: $out"
first_id="$(json_field '["flow_id"]' <<<"$out")"

# The SLA holds EF to 1 mbit over the wan: 10 voip flows, then the alternate (AF41).
for i in $(seq 1 9); do ctl request --app voip --src 198.18.1.10:$((40000 + i)) --dst 198.19.1.20:20000 --proto udp >/dev/null; done
out="$(ctl --json request --app voip --src 198.18.1.10:40100 --dst 198.19.1.20:20000 --proto udp)"
[[ "$(json_field '["profile_index"]' <<<"$out")" == 1 && "$(json_field '["dscp"]' <<<"$out")" == 34 ]] \
  && pass "11th voip flow falls back to AF41, DSCP 34" || fail "alternate: $out"

# Identified by its ports without --app.
out="$(ctl --json request --src 198.18.1.11:5000 --dst 198.19.1.20:16500 --proto udp)"
[[ "$(json_field '["app"]' <<<"$out")" == voip ]] && pass "application identified by match" || fail "identify: $out"

# Video: AF41 carrier-x 10 mbit minus what is reserved; 4mbit, then alternates, then denied.
ctl request --app video --src 198.18.1.20:1 --dst 198.19.1.30:2 --proto tcp >/dev/null
ctl request --app video --src 198.18.1.20:3 --dst 198.19.1.30:4 --proto tcp >/dev/null
for i in $(seq 1 6); do ctl request --app video --src 198.18.1.21:$i --dst 198.19.1.30:2 --proto tcp >/dev/null 2>&1; done
expect_exit 3 "video denied once carrier-x AF41 is full" ctl request --app video --src 198.18.1.22:1 --dst 198.19.1.30:2 --proto tcp
grep -q "carrier-x\|lan-a\|wan" "$work/err" && pass "denial names the refusing network or SLA" || fail "denial message: $(cat "$work/err")"

# Bad input and an unreachable manager.
expect_exit 2 "bad address" ctl request --app voip --src 198.18.1.300 --dst 198.19.1.20 --proto udp
expect_exit 2 "bad protocol" ctl request --app voip --src 198.18.1.10 --dst 198.19.1.20 --proto icmp
expect_exit 2 "unknown command" ctl frobnicate
expect_exit 2 "release of an unknown flow" ctl release 999999
expect_exit 3 "unknown application is denied" ctl request --app nosuch --src 198.18.1.10:1 --dst 198.19.1.20:2 --proto udp
start=$(date +%s%N)
expect_exit 1 "unreachable manager" "$QOSCTL" --endpoint "tcp://127.0.0.1:$(free_port)" --timeout 500 flows
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
(( elapsed_ms < 3000 )) && pass "unreachable answered in ${elapsed_ms} ms (timeout 500 ms)" || fail "unreachable took ${elapsed_ms} ms"

# Tables.
ctl networks >"$work/networks.txt" && grep -q "carrier-x" "$work/networks.txt" && grep -q "AVAILABLE" "$work/networks.txt" \
  && pass "qosctl networks shows capacity, reserved, available" || fail "networks table: $(cat "$work/networks.txt")"
ctl appliances | grep -Eq '^gw1 +lan-a \| wan +down +- +never' && pass "qosctl appliances: gw1, down until it syncs" || fail "appliances"
# CURVE: a key the manager does not know, no key, and a host key doing an
# admin's work are each refused with exit 4.
"$QOSCTL" keygen "$work/keys/stranger" >/dev/null
expect_exit 4 "an unknown key" env QOSCTL_KEY="$work/keys/stranger.key" "$QOSCTL" --endpoint "$endpoint" --timeout 3000 ping
expect_exit 4 "no key at all" env -u QOSCTL_KEY -u QOSCTL_MANAGER_KEY "$QOSCTL" --endpoint "$endpoint" --timeout 3000 ping
expect_exit 4 "a host key asking for networks" env QOSCTL_KEY="$work/keys/host-a.key" "$QOSCTL" --endpoint "$endpoint" --timeout 3000 networks
expect_exit 4 "the wrong manager key" env QOSCTL_MANAGER_KEY="$work/keys/gw1.pub" "$QOSCTL" --endpoint "$endpoint" --timeout 3000 ping
expect_exit 0 "release" ctl release "$first_id"

# kill -9, restart: same reservations, same remaining capacity.
ctl --json flows | /usr/bin/python3 -c 'import json,sys; print(json.dumps(sorted(json.load(sys.stdin)["flows"], key=lambda f: f["flow_id"]), sort_keys=True))' >"$work/flows.before"
ctl --json networks >"$work/net.before"
n_before="$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/flows.before")"
kill -9 "$mgr_pid"; wait "$mgr_pid" 2>/dev/null; mgr_pid=""
start_mgr || exit 1
ctl --json flows | /usr/bin/python3 -c 'import json,sys; print(json.dumps(sorted(json.load(sys.stdin)["flows"], key=lambda f: f["flow_id"]), sort_keys=True))' >"$work/flows.after"
ctl --json networks >"$work/net.after"
cmp -s "$work/flows.before" "$work/flows.after" && pass "all $n_before reservations back after kill -9" || { fail "flows differ after restart"; diff "$work/flows.before" "$work/flows.after" | head; }
cmp -s "$work/net.before" "$work/net.after" && pass "every class's remaining capacity the same after kill -9" || { fail "capacity differs after restart"; diff "$work/net.before" "$work/net.after" | head; }
# A new grant after restart gets a fresh flow id.
out="$(ctl --json request --app voip --src 198.18.1.99:1 --dst 198.19.1.20:20000 --proto udp)"
new_id="$(json_field '["flow_id"]' <<<"$out")"
/usr/bin/python3 -c "import json,sys; ids=[f['flow_id'] for f in json.load(open(sys.argv[1]))]; sys.exit(0 if int(sys.argv[2]) > max(ids) else 1)" "$work/flows.after" "$new_id" \
  && pass "flow ids keep increasing after restart ($new_id)" || fail "flow id $new_id reused"

# SIGHUP: a reload applies what fits and refuses, changing nothing, what does not.
wait_log() {  # wait_log PATTERN: up to 5 s for a new matching line in the log
  for _ in $(seq 1 50); do
    if (( $(grep -c -- "$1" "$work/qosmgr.log") > ${2:-0} )); then return 0; fi
    sleep 0.1
  done
  return 1
}
class_field() {  # class_field OWNER CLASS FIELD
  ctl --json networks | /usr/bin/python3 -c 'import json,sys; o,c,f=sys.argv[1:]; print([u[f] for u in json.load(sys.stdin)["classes"] if u["owner"]==o and u["class"]==c][0])' "$1" "$2" "$3"
}
cp "$work/qosmgr.toml" "$work/qosmgr.toml.orig"
printf '\n[[network]]\nname = 5\n' >>"$work/qosmgr.toml"
kill -HUP "$mgr_pid"
if wait_log "SIGHUP: config not reloaded: .*qosmgr.toml:[0-9]*:[0-9]*"; then pass "SIGHUP with a bad file: refused with file:line:column"
else fail "no refusal logged for a bad file"; tail -3 "$work/qosmgr.log"; fi
expect_exit 0 "still serving after a refused reload" ctl stats

sed 's/EF = { rate = "1mbit" }/EF = { rate = "3mbit" }/' "$work/qosmgr.toml.orig" >"$work/qosmgr.toml"
kill -HUP "$mgr_pid"
if wait_log "SIGHUP: reloaded"; then pass "SIGHUP: reloaded"; else fail "no reload logged"; tail -3 "$work/qosmgr.log"; fi
[[ "$(class_field carrier-x EF capacity_bps)" == 3000000 ]] && pass "SIGHUP: carrier-x EF now 3 mbit" || fail "carrier-x EF capacity $(class_field carrier-x EF capacity_bps) after reload"
n_flows="$(ctl --json flows | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["flows"]))')"
[[ "$n_flows" -ge 1 ]] && pass "SIGHUP: $n_flows reservation(s) kept" || fail "reservations lost on reload"

refused_before="$(grep -c "config not reloaded (nothing changed)" "$work/qosmgr.log")"
sed -e 's/EF = { rate = "1mbit" }/EF = { rate = "3mbit" }/' -e 's/EF = { dscp = 46,/EF = { dscp = 44,/' "$work/qosmgr.toml.orig" >"$work/qosmgr.toml"
kill -HUP "$mgr_pid"
if wait_log "config not reloaded (nothing changed): flow .* DSCP would change from 46 to 44" "$refused_before"; then
  pass "SIGHUP: a DSCP change under live EF flows is refused"
else fail "DSCP change not refused"; tail -3 "$work/qosmgr.log"; fi
[[ "$(class_field lan-a EF dscp)" == 46 ]] && pass "SIGHUP: refused reload changed nothing" || fail "lan-a EF dscp changed by a refused reload"

kill -TERM "$mgr_pid"; wait "$mgr_pid"; rc=$?; mgr_pid=""
[[ $rc == 0 ]] && pass "SIGTERM: clean stop" || fail "qosmgr exit $rc on SIGTERM"

echo "qosmgr_cli_test: $failures failure(s)"
(( failures == 0 ))
