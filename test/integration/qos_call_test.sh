#!/usr/bin/env bash
# qos-call, caller and callee, against a real qosmgr on the loopback (the
# caller at 127.0.0.1 in "here", the callee at 127.0.0.2 in "there"): a
# call with QoS (a two-way grant, the reverse DSCP told to the callee, media
# both ways, the grant released at hang-up; set up over UDP and over
# TCP), a call whose QoS is denied
# going best effort (exit 3), an unreachable manager (exit 1), and Ctrl-C
# hanging up early and releasing.  Needs no root.
set -uo pipefail

QOSMGR="${QOSMGR:?path to qosmgr}"
QOSCTL="${QOSCTL:?path to qosctl}"
QOS_CALL="${QOS_CALL:?path to qos-call}"
work="$(mktemp -d /tmp/qos-call-test.XXXXXX)"
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
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.2",0)); print(s.getsockname()[1])'; }
json() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }

mgr="tcp://127.0.0.1:$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$work/qosmgr.toml" <<TOML
[manager]
listen = "$mgr"
state = "$work/state.db"
[metrics]
listen = "127.0.0.1:0"
[[network]]
name = "here"
prefixes = ["127.0.0.1/32"]
class_enabled = true
classes = { EF = { dscp = 46, capacity = "10mbit" } }
[[network]]
name = "there"
prefixes = ["127.0.0.2/32"]
class_enabled = true
classes = { EF = { dscp = 40, capacity = "10mbit" } }
[[link]]
between = ["here", "there"]
[[application]]
name = "voip"
default = { class = "EF", rate = "100kbit", burst = "10kB" }
TOML
"$QOSMGR" --config "$work/qosmgr.toml" >"$work/qosmgr.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "serving on" "$work/qosmgr.log" && break; sleep 0.05; done
flows() { "$QOSCTL" --endpoint "$mgr" --json flows | json 'len(d["flows"])'; }

port=$(free_port)
"$QOS_CALL" listen --bind 127.0.0.2 --port "$port" --calls 5 --seconds 60 --json >"$work/callee.json" 2>"$work/callee.err" &
callee=$!
pids+=("$callee")
sleep 0.3

# 1. A call with QoS.
"$QOS_CALL" dial "127.0.0.2:$port" --app voip --seconds 2 --rate 64kbit --manager "$mgr" --json >"$work/call1.json"
rc=$?
[[ $rc == 0 ]] && pass "a call with QoS: exit 0" || fail "call 1: exit $rc: $(cat "$work/call1.json")"
[[ $(json 'd["qos"]["granted"], d["qos"]["dscp"], d["qos"]["reverse_dscp"], d["qos"]["profile"]' <"$work/call1.json") == "(True, 46, 40, 'default')" ]] &&
  pass "granted: DSCP 46 for the caller, 40 for the callee, default profile" || fail "call 1 QoS: $(cat "$work/call1.json")"
read -r sent got back_sent back_got < <(json 'd["to_callee"]["sent"], d["to_callee"]["received"], d["from_callee"]["sent"], d["from_callee"]["received"]' <"$work/call1.json" | tr -d '(),')
((sent > 80 && got >= sent * 9 / 10 && back_sent > 80 && back_got >= back_sent * 9 / 10)) &&
  pass "media both ways: $sent sent / $got received, back $back_sent / $back_got" || fail "media: $sent $got $back_sent $back_got"
sleep 0.3
[[ $(head -1 "$work/callee.json" | json 'd["dscp"]') == 40 ]] && pass "the callee marked its media with the reverse DSCP it was told (40)" ||
  fail "callee: $(cat "$work/callee.json" "$work/callee.err")"
(($(flows) == 0)) && pass "hung up: the grant was released" || fail "$(flows) flow(s) still held"

# 2. QoS denied: best effort, exit 3.
"$QOS_CALL" dial "127.0.0.2:$port" --app nosuch --seconds 1 --manager "$mgr" --json >"$work/call2.json"
rc=$?
[[ $rc == 3 && $(json 'd["qos"]["granted"], d["qos"]["reason"]' <"$work/call2.json") == "(False, 'unknown_application')" ]] &&
  pass "QoS denied: exit 3, reason unknown_application" || fail "call 2: exit $rc $(cat "$work/call2.json")"
(($(json 'd["from_callee"]["received"]' <"$work/call2.json") > 0)) && pass "...and the call went on best effort" || fail "no media in call 2"
sleep 0.3
[[ $(sed -n 2p "$work/callee.json" | json 'd["dscp"]') == None ]] && pass "the callee sent unmarked" || fail "callee 2: $(sed -n 2p "$work/callee.json")"

# 3. The manager unreachable: best effort, exit 1.
"$QOS_CALL" dial "127.0.0.2:$port" --app voip --seconds 1 --manager "tcp://127.0.0.1:1" --json >"$work/call3.json"
rc=$?
[[ $rc == 1 && $(json 'd["qos"]["granted"]' <"$work/call3.json") == False ]] && pass "manager unreachable: exit 1, best effort" || fail "call 3: exit $rc"

# 4. Ctrl-C hangs up early and releases.
"$QOS_CALL" dial "127.0.0.2:$port" --app voip --seconds 30 --manager "$mgr" --json >"$work/call4.json" &
caller=$!
sleep 1.5
(($(flows) == 1)) && pass "during the call the manager holds its grant" || fail "during call 4: $(flows) flows"
for transport in udp tcp; do
  flag=()
  [[ $transport == tcp ]] && flag=(--tcp)
  "$QOS_CALL" dial "127.0.0.2:$port" --app voip --seconds 1 --manager "$mgr" "${flag[@]}" >/dev/null 2>"$work/busy.err"
  rc=$?
  [[ $rc == 1 ]] && grep -q "is busy in another call" "$work/busy.err" &&
    pass "a second caller over $transport is told the callee is busy (exit 1)" || fail "busy over $transport: exit $rc $(cat "$work/busy.err")"
done
(($(flows) == 1)) && pass "...and asked for no QoS" || fail "after the busy calls: $(flows) flows"
start=$SECONDS
kill -INT "$caller"
wait "$caller"
rc=$?
[[ $rc == 0 && $(json 'd["hung_up_early"]' <"$work/call4.json") == True ]] && pass "Ctrl-C: hung up early (exit 0, $((SECONDS - start)) s)" || fail "call 4: exit $rc $(cat "$work/call4.json")"
(($(flows) == 0)) && pass "Ctrl-C: the grant was released" || fail "after Ctrl-C: $(flows) flows"

# 5. The call set-up over TCP.
"$QOS_CALL" dial "127.0.0.2:$port" --app voip --seconds 1 --manager "$mgr" --tcp --json >"$work/call5.json"
rc=$?
[[ $rc == 0 && $(json 'd["signaling"], d["qos"]["granted"], d["from_callee"]["received"] > 0' <"$work/call5.json") == "('tcp', True, True)" ]] &&
  pass "a call set up over TCP: granted, media both ways" || fail "call 5: exit $rc $(cat "$work/call5.json")"
sleep 0.3
[[ $(sed -n 5p "$work/callee.json" | json 'd["signaling"], d["dscp"]') == "('tcp', 40)" ]] &&
  pass "the callee took it over TCP and marked with the reverse DSCP" || fail "callee 5: $(sed -n 5p "$work/callee.json")"
(($(flows) == 0)) && pass "TCP call hung up: the grant was released" || fail "$(flows) flow(s) after the TCP call"

"$QOS_CALL" dial "127.0.0.2:x" --app voip >/dev/null 2>&1
[[ $? == 2 ]] && pass "a bad callee address: exit 2" || fail "bad address"
wait "$callee"
echo "$passes passed, $failures failed"
((failures == 0 && passes > 0))
