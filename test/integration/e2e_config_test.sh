#!/usr/bin/env bash
# Process-level checks of qosgate's command line; needs no root and no DPDK
# ports: --help, --version, and --check-config on good and bad configs.
#
#   QOSGATE=/path/to/qosgate bash test/integration/e2e_config_test.sh
#
# Every bad config must be refused with exit code 2 and exactly one line on
# stderr of the form "...FILE:LINE:COLUMN: message" naming the line at fault.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/integration/lib.sh
source "$here/lib.sh"

qg_require_qosgate
qg_init
qg_mktemp
dir=$QG_TMP

# run_qosgate ARGS...: sets rc, out and err from one qosgate run.
run_qosgate() {
  "$QOSGATE" "$@" >"$dir/stdout" 2>"$dir/stderr"
  rc=$?
  out=$(<"$dir/stdout")
  err=$(<"$dir/stderr")
}

# --- --help and --version ------------------------------------------------------
run_qosgate --help
if ((rc == 0)) && grep -q -- '--config' <<<"$out" && grep -q -- '--check-config' <<<"$out"; then
  qg_pass "--help exits 0 and describes --config and --check-config"
else
  qg_fail "--help: exit $rc, stdout: $(head -3 <<<"$out")"
fi
run_qosgate --version
if ((rc == 0)) && grep -Eq '^qosgate [0-9]+\.[0-9]+' <<<"$out"; then
  qg_pass "--version exits 0: $out"
else
  qg_fail "--version: exit $rc, stdout: $out"
fi
run_qosgate --no-such-option
qg_check "an unknown option exits 2 (got $rc)" test "$rc" = 2
run_qosgate --check-config
qg_check "--check-config without --config exits 2 (got $rc)" test "$rc" = 2
run_qosgate --check-config --config "$dir/does-not-exist.toml"
if ((rc == 2)) && grep -q 'does-not-exist.toml' <<<"$err"; then
  qg_pass "a missing config file exits 2 and names the file"
else
  qg_fail "a missing config file: exit $rc, stderr: $err"
fi

# --- a good config ---------------------------------------------------------------
# The pieces every config below starts from.
pair='[[pair]]
inside = "net_af_packet0"
outside = "net_af_packet1"'

cat >"$dir/good.toml" <<EOF
[eal]
args = ["--no-huge", "-m", "512", "--no-pci", "-l", "0-1", "--file-prefix=qg-config-test",
        "--vdev=net_af_packet0,iface=gw-in", "--vdev=net_af_packet1,iface=gw-out"]

$pair

[policy]
unmatched = "remark"
default_dscp = 0
malformed = "forward"

[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
sport = 0
dport = 5004
dscp = 46
meter = { mode = "srtcm", cir = "1mbit", cbs = "16kB", ebs = "16kB", yellow = "pass", red = "drop" }

[[flow]]
src = "2001:db8:1::10"
dst = "2001:db8:1::20"
proto = "udp"
dport = 5006
dscp = 34
meter = { mode = "trtcm", cir = "2mbit", cbs = "16kB", pir = "4mbit", pbs = "32kB", yellow = "remark:10", red = "drop" }

[dataplane]
max_flows = 1048576
idle_sleep_us = 50

[metrics]
listen = "127.0.0.1:9470"
EOF
run_qosgate --check-config --config "$dir/good.toml"
if ((rc == 0)) && [[ -z $err ]]; then
  qg_pass "a good config passes --check-config: $out"
else
  qg_fail "good config: exit $rc, stderr: $err"
fi

# --- bad configs --------------------------------------------------------------------
# expect_refused NAME LINE WHAT: the config in $dir/NAME.toml (written by the
# caller) is refused with exit 2 and one stderr line "NAME.toml:LINE:COL:".
expect_refused() {
  local line=$2 what=$3 file="$dir/$1.toml" n_lines
  run_qosgate --check-config --config "$file"
  n_lines=$(grep -c '' <<<"$err")
  if ((rc == 2 && n_lines == 1)) && grep -Eq "$file:$line:[0-9]+: " <<<"$err"; then
    qg_pass "$what: refused at line $line: $err"
  else
    qg_fail "$what: expected exit 2 and one line '$file:$line:COL: ...'; got exit $rc, $n_lines line(s): $err"
  fi
}

# Line numbers below count from the top of each heredoc; $pair is 3 lines.
cat >"$dir/syntax.toml" <<EOF
$pair
[policy
unmatched = "remark"
EOF
expect_refused syntax 4 "a TOML syntax error (unclosed table header)"

cat >"$dir/unknown-key.toml" <<EOF
$pair
[policy]
unmatched = "remark"
default_dcsp = 0
EOF
expect_refused unknown-key 6 "an unknown key (policy.default_dcsp)"

cat >"$dir/dscp-64.toml" <<EOF
$pair
[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
dport = 5004
dscp = 64
EOF
expect_refused dscp-64 9 "a DSCP of 64 (0..63 allowed)"

cat >"$dir/bad-unit.toml" <<EOF
$pair
[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
dport = 5004
dscp = 46
meter = { mode = "srtcm", cir = "1mbyte", cbs = "16kB", ebs = "16kB" }
EOF
expect_refused bad-unit 10 "a rate with an unknown unit (\"1mbyte\")"

cat >"$dir/family.toml" <<EOF
$pair
[[flow]]
src = "198.18.1.10"
dst = "2001:db8:1::20"
proto = "udp"
dport = 5004
dscp = 46
EOF
expect_refused family 6 "src IPv4 with dst IPv6"

# No [[pair]] at all: there is no line at fault, so the error points at the
# start of the file (line 1).
cat >"$dir/no-pair.toml" <<EOF
[policy]
unmatched = "remark"

[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
dscp = 46
EOF
expect_refused no-pair 1 "a config without [[pair]]"

qg_summary
