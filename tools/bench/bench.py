#!/usr/bin/env python3
"""qosgate forwarding benchmark: qosgate against dpdk-testpmd (io) and DPDK's qos_meter.

Driven by tools/bench/run.sh, which builds the inputs' generator and qos_meter
first.  See tools/bench/README.md for what is measured and how.

For each condition (number of flows x frame size) it runs the three programs
in turn, A B C A B C ..., `repeats` times each, on the same pcap, with the
same worker lcore, and reads the packet rate of each over DPDK telemetry
after a warm-up.  It prints medians, ranges, TSC cycles per packet and the
ratios qosgate/testpmd and qosgate/qos_meter.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from telemetry import Telemetry, TelemetryError, sample  # noqa: E402

PROGRAMS = ("qosgate", "testpmd", "qos_meter")
RX_DEVICE = "net_pcap0"
TX_DEVICE = "net_null0"
# Bytes of DPDK memory per mbuf of the default data room (2176), with the
# mempool's object header and padding, rounded up.
MBUF_FOOTPRINT_BYTES = 2560
# Mbufs beyond the capture: descriptors (2 ports x (1024 RX + 1024 TX)),
# per-lcore caches and bursts in flight, with room to spare.
MBUF_SLACK = 16383
MEMORY_OVERHEAD_BYTES = 1536 << 20  # flow table, rings, memzones
HUGEPAGE_BYTES = 2 << 20
METER_CIR = "100gbit"
TARGET_RATIO_TESTPMD = 0.70
TARGET_CONDITION = (65536, 64)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def human_flows(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}M"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10}K"
    return str(n)


# --- environment ------------------------------------------------------------


def read_first(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def cpu_model():
    model = ""
    for line in read_first("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(l.split(":", 1) for l in lscpu.splitlines() if ":" in l)
        fam = fields.get("CPU family", "").strip()
        mod = fields.get("Model", "").strip()
        hyp = fields.get("Hypervisor vendor", "").strip()
        extra = f" (family {fam} model {mod})" if fam else ""
        if hyp:
            extra += f", {hyp} guest"
        return model + extra
    except OSError:
        return model


def cpu_flags():
    for line in read_first("/proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def dpdk_version():
    try:
        return subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return "?"


def measure_tsc_hz(gen):
    out = subprocess.run([gen, "tsc-hz", "--ms", "1000"], capture_output=True, text=True,
                         check=True).stdout
    return float(out.strip())


def cpu_stat(cpu):
    """(steal jiffies, total jiffies) of one CPU from /proc/stat."""
    for line in read_first("/proc/stat").splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            return v[7] if len(v) > 7 else 0, sum(v[:8])
    return 0, 0


def thread_times(pid):
    """{tid: (ns on CPU, ns runnable but waiting, last CPU)} of a process's threads.

    From /proc/PID/task/TID/schedstat (nanoseconds, unlike the jiffies of stat).
    """
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        sched = read_first(f"/proc/{pid}/task/{tid}/schedstat").split()
        stat = read_first(f"/proc/{pid}/task/{tid}/stat")
        if len(sched) < 2 or not stat:
            continue
        # After the ")" closing the name, fields[0] is stat field 3: processor is field 39.
        fields = stat.rsplit(")", 1)[1].split()
        out[tid] = (int(sched[0]), int(sched[1]), int(fields[36]))
    return out


def raise_priority(pid):
    """Gives a benchmarked process (its own session, hence its own autogroup) nice -20.

    With autogroups, nice only ranks tasks of one session against each other;
    the autogroup's own nice ranks it against the other sessions, such as a
    compiler running in another shell.  Returns False if the kernel said no.
    """
    ok = True
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write("-20")
    except OSError:
        ok = False
    try:
        os.setpriority(os.PRIO_PROCESS, pid, -20)
    except OSError:
        ok = False
    return ok


# --- memory -----------------------------------------------------------------


class Memory:
    """EAL memory arguments; reserves and later releases 2 MB hugepages when asked."""

    NR_PATH = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"

    def __init__(self, mode, workdir, max_mbufs):
        self.mode = mode
        self.mount = os.path.join(workdir, "hugetlbfs")
        self.added_pages = 0
        self.mounted = False
        self.need_bytes = max_mbufs * MBUF_FOOTPRINT_BYTES + MEMORY_OVERHEAD_BYTES
        self.description = ""

    def setup(self):
        if self.mode in ("auto", "hugepages"):
            try:
                self._reserve()
                return
            except (OSError, RuntimeError) as e:
                self.release()
                if self.mode == "hugepages":
                    raise
                log(f"hugepages unavailable ({e}); using --no-huge")
        self.mode = "nohuge"
        self.description = "--no-huge (anonymous 4 KiB pages), -m sized per condition"

    def _reserve(self):
        pages = math.ceil(self.need_bytes / HUGEPAGE_BYTES)
        before = int(read_first(self.NR_PATH, "0"))
        with open(self.NR_PATH, "w") as f:
            f.write(str(before + pages))
        after = int(read_first(self.NR_PATH, "0"))
        self.added_pages = max(0, after - before)
        if after < before + pages:
            raise RuntimeError(f"asked for {pages} 2 MB pages, the kernel gave {after - before}")
        os.makedirs(self.mount, exist_ok=True)
        subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "nodev", self.mount],
                       check=True)
        self.mounted = True
        self.mode = "hugepages"
        self.description = (f"2 MB hugepages ({pages} reserved for the run, released after), "
                            f"hugetlbfs at {self.mount}, --huge-unlink")

    def release(self):
        if self.mounted:
            subprocess.run(["umount", self.mount], check=False)
            self.mounted = False
        if self.added_pages:
            now = int(read_first(self.NR_PATH, "0"))
            with open(self.NR_PATH, "w") as f:
                f.write(str(max(0, now - self.added_pages)))
            self.added_pages = 0

    def eal_args(self, n_mbufs):
        if self.mode == "hugepages":
            return ["--huge-dir", self.mount, "--huge-unlink"]
        mb = math.ceil((n_mbufs * MBUF_FOOTPRINT_BYTES + MEMORY_OVERHEAD_BYTES) / (1 << 20))
        return ["--no-huge", "-m", str(mb)]


# --- inputs -----------------------------------------------------------------


class Condition:
    def __init__(self, n_flows, frame_bytes, min_packets):
        self.n_flows = n_flows
        self.frame_bytes = frame_bytes
        self.n_packets = max(n_flows, min_packets)
        self.n_mbufs = self.n_packets + MBUF_SLACK
        self.pcap = None
        self.config = None

    @property
    def label(self):
        return f"{human_flows(self.n_flows)} flows, {self.frame_bytes} B"

    @property
    def key(self):
        return f"{self.n_flows}x{self.frame_bytes}"


def prepare_inputs(cond, gen, inputs_dir):
    """Writes the condition's pcap and qosgate config unless they already exist."""
    os.makedirs(inputs_dir, exist_ok=True)
    cond.pcap = os.path.join(inputs_dir, f"flows{cond.n_flows}-pkts{cond.n_packets}-"
                             f"{cond.frame_bytes}B.pcap")
    cond.config = os.path.join(inputs_dir, f"flows{cond.n_flows}-mbufs{cond.n_mbufs}-"
                               f"{METER_CIR}.toml")
    gen_mtime = os.path.getmtime(gen)
    for path, args in (
        (cond.pcap, ["pcap", "--flows", str(cond.n_flows), "--packets", str(cond.n_packets),
                     "--frame-bytes", str(cond.frame_bytes)]),
        (cond.config, ["config", "--flows", str(cond.n_flows), "--mbufs", str(cond.n_mbufs),
                       "--cir", METER_CIR]),
    ):
        if os.path.exists(path) and os.path.getmtime(path) >= gen_mtime:
            continue
        log(f"writing {path}")
        subprocess.run([gen, *args, "--out", path + ".tmp"], check=True)
        os.replace(path + ".tmp", path)


# --- one run ----------------------------------------------------------------


class RunError(Exception):
    pass


class Bench:
    def __init__(self, args, memory, tsc_hz, logdir):
        self.args = args
        self.memory = memory
        self.tsc_hz = tsc_hz
        self.logdir = logdir

    def command(self, program, cond, prefix):
        worker, control = self.args.worker_lcore, self.args.control_lcore
        eal = ["--no-pci", "--file-prefix", prefix,
               "--vdev", f"{RX_DEVICE},rx_pcap={cond.pcap},infinite_rx=1",
               "--vdev", f"{TX_DEVICE},no-rx=1", *self.memory.eal_args(cond.n_mbufs)]
        two_lcores = ["-l", f"{control},{worker}", "--main-lcore", str(control)]
        env = dict(os.environ)
        if program == "qosgate":
            # Main lcore: the control thread; the one other lcore: the one worker.
            return [self.args.qosgate, "--config", cond.config, "--", *two_lcores, *eal], env
        if program == "testpmd":
            # Main lcore: the command line; --nb-cores=1: one forwarding lcore.
            return [self.args.testpmd, *two_lcores, *eal, "--",
                    "--forward-mode=io", "--auto-start", "--nb-cores=1", "--rxq=1", "--txq=1",
                    "--rxd=1024", "--txd=1024", "--burst=32", "--mbcache=256",
                    f"--total-num-mbufs={cond.n_mbufs}", "--no-mlockall"], env
        # qos_meter accepts exactly one lcore, its main one, which runs the loop.
        # -p 3: the lowest port of the mask receives, the other transmits.
        env["QOSBENCH_NB_MBUF"] = str(cond.n_mbufs)
        return [self.args.qos_meter, "-l", str(worker), *eal, "--", "-p", "3"], env

    def run(self, program, cond, repeat):
        prefix = f"qosbench-{program}"
        shutil.rmtree(os.path.join("/var/run/dpdk", prefix), ignore_errors=True)
        cmd, env = self.command(program, cond, prefix)
        log_path = os.path.join(self.logdir, f"{cond.key}-{program}-{repeat}.log")
        with open(log_path, "w") as logf:
            logf.write("$ " + " ".join(cmd) + "\n")
            logf.flush()
            t_launch = time.monotonic()
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=logf,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        if self.args.priority == "high":
            raise_priority(proc.pid)
        tel = Telemetry(prefix)
        try:
            result = self._measure(program, proc, tel, t_launch, log_path)
        finally:
            tel.close()
            self._stop(program, proc)
            shutil.rmtree(os.path.join("/var/run/dpdk", prefix), ignore_errors=True)
        result.update(self._check_log(program, log_path))
        result["log"] = log_path
        return result

    def _measure(self, program, proc, tel, t_launch, log_path):
        deadline = t_launch + self.args.startup_timeout
        ports = None
        while True:
            if proc.poll() is not None:
                raise RunError(f"{program} exited with {proc.returncode} before forwarding; "
                               f"see {log_path}")
            if time.monotonic() > deadline:
                raise RunError(f"{program} did not forward within {self.args.startup_timeout} s; "
                               f"see {log_path}")
            try:
                if tel.sock is None:
                    tel.connect()
                if ports is None:
                    names = tel.ports_by_name()
                    if RX_DEVICE in names and TX_DEVICE in names:
                        ports = names
                if ports is not None and int(tel.stats(ports[TX_DEVICE])["opackets"]) > 0:
                    break
            except TelemetryError:
                tel.close()
            time.sleep(0.25)
        startup_s = time.monotonic() - t_launch
        rx_port, tx_port = ports[RX_DEVICE], ports[TX_DEVICE]
        if program == "qos_meter" and rx_port != 0:
            # -p 3 makes the lower port id the receiving one.
            raise RunError(f"qos_meter: {RX_DEVICE} is port {rx_port}, expected 0")

        time.sleep(self.args.warmup)
        worker = self.args.worker_lcore
        steal0 = cpu_stat(worker)
        threads0 = thread_times(proc.pid)
        samples = [sample(tel, rx_port, tx_port)]
        for _ in range(int(self.args.seconds)):
            time.sleep(self.args.seconds / int(self.args.seconds))
            samples.append(sample(tel, rx_port, tx_port))
        threads1 = thread_times(proc.pid)
        steal1 = cpu_stat(worker)

        first, last = samples[0], samples[-1]
        dt = last["t"] - first["t"]
        tx_pps = (last["tx_opackets"] - first["tx_opackets"]) / dt
        rx_pps = (last["rx_ipackets"] - first["rx_ipackets"]) / dt
        per_second = [
            (b["tx_opackets"] - a["tx_opackets"]) / (b["t"] - a["t"])
            for a, b in zip(samples, samples[1:])
        ]
        # The busiest thread is the worker: where it ran, how much of the window
        # it was on the CPU, and how long it waited for it while runnable.
        busiest = None
        for tid, (run1, wait1, cpu) in threads1.items():
            run0, wait0, _ = threads0.get(tid, (run1, wait1, cpu))
            if busiest is None or run1 - run0 > busiest[0]:
                busiest = (run1 - run0, wait1 - wait0, cpu)
        steal_j, total_j = steal1[0] - steal0[0], steal1[1] - steal0[1]
        n_tx = last["tx_opackets"] - first["tx_opackets"]
        return {
            "program": program,
            "startup_s": startup_s,
            "window_s": dt,
            "tx_pps": tx_pps,
            "rx_pps": rx_pps,
            "per_second_tx_pps": per_second,
            "rx_port": rx_port,
            "tx_port": tx_port,
            "worker_cpu": busiest[2] if busiest else None,
            "worker_busy": (busiest[0] / 1e9 / dt) if busiest else None,
            "worker_wait": (busiest[1] / 1e9 / dt) if busiest else None,
            # TSC cycles per packet counting only the time the worker was on its CPU.
            "oncpu_cycles_per_pkt": (busiest[0] / 1e9 * self.tsc_hz / n_tx)
            if busiest and n_tx else None,
            "steal_fraction": (steal_j / total_j) if total_j > 0 else 0.0,
            "tx_oerrors": last["tx_oerrors"] - first["tx_oerrors"],
            "rx_nombuf": last["rx_nombuf"] - first["rx_nombuf"],
        }

    def _stop(self, program, proc):
        if proc.poll() is None:
            try:
                if program == "testpmd":
                    proc.stdin.write(b"\n")  # "Press enter to exit"
                    proc.stdin.flush()
                else:
                    proc.send_signal(signal.SIGINT)  # qosgate prints its final counters
            except (OSError, ValueError):
                pass
            try:
                proc.wait(timeout=self.args.stop_timeout)
            except subprocess.TimeoutExpired:
                log(f"{program} (pid {proc.pid}) did not stop in {self.args.stop_timeout} s: "
                    "SIGKILL")
                proc.kill()
                proc.wait()
        if proc.stdin:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def _check_log(self, program, log_path):
        """qosgate's final counters: were all packets forwarded, re-marked, none leaked?"""
        if program != "qosgate":
            return {}
        with open(log_path, errors="replace") as f:
            text = f.read()
        m = re.search(rf"^\d+\s+{RX_DEVICE}\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)",
                      text, re.M)
        if not m:
            return {"qosgate_final": None}
        rx, tx, dropped, malformed, non_ip, remarked = (int(x) for x in m.groups())
        return {"qosgate_final": {
            "rx_pkts": rx, "tx_pkts": tx, "dropped": dropped, "malformed": malformed,
            "non_ip": non_ip, "remarked": remarked,
            "conservation_ok": "CONSERVATION VIOLATED" not in text,
            "mbufs_leaked": "mbufs in use after stop: 0 of" not in text,
        }}


# --- report -----------------------------------------------------------------


def summarize(results, tsc_hz):
    """{(cond key, program): stats} from the list of run results."""
    table = {}
    for r in results:
        table.setdefault((r["cond"], r["program"]), []).append(r)
    out = {}
    for (cond, program), runs in table.items():
        ok = [r for r in runs if "tx_pps" in r]
        if not ok:
            out[(cond, program)] = {"n": 0, "failed": len(runs)}
            continue
        pps = [r["tx_pps"] for r in ok]
        med = statistics.median(pps)
        out[(cond, program)] = {
            "n": len(ok),
            "failed": len(runs) - len(ok),
            "median_pps": med,
            "min_pps": min(pps),
            "max_pps": max(pps),
            "cycles_per_pkt": tsc_hz / med,
            "startup_s": statistics.median(r["startup_s"] for r in ok),
            "busy": min((r["worker_busy"] or 0) for r in ok),
            "oncpu_cycles_per_pkt": statistics.median(r["oncpu_cycles_per_pkt"] or 0 for r in ok),
            "cpus": sorted({r["worker_cpu"] for r in ok}),
            "max_loss": max(1 - r["tx_pps"] / r["rx_pps"] if r["rx_pps"] else 0 for r in ok),
            "max_steal": max(r["steal_fraction"] for r in ok),
            "by_repeat": {r["repeat"]: r["tx_pps"] for r in ok},
        }
    return out


def paired_ratio(a, b):
    """Median over repeats of a/b, pairing the runs made in the same round."""
    rounds = sorted(set(a["by_repeat"]) & set(b["by_repeat"]))
    if not rounds:
        return None
    return statistics.median(a["by_repeat"][k] / b["by_repeat"][k] for k in rounds)


def render(conditions, summary, header_lines):
    lines = list(header_lines)
    lines.append("")
    head = (f"{'condition':<17} {'program':<10} {'Mpps median (min-max)':<23} {'cyc/pkt':>7} "
            f"{'on-CPU':>6} {'/testpmd':>8} {'/qos_meter':>10} {'busy':>5} {'start s':>7}")
    lines.append(head)
    lines.append("-" * len(head))
    verdicts = []
    fmt = lambda x: f"{x:.2f}" if x is not None else "-"  # noqa: E731
    for cond in conditions:
        tp = summary.get((cond.key, "testpmd"), {})
        qm = summary.get((cond.key, "qos_meter"), {})
        for i, program in enumerate(PROGRAMS):
            s = summary.get((cond.key, program), {"n": 0, "failed": 0})
            label = cond.label if i == 0 else ""
            if s["n"] == 0:
                lines.append(f"{label:<17} {program:<10} FAILED ({s.get('failed', 0)} runs)")
                continue
            rate = (f"{s['median_pps'] / 1e6:6.2f} ({s['min_pps'] / 1e6:.2f}-"
                    f"{s['max_pps'] / 1e6:.2f})")
            r_tp = s["median_pps"] / tp["median_pps"] if tp.get("n") else None
            r_qm = s["median_pps"] / qm["median_pps"] if qm.get("n") else None
            lines.append(f"{label:<17} {program:<10} {rate:<23} {s['cycles_per_pkt']:7.0f} "
                         f"{s['oncpu_cycles_per_pkt']:6.0f} {fmt(r_tp):>8} {fmt(r_qm):>10} "
                         f"{s['busy'] * 100:4.0f}% {s['startup_s']:7.1f}")
            if s["failed"]:
                lines.append(f"{'':<17} {'':<10} ({s['failed']} failed runs left out)")
        if (cond.n_flows, cond.frame_bytes) == TARGET_CONDITION:
            q = summary.get((cond.key, "qosgate"), {})
            if q.get("n") and tp.get("n") and qm.get("n"):
                rt = q["median_pps"] / tp["median_pps"]
                rq = q["median_pps"] / qm["median_pps"]
                verdicts.append(
                    f"Target ({cond.label}): qosgate/testpmd = {rt:.2f} (needs >= "
                    f"{TARGET_RATIO_TESTPMD:.2f}: {'MET' if rt >= TARGET_RATIO_TESTPMD else 'NOT MET'}"
                    f"; paired by round {fmt(paired_ratio(q, tp))}; on-CPU cycles "
                    f"{tp['oncpu_cycles_per_pkt'] / q['oncpu_cycles_per_pkt']:.2f}); "
                    f"qosgate/qos_meter = {rq:.2f} (needs > 1.00: {'MET' if rq > 1.0 else 'NOT MET'}"
                    f"; paired {fmt(paired_ratio(q, qm))})")
    lines.append("")
    lines.extend(verdicts)
    return "\n".join(lines)


def checks(results):
    """Lines about anything that makes a figure doubtful."""
    notes = []
    for r in results:
        tag = f"{r['cond']} {r['program']} #{r['repeat']}"
        if "error" in r:
            notes.append(f"FAILED {tag}: {r['error']}")
            continue
        if r["tx_pps"] < r["rx_pps"] * 0.995:
            notes.append(f"{tag}: transmitted {r['tx_pps'] / r['rx_pps']:.4f} of received")
        if r["worker_cpu"] is not None and r["worker_cpu"] != r["worker_lcore"]:
            notes.append(f"{tag}: busiest thread last ran on CPU {r['worker_cpu']}")
        if r["worker_busy"] is not None and r["worker_busy"] < 0.95:
            notes.append(f"{tag}: worker thread busy only {r['worker_busy']:.0%} of the window")
        if r["steal_fraction"] > 0.02:
            notes.append(f"{tag}: {r['steal_fraction']:.1%} of the worker CPU's time was stolen "
                         "by the hypervisor")
        final = r.get("qosgate_final")
        if r["program"] == "qosgate":
            if not final:
                notes.append(f"{tag}: no final counter table in {r['log']}")
            else:
                if final["dropped"] or not final["conservation_ok"] or final["mbufs_leaked"]:
                    notes.append(f"{tag}: final counters: {final}")
                if final["remarked"] != final["rx_pkts"]:
                    notes.append(f"{tag}: only {final['remarked']} of {final['rx_pkts']} packets "
                                 "re-marked (not all matched an admitted flow?)")
    return notes


# --- main -------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description="qosgate vs dpdk-testpmd io vs qos_meter")
    p.add_argument("--quick", action="store_true",
                   help="smoke check: 1 and 64K flows, 64 B, 2 repeats, short windows")
    p.add_argument("--qosgate", required=True)
    p.add_argument("--testpmd", default="/usr/bin/dpdk-testpmd")
    p.add_argument("--qos-meter", required=True)
    p.add_argument("--gen", required=True, help="qosbench-gen")
    p.add_argument("--workdir", default="/tmp/qosbench")
    p.add_argument("--flows", default="1,65536,1048576")
    p.add_argument("--sizes", default="64,512")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=float, default=3.0, help="seconds after forwarding starts")
    p.add_argument("--seconds", type=float, default=5.0, help="measurement window")
    p.add_argument("--min-packets", type=int, default=65536,
                   help="pcap holds max(flows, this) packets, flows round-robin")
    p.add_argument("--worker-lcore", type=int, default=1)
    p.add_argument("--control-lcore", type=int, default=0)
    p.add_argument("--memory", choices=["auto", "hugepages", "nohuge"], default="auto")
    p.add_argument("--priority", choices=["high", "normal"], default="high",
                   help="high: each benchmarked process gets nice -20 (and its autogroup)")
    p.add_argument("--startup-timeout", type=float, default=300.0)
    p.add_argument("--stop-timeout", type=float, default=120.0)
    args = p.parse_args()
    if args.quick:
        args.flows, args.sizes = "1,65536", "64"
        args.repeats, args.warmup, args.seconds = 2, 1.0, 2.0
    args.flows = [int(x) for x in args.flows.split(",")]
    args.sizes = [int(x) for x in args.sizes.split(",")]
    args.seconds = max(1.0, args.seconds)
    return args


def main():
    args = parse_args()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logdir = os.path.join(args.workdir, "logs", stamp)
    os.makedirs(logdir, exist_ok=True)
    conditions = [Condition(f, s, args.min_packets) for f in args.flows for s in args.sizes]

    # The stop path must run whatever happens: SIGTERM becomes an exception.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    memory = Memory(args.memory, args.workdir, max(c.n_mbufs for c in conditions))
    results = []
    t_start = time.time()
    try:
        for cond in conditions:
            prepare_inputs(cond, args.gen, os.path.join(args.workdir, "inputs"))
        memory.setup()
        tsc_hz = measure_tsc_hz(args.gen)
        load_before = os.getloadavg()
        bench = Bench(args, memory, tsc_hz, logdir)
        total = len(conditions) * args.repeats * len(PROGRAMS)
        done = 0
        for cond in conditions:
            for repeat in range(args.repeats):
                for program in PROGRAMS:
                    done += 1
                    try:
                        r = bench.run(program, cond, repeat)
                    except (RunError, TelemetryError, OSError) as e:
                        r = {"program": program, "error": str(e)}
                        log(f"[{done}/{total}] {cond.label} {program} #{repeat}: FAILED: {e}")
                    else:
                        log(f"[{done}/{total}] {cond.label} {program} #{repeat}: "
                            f"{r['tx_pps'] / 1e6:.2f} Mpps (start-up {r['startup_s']:.1f} s, "
                            f"worker CPU {r['worker_cpu']} busy {r['worker_busy']:.0%})")
                    r.update(cond=cond.key, repeat=repeat, worker_lcore=args.worker_lcore)
                    results.append(r)
        load_after = os.getloadavg()
    finally:
        memory.release()

    elapsed = time.time() - t_start
    summary = summarize(results, tsc_hz)
    flags = cpu_flags()
    qosgate_version = subprocess.run([args.qosgate, "--version"], capture_output=True,
                                     text=True).stdout.strip()
    header = [
        "qosgate forwarding benchmark (tools/bench)",
        f"  date            {stamp}, total {elapsed / 60:.1f} min",
        f"  CPU             {cpu_model()}, {os.cpu_count()} CPUs, kernel {platform.release()}",
        f"  TSC             {tsc_hz / 1e6:.1f} MHz, measured: rdtsc over 1 s of "
        f"CLOCK_MONOTONIC_RAW (constant_tsc={'constant_tsc' in flags}, "
        f"nonstop_tsc={'nonstop_tsc' in flags})",
        f"  DPDK            {dpdk_version()}; {qosgate_version}",
        f"  lcores          worker/forwarding lcore = CPU {args.worker_lcore} for all three "
        f"programs; qosgate and testpmd main lcore = CPU {args.control_lcore}; qos_meter runs "
        f"only lcore {args.worker_lcore}",
        f"  ports           {RX_DEVICE} (rx_pcap=FILE,infinite_rx=1) -> {TX_DEVICE} (no-rx=1); "
        f"one RX and one TX queue each, 1024 descriptors, burst 32",
        f"  memory          {memory.description}; one mbuf pool per program sized to the "
        f"capture + {MBUF_SLACK}",
        f"  traffic         UDP/IPv4, N distinct 5-tuples, frame = captured length without FCS; "
        f"pcap holds max(N, {args.min_packets}) packets, flows round-robin",
        f"  qosgate         every flow admitted (exact 5-tuple), srTCM color-blind meter "
        f"cir={METER_CIR} cbs=ebs=64kB (all green), green -> DSCP 46, red -> drop; "
        f"max_flows=1048576",
        "  qos_meter       DPDK example as shipped (srTCM color-blind, cir 46 MB/s, "
        "cbs=ebs=2048, 256 meters chosen by dst IP low byte; never drops green-marked input), "
        "adapted only to run on vdevs: RX offloads CHECKSUM -> none, pool size NB_MBUF 8192 -> "
        "same as the others; -l <worker> -- -p 3",
        "  testpmd         --forward-mode=io (no packet access): the floor",
        f"  counter         {TX_DEVICE} opackets over DPDK telemetry (same for all three); "
        f"{args.warmup:g} s warm-up after the first forwarded packet, {args.seconds:g} s window",
        f"  repeats         {args.repeats} per program and condition, alternating "
        f"{' '.join(PROGRAMS)} {' '.join(PROGRAMS)} ...; median (min-max) of the runs",
        "  cyc/pkt         TSC Hz / median pps: the worker's core cost per packet if it had "
        "the core to itself",
        "  on-CPU          TSC cycles the worker thread was on its CPU (schedstat) per packet, "
        "median: less sensitive to other load",
        "  busy            least share of the window the worker thread was on its CPU (ideal "
        "100%), over the runs",
        f"  priority        {args.priority}" + (": each program in its own session, its autogroup "
                                             "at nice -20 (against other work on the machine)"
                                             if args.priority == "high" else ""),
        f"  load average    {load_before[0]:.2f} before, {load_after[0]:.2f} after",
    ]
    mapping = {}
    for r in results:
        if "rx_port" in r:
            mapping.setdefault(r["program"], set()).add((r["rx_port"], r["tx_port"]))
    header.append("  port ids        (read by name over telemetry in every run) " + "; ".join(
        f"{p}: " + ", ".join(f"{RX_DEVICE}={a} {TX_DEVICE}={b}" for a, b in sorted(m))
        for p, m in mapping.items()))
    report = render(conditions, summary, header)
    notes = checks(results)
    if notes:
        report += "\n\nChecks:\n" + "\n".join("  " + n for n in notes)
    else:
        report += ("\n\nChecks: all runs forwarded everything they received on the worker CPU; "
                   "qosgate dropped nothing and re-marked every packet (all matched a flow).")
    print(report)
    with open(os.path.join(args.workdir, f"results-{stamp}.txt"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(args.workdir, f"results-{stamp}.json"), "w") as f:
        json.dump({"tsc_hz": tsc_hz, "args": {k: v for k, v in vars(args).items()},
                   "results": results}, f, indent=1)
    log(f"report: {os.path.join(args.workdir, f'results-{stamp}.txt')}; raw: .json; logs: {logdir}")
    failed = sum(1 for r in results if "error" in r)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
