#!/usr/bin/env python3
"""Samples port counters of any running DPDK 22.11 process over its telemetry socket.

Every DPDK process (qosgate, dpdk-testpmd, the qos_meter example) serves
/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2, a SOCK_SEQPACKET socket: on
connect it sends {"version", "pid", "max_output_len"}; each command written
("/ethdev/stats,1") gets one JSON reply (the protocol of
/usr/bin/dpdk-telemetry.py).  Reading the same ethdev counters in all three
programs measures them alike, and only in steady state: sampling starts after
the start-up (config parsing, flow insertion, pcap loading) is over.

As a command, for a quick look at a running process:

    telemetry.py PREFIX [--port net_null0] [--counter opackets] [--seconds 5]

prints the port's packet rate over the window.
"""

import argparse
import json
import os
import socket
import sys
import time

RUNTIME_DIR = "/var/run/dpdk"


class TelemetryError(Exception):
    pass


class Telemetry:
    """One connection to a DPDK process's telemetry socket."""

    def __init__(self, prefix, runtime_dir=RUNTIME_DIR):
        self.path = os.path.join(runtime_dir, prefix, "dpdk_telemetry.v2")
        self.sock = None
        self.info = None
        self.max_output_len = 16384

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(self.path)
            hello = json.loads(sock.recv(65536).decode())
        except (OSError, ValueError) as e:
            sock.close()
            raise TelemetryError(f"{self.path}: {e}") from e
        self.sock = sock
        self.info = hello
        self.max_output_len = int(hello.get("max_output_len", 16384))
        return hello

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def query(self, command):
        """Sends one command; returns the value of its reply ({command: value})."""
        if self.sock is None:
            raise TelemetryError("not connected")
        try:
            self.sock.send(command.encode())
            reply = self.sock.recv(self.max_output_len + 1024)
        except OSError as e:
            raise TelemetryError(f"{command}: {e}") from e
        if not reply:
            raise TelemetryError(f"{command}: the process closed the socket")
        data = json.loads(reply.decode())
        key = command.split(",", 1)[0]
        if key not in data:
            raise TelemetryError(f"{command}: unexpected reply {data!r}")
        return data[key]

    def ports_by_name(self):
        """{device name: port id}, from /ethdev/list and /ethdev/info."""
        names = {}
        for port_id in self.query("/ethdev/list") or []:
            info = self.query(f"/ethdev/info,{port_id}")
            names[info["name"]] = int(port_id)
        return names

    def stats(self, port_id):
        return self.query(f"/ethdev/stats,{port_id}")


def sample(tel, rx_port, tx_port):
    """One timestamped reading of the RX port's ipackets and the TX port's opackets.

    The timestamp is the midpoint of the two queries (each takes well under
    a millisecond), so over a window of seconds its error is negligible.
    """
    t0 = time.monotonic()
    rx = tel.stats(rx_port)
    tx = tel.stats(tx_port)
    t1 = time.monotonic()
    return {
        "t": (t0 + t1) / 2,
        "rx_ipackets": int(rx["ipackets"]),
        "rx_nombuf": int(rx.get("rx_nombuf", 0)),
        "tx_opackets": int(tx["opackets"]),
        "tx_oerrors": int(tx.get("oerrors", 0)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefix", help="the process's EAL --file-prefix")
    parser.add_argument("--port", default="net_null0", help="device name (default net_null0)")
    parser.add_argument("--counter", default="opackets", choices=["opackets", "ipackets"])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    tel = Telemetry(args.prefix)
    hello = tel.connect()
    ports = tel.ports_by_name()
    if args.port not in ports:
        sys.exit(f"no port named {args.port}; ports: {ports}")
    port_id = ports[args.port]
    t0, c0 = time.monotonic(), int(tel.stats(port_id)[args.counter])
    time.sleep(args.seconds)
    t1, c1 = time.monotonic(), int(tel.stats(port_id)[args.counter])
    rate = (c1 - c0) / (t1 - t0)
    print(f"{hello.get('version')} pid {hello.get('pid')}: {args.port} (port {port_id}) "
          f"{args.counter}: {rate / 1e6:.3f} Mpps over {t1 - t0:.2f} s")


if __name__ == "__main__":
    main()
