// Worker::processBurst() on its own, timed with the TSC: the data plane's
// cost per packet without the RX driver's, and with far less noise than
// tools/bench gives on a shared machine (that is the benchmark of record;
// this one is for comparing two versions of the data plane quickly).
//
//   process_burst_bench [--flows N] [--seconds S] [--dscp D] [--no-meter] [--scatter]
//                       [--aligned | --spread] [--no-handoff] [-- EAL args]
//
// Like tools/bench: N admitted UDP flows with a srTCM meter far above the
// offered rate (all green, DSCP 0 -> 46), 64-byte frames, flow i =
// 198.18.(i>>8).(i&255):1024+(i>>16) -> 198.19.0.(i&255):5004, a capture of
// max(N, 65536) frames sent round-robin, and a flow table of 1M flows.  Each
// burst of 32 is copied from the capture into fresh mbufs (as net_pcap's
// infinite_rx does), handed to processBurst() and sent to net_null0.  Prints
// the median TSC cycles per packet inside processBurst() and of the whole loop.
// --dscp 0 (no rewrite) and --no-meter take those steps out, to see what they cost.
//
// --scatter gives flow i the addresses 198.18.(x>>24).(x>>16)/16 ->
// 198.19.(x>>8).x with x = i * 2654435761 (mod 2^32, a bijection) and ports
// 1024 -> 5004 instead.  Why: CRC32C is linear, so the default flows, whose
// keys differ in a few low bits, fall into a structured subset of the hash's
// buckets, and how small that subset is (how well it caches) depends on the
// key's byte layout rather than on the table.  Scattered keys spread over the
// buckets as real traffic's do, whatever the layout.
//
// Several workers: one per EAL lcore (-l 0-1: two), each on its own lcore
// with its own stream of bursts and its own TX queue of net_null0, as RSS
// would give them.  By default each flow is in one worker's stream, chosen by
// a hash of its number (an exact flow stays on one RSS queue, which need not
// be its entry's owner), and a worker hands the packets of flows another
// worker owns over that worker's ring, as qosgate does.  --aligned puts each
// flow in its owner's stream (the best case: nothing is handed over);
// --spread puts every flow in every stream (a wildcard rule that RSS
// spreads); --no-handoff makes each worker meter whatever it receives, as
// qosgate did before flow entries had owners (with --spread two cores then
// write one meter unsynchronized: fast and wrong).  Prints, per worker, the median
// cycles of a burst's processBurst() plus its drainHandoff() per packet it
// received, and the packets all workers received per second.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "appliance/dataplane/worker.h"
#include "test/fakes/frame_builder.h"

namespace {

using qos::appliance::kBurstSize;

constexpr uint32_t kTableCapacity = 1u << 20;
constexpr uint32_t kMinFrames = 65536;

int fail(const std::string& what) {
  std::fprintf(stderr, "process_burst_bench: %s\n", what.c_str());
  return 1;
}

std::string dotted(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c) + "." +
         std::to_string(d);
}

qos::test::FrameSpec flowSpec(uint32_t i, bool scatter) {
  qos::test::FrameSpec spec;
  if (scatter) {
    const uint32_t x = i * 2654435761u;
    spec.src = dotted(198, 18, x >> 24, (x >> 16) & 0xFF);
    spec.dst = dotted(198, 19, (x >> 8) & 0xFF, x & 0xFF);
    spec.src_port = 1024;
  } else {
    spec.src = dotted(198, 18, (i >> 8) & 0xFF, i & 0xFF);
    spec.dst = dotted(198, 19, 0, i & 0xFF);
    spec.src_port = static_cast<uint16_t>(1024 + (i >> 16));
  }
  spec.dst_port = 5004;
  spec.payload_bytes = 18;  // 14 + 20 + 8 + 18 = 60 bytes: a minimum frame without FCS
  return spec;
}

/** Burst durations in TSC cycles, one bucket per cycle; the last bucket takes all longer ones. */
class Histogram {
public:
  void add(uint64_t cycles) {
    ++counts_[std::min<uint64_t>(cycles, counts_.size() - 1)];
    ++n_;
  }
  uint64_t median() const {
    uint64_t seen = 0;
    for (size_t c = 0; c < counts_.size(); ++c) {
      seen += counts_[c];
      if (2 * seen > n_) {
        return c;
      }
    }
    return counts_.size() - 1;
  }

private:
  std::vector<uint64_t> counts_ = std::vector<uint64_t>(1u << 16);
  uint64_t n_ = 0;
};

/** One worker's lcore: its stream of frames, its timings. */
struct Lane {
  qos::appliance::Worker* worker = nullptr;
  qos::appliance::WorkerQueue queue;
  std::vector<uint32_t> frames;  ///< capture indices, in the order this lane sends them
  Histogram burst_cycles;
  Histogram loop_cycles;
  uint64_t n_pkts = 0;
  bool pool_empty = false;
};

struct Bench {
  const std::vector<std::array<uint8_t, 64>>* capture = nullptr;
  const std::vector<uint16_t>* frame_len = nullptr;
  rte_mempool* pool = nullptr;
  rte_rcu_qsbr* qsbr = nullptr;
  const qos::appliance::PolicySnapshot* policy = nullptr;
  unsigned n_workers = 1;
  bool handoff = false;  ///< whether the workers have hand-off rings
  uint64_t end_tsc = 0;
  std::atomic<unsigned> ready{0};
  std::vector<Lane> lanes;
};

Bench* g_bench = nullptr;

/** The timed loop of one worker; every lane starts it at once. */
int runLane(void*) {
  Bench& b = *g_bench;
  const unsigned id = rte_lcore_index(static_cast<int>(rte_lcore_id()));
  Lane& lane = b.lanes[id];
  rte_rcu_qsbr_thread_register(b.qsbr, id);
  rte_rcu_qsbr_thread_online(b.qsbr, id);
  b.ready.fetch_add(1);
  while (b.ready.load() < b.n_workers) {
    rte_pause();
  }
  const auto& capture = *b.capture;
  const auto& frame_len = *b.frame_len;
  size_t next = 0;
  uint64_t loop_start = rte_rdtsc();
  while (rte_rdtsc() < b.end_tsc) {
    std::array<rte_mbuf*, kBurstSize> pkts;
    if (rte_pktmbuf_alloc_bulk(b.pool, pkts.data(), kBurstSize) != 0) {
      lane.pool_empty = true;
      break;
    }
    for (rte_mbuf* m : pkts) {
      const uint32_t f = lane.frames[next];
      rte_memcpy(rte_pktmbuf_mtod(m, void*), capture[f].data(), 64);
      m->data_len = frame_len[f];
      m->pkt_len = frame_len[f];
      next = next + 1 == lane.frames.size() ? 0 : next + 1;
    }
    const uint64_t t0 = rte_rdtsc_precise();
    lane.worker->processBurst(*b.policy, t0, lane.queue, pkts.data(), kBurstSize);
    if (b.handoff) {
      lane.worker->drainHandoff(*b.policy, t0);
    }
    const uint64_t t1 = rte_rdtsc_precise();
    rte_rcu_qsbr_quiescent(b.qsbr, id);
    lane.burst_cycles.add(t1 - t0);
    lane.loop_cycles.add(t1 - loop_start);
    loop_start = t1;
    lane.n_pkts += kBurstSize;
  }
  rte_rcu_qsbr_thread_offline(b.qsbr, id);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t n_flows = 65536;
  double seconds = 5;
  uint8_t dscp = 46;
  bool metered = true;
  bool scatter = false;
  bool spread = false;
  bool aligned = false;
  bool handoff = true;
  int eal_first = argc;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      eal_first = i + 1;
      break;
    }
    if (arg == "--flows" && i + 1 < argc) {
      n_flows = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::strtod(argv[++i], nullptr);
    } else if (arg == "--dscp" && i + 1 < argc) {
      dscp = static_cast<uint8_t>(std::strtoul(argv[++i], nullptr, 10) & 0x3F);
    } else if (arg == "--no-meter") {
      metered = false;
    } else if (arg == "--scatter") {
      scatter = true;
    } else if (arg == "--spread") {
      spread = true;
    } else if (arg == "--aligned") {
      aligned = true;
    } else if (arg == "--no-handoff") {
      handoff = false;
    } else {
      return fail(
          "usage: process_burst_bench [--flows N] [--seconds S] [--dscp D] [--no-meter] "
          "[--scatter] [--aligned | --spread] [--no-handoff] [-- EAL args]");
    }
  }
  if (n_flows == 0 || (aligned && spread)) {
    return fail("--flows must be at least 1; --aligned and --spread exclude each other");
  }
  std::vector<std::string> eal = {argv[0]};
  if (eal_first < argc) {
    eal.insert(eal.end(), argv + eal_first, argv + argc);
  } else {
    eal.insert(eal.end(), {"--no-huge", "-m", "2048", "--no-pci", "-l", "0",
                           "--file-prefix=process_burst_bench", "--log-level=lib.eal:error"});
  }
  eal.emplace_back("--vdev=net_null0,no-rx=1");
  std::vector<char*> eal_argv;
  eal_argv.reserve(eal.size());
  for (std::string& a : eal) {
    eal_argv.push_back(a.data());
  }
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    return fail("rte_eal_init failed");
  }
  const int socket = static_cast<int>(rte_socket_id());
  const unsigned n_workers = rte_lcore_count();

  // The capture, as plain bytes, one frame per 64-byte line.
  const uint32_t n_frames = std::max(n_flows, kMinFrames);
  std::vector<std::array<uint8_t, 64>> capture(n_frames);
  std::vector<uint16_t> frame_len(n_frames);
  for (uint32_t i = 0; i < n_frames; ++i) {
    const auto frame = qos::test::buildFrame(flowSpec(i % n_flows, scatter));
    std::copy(frame.begin(), frame.end(), capture[i].begin());
    frame_len[i] = static_cast<uint16_t>(frame.size());
  }

  // Enough mbufs for every lane's burst in flight and every hand-off ring full.
  const unsigned n_mbufs = 8191 + (n_workers > 1 ? n_workers * 4096 : 0);
  rte_mempool* pool =
      rte_pktmbuf_pool_create("bench_pool", n_mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  uint16_t port = 0;
  if (pool == nullptr || rte_eth_dev_get_port_by_name("net_null0", &port) != 0) {
    return fail("no mbuf pool or no net_null0");
  }
  rte_eth_conf conf{};
  const auto n_queues = static_cast<uint16_t>(n_workers);
  if (rte_eth_dev_configure(port, n_queues, n_queues, &conf) != 0) {
    return fail("cannot configure net_null0");
  }
  for (uint16_t q = 0; q < n_queues; ++q) {
    if (rte_eth_rx_queue_setup(port, q, 256, static_cast<unsigned>(socket), nullptr, pool) != 0 ||
        rte_eth_tx_queue_setup(port, q, 256, static_cast<unsigned>(socket), nullptr) != 0) {
      return fail("cannot set up the queues of net_null0");
    }
  }
  if (rte_eth_dev_start(port) != 0) {
    return fail("cannot start net_null0");
  }

  const size_t qsbr_size = rte_rcu_qsbr_get_memsize(n_workers);
  auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("bench_qsbr", qsbr_size, 64));
  if (qsbr == nullptr || rte_rcu_qsbr_init(qsbr, n_workers) != 0) {
    return fail("cannot create the RCU variable");
  }
  auto table = qos::appliance::FlowTable::create("bench", kTableCapacity, socket, qsbr);
  if (!table) {
    return fail(table.error().message);
  }
  qos::appliance::MeterConfig meter;
  meter.cir_bytes_per_sec = 12'500'000'000;  // 100 Gbit/s: every packet is green
  meter.cbs_bytes = 64'000;
  meter.ebs_bytes = 64'000;
  for (uint32_t i = 0; i < n_flows; ++i) {
    const qos::test::FrameSpec spec = flowSpec(i, scatter);
    qos::appliance::FlowRule rule;
    rule.src = *qos::parseIpAddress(spec.src);
    rule.dst = *qos::parseIpAddress(spec.dst);
    rule.protocol = 17;
    rule.src_port = spec.src_port;
    rule.dst_port = spec.dst_port;
    rule.dscp = dscp;
    if (metered) {
      rule.meter = meter;
    }
    if (auto r = (*table)->add(rule); !r) {
      return fail("flow " + std::to_string(i) + ": " + r.error().message);
    }
  }
  const qos::appliance::PolicySnapshot policy =
      qos::appliance::PolicySnapshot::build(qos::appliance::TrafficPolicy{});
  const std::atomic<const qos::appliance::PolicySnapshot*> published{&policy};
  const std::atomic<bool> stop{false};

  std::vector<rte_ring*> rings;
  if (n_workers > 1 && handoff) {
    for (unsigned w = 0; w < n_workers; ++w) {
      rte_ring* ring =
          rte_ring_create(("bench_ho" + std::to_string(w)).c_str(), 4096, socket, RING_F_SC_DEQ);
      if (ring == nullptr) {
        return fail("cannot create a hand-off ring");
      }
      rings.push_back(ring);
    }
  }
  qos::appliance::WorkerShared shared;
  shared.flows = table->get();
  shared.policy = &published;
  shared.qsbr = qsbr;
  shared.stop = &stop;
  shared.n_workers = rings.empty() ? 1 : n_workers;
  shared.handoff = rings.empty() ? nullptr : rings.data();

  Bench bench;
  g_bench = &bench;
  bench.capture = &capture;
  bench.frame_len = &frame_len;
  bench.pool = pool;
  bench.qsbr = qsbr;
  bench.policy = &policy;
  bench.n_workers = n_workers;
  bench.handoff = !rings.empty();
  bench.lanes.resize(n_workers);
  // The Workers are large (per-port counters): keep them off the stack.
  std::vector<std::unique_ptr<qos::appliance::Worker>> workers;
  for (unsigned w = 0; w < n_workers; ++w) {
    Lane& lane = bench.lanes[w];
    lane.queue =
        qos::appliance::WorkerQueue{port, static_cast<uint16_t>(w), port, static_cast<uint16_t>(w)};
    workers.push_back(std::make_unique<qos::appliance::Worker>(
        w, shared, std::vector<qos::appliance::WorkerQueue>{lane.queue}));
    lane.worker = workers.back().get();
  }
  for (uint32_t f = 0; f < n_frames; ++f) {
    unsigned w = (((f % n_flows) * 2654435761u) >> 16) % n_workers;  // the flow's RSS queue
    if (aligned) {
      qos::appliance::ParsedPacket parsed;
      qos::appliance::parsePacket(std::span<const uint8_t>(capture[f].data(), frame_len[f]),
                                  frame_len[f], parsed);
      w = (*table)->ownerOf((*table)->find(parsed.key), n_workers);
    }
    for (unsigned l = 0; l < n_workers; ++l) {
      if (spread || l == w) {
        bench.lanes[l].frames.push_back(f);
      }
    }
  }
  for (const Lane& lane : bench.lanes) {
    if (lane.frames.empty()) {
      return fail("a worker has no flow in its stream: give more flows, or --spread");
    }
  }

  const uint64_t hz = rte_get_tsc_hz();
  bench.end_tsc = rte_rdtsc() + static_cast<uint64_t>(seconds * static_cast<double>(hz));
  const uint64_t start_tsc = rte_rdtsc();
  rte_eal_mp_remote_launch(runLane, nullptr, CALL_MAIN);
  rte_eal_mp_wait_lcore();
  const double elapsed = static_cast<double>(rte_rdtsc() - start_tsc) / static_cast<double>(hz);
  // What is still in a ring was handed over after its owner stopped: it goes now.
  if (!rings.empty()) {
    for (Lane& lane : bench.lanes) {
      while (lane.worker->drainHandoff(policy, rte_rdtsc())) {
      }
    }
  }

  uint64_t n_pkts = 0;
  uint64_t remarked = 0;
  uint64_t tx_full = 0;
  uint64_t handoff_full = 0;
  for (const Lane& lane : bench.lanes) {
    if (lane.pool_empty) {
      return fail("mbuf pool empty: something leaks");
    }
    n_pkts += lane.n_pkts;
    const auto& c = lane.worker->counters(port);
    remarked += c.remarked_pkts.load();
    tx_full += c.drops[static_cast<size_t>(qos::appliance::DropReason::TxFull)].load();
    handoff_full += c.drops[static_cast<size_t>(qos::appliance::DropReason::HandoffFull)].load();
  }
  const std::string streams = std::string(" (") +
                              (spread    ? "spread"
                               : aligned ? "aligned"
                                         : "hashed") +
                              (rings.empty() ? ", no hand-off)" : ", hand-off)");
  std::printf("flows %u%s  workers %u%s  packets %lu  remarked %lu  dropped-tx %lu", n_flows,
              scatter ? " (scattered)" : "", n_workers, n_workers == 1 ? "" : streams.c_str(),
              static_cast<unsigned long>(n_pkts), static_cast<unsigned long>(remarked),
              static_cast<unsigned long>(tx_full));
  if (!rings.empty()) {
    std::printf("  dropped-handoff-full %lu", static_cast<unsigned long>(handoff_full));
  }
  std::printf("\n");
  for (unsigned w = 0; w < n_workers; ++w) {
    const Lane& lane = bench.lanes[w];
    std::printf("%sprocessBurst%s: %.1f TSC cycles/packet (median burst); whole loop %.1f\n",
                n_workers > 1 ? ("worker " + std::to_string(w) + " ").c_str() : "",
                n_workers > 1 ? "+drainHandoff" : "",
                static_cast<double>(lane.burst_cycles.median()) / kBurstSize,
                static_cast<double>(lane.loop_cycles.median()) / kBurstSize);
  }
  std::printf("all workers: %.2f Mpps received\n", static_cast<double>(n_pkts) / elapsed / 1e6);
  workers.clear();
  for (rte_ring* ring : rings) {
    rte_ring_free(ring);
  }
  table->reset();
  rte_free(qsbr);
  rte_eth_dev_stop(port);
  rte_eal_cleanup();
  return 0;
}
