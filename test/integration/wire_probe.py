#!/usr/bin/python3
"""Watches the DSCP of a UDP flow on the wire while something changes it.

One process holds a sending socket in the source host's network namespace
and a packet socket on the receiving host's interface (sockets keep the
namespace they were made in), so every time it takes is on one clock.

  wire_probe.py until  --send NS SRC:SPORT --to DST:DPORT --recv NS IF --tos TOS
                       [--timeout S] [--interval-ms MS] [-- COMMAND...]
      Sends datagrams (TOS 0) every MS until one arrives with TOS; prints
      "seconds N sent N arrived N" and exits 0, or exits 1 on timeout.  N
      seconds are counted from the start, or, with a COMMAND, from when the
      COMMAND (run once the flow is under way) returned: negative when the
      change was on the wire before it returned.  Exits 2 if COMMAND fails.

  wire_probe.py grants --send NS SRC --sport-base P --to DST:DPORT --recv NS IF
                       --tos TOS --count N -- QOSCTL_COMMAND...
      N times: starts a flow from a new source port, runs
      "QOSCTL_COMMAND --json request ... --src SRC:PORT ..." and, once it
      returned, waits for the flow's first datagram carrying TOS at the
      receiver; then releases the grant.  Prints one JSON object: per grant
      the time from the request to the reply, from the reply to the first
      marked datagram, and how many datagrams sent after the reply arrived
      unmarked; then median and worst.  Exits 1 if any grant failed or its
      mark never arrived (within 2 s).

Needs root (setns, packet sockets).
"""

import argparse
import ctypes
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(name, make):
    """Calls make() with this thread in namespace name; returns its result."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open("/var/run/netns/" + name, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
        try:
            return make()
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(target)
        os.close(home)


def host_port(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


class Receiver:
    """Records, per source port, when datagrams to one destination arrive."""

    def __init__(self, netns, ifname, dst, dport, want_tos):
        self.dst = socket.inet_aton(dst)
        self.dport = dport
        self.want_tos = want_tos
        self.lock = threading.Lock()
        self.first_marked = {}  # sport -> (monotonic time, sequence number)
        self.arrived = {}  # sport -> count
        self.unmarked_seqs = {}  # sport -> sequence numbers that arrived unmarked
        self.stop = False

        def make():
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
            s.bind((ifname, ETH_P_IP))
            s.settimeout(0.05)
            return s

        self.sock = in_netns(netns, make)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                frame, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            now = time.monotonic()
            if addr[2] == PACKET_OUTGOING or len(frame) < 14 + 20 + 8 + 4:
                continue
            ip = frame[14:]
            ihl = (ip[0] & 0x0F) * 4
            if ip[0] >> 4 != 4 or ip[9] != 17 or ip[16:20] != self.dst or len(ip) < ihl + 12:
                continue
            sport, dport = struct.unpack("!HH", ip[ihl : ihl + 4])
            if dport != self.dport:
                continue
            (seq,) = struct.unpack("!I", ip[ihl + 8 : ihl + 12])
            with self.lock:
                self.arrived[sport] = self.arrived.get(sport, 0) + 1
                if ip[1] == self.want_tos:
                    self.first_marked.setdefault(sport, (now, seq))
                else:
                    self.unmarked_seqs.setdefault(sport, []).append(seq)

    def marked(self, sport):
        with self.lock:
            return self.first_marked.get(sport)

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


class Sender:
    """Sends numbered datagrams from one socket every interval until stopped;
    sent_at[i] is when datagram i left."""

    def __init__(self, sock, dst, dport, interval):
        self.sock, self.dst, self.dport, self.interval = sock, dst, dport, interval
        self.sent_at = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        seq = 0
        next_at = time.monotonic()
        while not self.stop:
            self.sent_at.append(time.monotonic())
            self.sock.sendto(struct.pack("!I", seq) + b"qosgate-probe", (self.dst, self.dport))
            seq += 1
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def close(self):
        self.stop = True
        self.thread.join()


def udp_socket(netns, src, sport):
    def make():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0)
        s.bind((src, sport))
        return s

    return in_netns(netns, make)


def cmd_until(args):
    src, sport = host_port(args.send[1])
    dst, dport = host_port(args.to)
    receiver = Receiver(args.recv[0], args.recv[1], dst, dport, args.tos)
    sock = udp_socket(args.send[0], src, sport)
    start = time.monotonic()
    sender = Sender(sock, dst, dport, args.interval_ms / 1000)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if command:
        time.sleep(0.05)
        done = subprocess.run(command, capture_output=True, text=True)
        start = time.monotonic()
        if done.returncode != 0:
            sender.close()
            receiver.close()
            print("command exited %d: %s" % (done.returncode, done.stderr.strip()))
            return 2
    while time.monotonic() - start < args.timeout:
        found = receiver.marked(sport)
        if found:
            break
        time.sleep(0.005)
    sender.close()
    receiver.close()
    sent, arrived = len(sender.sent_at), receiver.arrived.get(sport, 0)
    if not found:
        print("timeout %.1f sent %d arrived %d" % (args.timeout, sent, arrived))
        return 1
    print("seconds %.3f sent %d arrived %d" % (found[0] - start, sent, arrived))
    return 0


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def cmd_grants(args):
    dst, dport = host_port(args.to)
    receiver = Receiver(args.recv[0], args.recv[1], dst, dport, args.tos)
    ctl = args.qosctl
    if ctl and ctl[0] == "--":
        ctl = ctl[1:]
    grants, failures = [], []
    for i in range(args.count):
        sport = args.sport_base + i
        sock = udp_socket(args.send[0], args.src, sport)
        sender = Sender(sock, dst, dport, args.interval_ms / 1000)
        time.sleep(0.01)  # a few unmarked datagrams first: the flow exists before its grant
        request = ctl + ["--json", "request", "--app", args.app, "--src", "%s:%d" % (args.src, sport),
                         "--dst", args.to, "--proto", "udp"]
        t_request = time.monotonic()
        done = subprocess.run(request, capture_output=True, text=True)
        t_reply = time.monotonic()
        mark = None
        if done.returncode == 0:
            while time.monotonic() - t_reply < 2.0:
                mark = receiver.marked(sport)
                if mark:
                    break
                time.sleep(0.001)
        sender.close()
        sock.close()
        if done.returncode != 0 or not mark:
            failures.append({"sport": sport, "exit": done.returncode,
                             "stderr": done.stderr.strip(), "marked": bool(mark)})
            if done.returncode != 0:
                continue
        reply = json.loads(done.stdout)
        # Datagrams that left after the reply but arrived unmarked: with the
        # reply held until the appliance enforces, there should be none.
        with receiver.lock:
            unmarked = receiver.unmarked_seqs.get(sport, [])
            late = sum(1 for seq in unmarked if seq < len(sender.sent_at) and sender.sent_at[seq] > t_reply)
        if mark:
            grants.append({"sport": sport, "request_to_reply_ms": (t_reply - t_request) * 1000,
                           "reply_to_mark_ms": (mark[0] - t_reply) * 1000, "unmarked_after_reply": late,
                           "enforced_by": reply.get("enforced_by", [])})
        released = subprocess.run(ctl + ["release", str(reply["flow_id"])], capture_output=True, text=True)
        if released.returncode != 0:
            failures.append({"sport": sport, "release_exit": released.returncode,
                             "stderr": released.stderr.strip()})
    receiver.close()
    summary = {"count": args.count, "marked": len(grants), "failures": failures}
    if grants:
        for key in ("request_to_reply_ms", "reply_to_mark_ms"):
            values = [g[key] for g in grants]
            summary[key] = {"median": percentile(values, 50), "p90": percentile(values, 90),
                            "worst": max(values), "best": min(values)}
        summary["unmarked_after_reply"] = sum(g["unmarked_after_reply"] for g in grants)
        summary["enforced_in_reply"] = sum(1 for g in grants if g["enforced_by"])
    print(json.dumps(summary))
    return 0 if not failures and len(grants) == args.count else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    until = sub.add_parser("until")
    until.add_argument("--send", nargs=2, metavar=("NS", "SRC:SPORT"), required=True)
    until.add_argument("--to", metavar="DST:DPORT", required=True)
    until.add_argument("--recv", nargs=2, metavar=("NS", "IF"), required=True)
    until.add_argument("--tos", type=lambda t: int(t, 0), required=True)
    until.add_argument("--timeout", type=float, default=10)
    until.add_argument("--interval-ms", type=float, default=5)
    until.add_argument("command", nargs=argparse.REMAINDER)
    grants = sub.add_parser("grants")
    grants.add_argument("--send", nargs=1, metavar="NS", required=True)
    grants.add_argument("--src", required=True)
    grants.add_argument("--sport-base", type=int, required=True)
    grants.add_argument("--to", metavar="DST:DPORT", required=True)
    grants.add_argument("--recv", nargs=2, metavar=("NS", "IF"), required=True)
    grants.add_argument("--tos", type=lambda t: int(t, 0), required=True)
    grants.add_argument("--count", type=int, default=100)
    grants.add_argument("--app", default="voip")
    grants.add_argument("--interval-ms", type=float, default=1)
    grants.add_argument("qosctl", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    return cmd_until(args) if args.mode == "until" else cmd_grants(args)


if __name__ == "__main__":
    sys.exit(main())
