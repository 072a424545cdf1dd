#!/usr/bin/python3
"""qosmgr's control channel under abuse, as a process test.

Several peers at once send thousands of malformed, oversized, truncated,
multi-frame, deeply nested and unknown messages, never reading a reply,
while one valid client keeps asking for grants and releasing them.  Prints
what happened as JSON: the valid client's latencies, the manager's resident
memory (idle, peak, final) sampled from /proc, and whether it still serves.

    qosmgr_abuse.py --endpoint tcp://127.0.0.1:PORT --pid PID [--peers 4] [--messages 20000]
"""
import argparse
import json
import multiprocessing
import os
import random
import threading
import time

import zmq


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def envelope(kind, rid, body):
    return json.dumps({"v": 1, "type": kind, "id": rid, "body": body}).encode()


def abusive(i, rng):
    """The i-th abusive message: a list of frames as a DEALER sends them."""
    kind = i % 9
    if kind == 0:
        return [b"", b"{not json"]
    if kind == 1:  # over the 64 KiB limit, under the hard cap: answered too_large
        return [b"", b"[" * 100_000]
    if kind == 2:  # over the hard cap: libzmq drops the connection
        return [b"", b"x" * (200 * 1024)] if i % 90 == 2 else [b"", b"x" * 70_000]
    if kind == 3:  # truncated
        return [b"", envelope("provision", "t", {"app": "voip"})[:-7]]
    if kind == 4:  # too many frames
        return [b"", b"a", b"b", b"c", b"d"]
    if kind == 5:  # no empty delimiter
        return [envelope("ping", "p", {})]
    if kind == 6:  # nested too deep
        return [b"", b"[" * 5000 + b"]" * 5000]
    if kind == 7:  # an unknown type
        return [b"", envelope("launch_missiles", f"u{i}", {})]
    return [b"", bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300)))]


def abuser(endpoint, n, seed, done):
    ctx = zmq.Context()
    rng = random.Random(seed)
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.connect(endpoint)
    for i in range(n):
        frames = abusive(i, rng)
        sock.send_multipart(frames)
    # Let ZeroMQ hand the queue to the kernel before the socket goes.
    deadline = time.time() + 60
    while time.time() < deadline and sock.getsockopt(zmq.EVENTS) & zmq.POLLOUT == 0:
        time.sleep(0.05)
    time.sleep(1)
    sock.close()
    ctx.term()
    done.value += 1


def valid_client(endpoint, stop, out):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    latencies, granted, errors, n = [], 0, [], 0

    def call(kind, body):
        nonlocal n
        n += 1
        rid = f"valid-{n}"
        start = time.monotonic()
        sock.send_multipart([b"", envelope(kind, rid, body)])
        while True:
            if not poller.poll(5000):
                errors.append(f"{kind}: no reply in 5 s")
                latencies.append(5.0)
                return None
            frames = sock.recv_multipart()
            reply = json.loads(frames[-1])
            if reply.get("id") == rid:
                latencies.append(time.monotonic() - start)
                return reply

    port = 40000
    while not stop.is_set():
        port = port + 1 if port < 60000 else 40000
        r = call("provision", {"app": "voip", "src": "198.18.1.10", "sport": port,
                               "request_id": f"r{n}-{port}",
                               "dst": "198.19.1.20", "dport": 20000, "proto": "udp"})
        if r and r.get("status") == "ok":
            granted += 1
            call("release", {"flow_id": r["body"]["flow_id"]})
        elif r:
            errors.append(json.dumps(r.get("error")))
    sock.close()
    ctx.term()
    out.update(latencies=latencies, granted=granted, errors=errors[:5])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--peers", type=int, default=4)
    ap.add_argument("--messages", type=int, default=20000)
    args = ap.parse_args()

    idle = rss_kib(args.pid)
    peak = [idle]
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            peak[0] = max(peak[0], rss_kib(args.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    stop = threading.Event()
    result = {}
    client = threading.Thread(target=valid_client, args=(args.endpoint, stop, result))
    client.start()
    done = multiprocessing.Value("i", 0)
    start = time.monotonic()
    peers = [multiprocessing.Process(target=abuser, args=(args.endpoint, args.messages, s, done))
             for s in range(args.peers)]
    for p in peers:
        p.start()
    for p in peers:
        p.join(300)
    abuse_seconds = time.monotonic() - start
    time.sleep(1)
    stop.set()
    client.join()
    time.sleep(1)
    final = rss_kib(args.pid)
    sampling.set()
    sampler.join()
    lat = sorted(result.get("latencies", [0]))
    print(json.dumps({
        "peers": args.peers, "messages_each": args.messages, "abuse_seconds": round(abuse_seconds, 2),
        "peers_done": done.value,
        "valid_requests": len(lat), "granted": result.get("granted", 0),
        "valid_errors": result.get("errors", []),
        "latency_ms": {"p50": round(lat[len(lat) // 2] * 1000, 2),
                       "p99": round(lat[min(len(lat) - 1, len(lat) * 99 // 100)] * 1000, 2),
                       "max": round(lat[-1] * 1000, 2)},
        "rss_kib": {"idle": idle, "peak": peak[0], "final": final},
    }))


if __name__ == "__main__":
    main()
