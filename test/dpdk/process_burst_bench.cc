// Worker::processBurst() on its own, timed with the TSC: the data plane's
// cost per packet without the RX driver's, and with far less noise than
// tools/bench gives on a shared machine (that is the benchmark of record;
// this one is for comparing two versions of the data plane quickly).
//
//   process_burst_bench [--flows N] [--seconds S] [--dscp D] [--no-meter] [--scatter]
//                       [-- EAL args]
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
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

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

}  // namespace

int main(int argc, char** argv) {
  uint32_t n_flows = 65536;
  double seconds = 5;
  uint8_t dscp = 46;
  bool metered = true;
  bool scatter = false;
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
    } else {
      return fail(
          "usage: process_burst_bench [--flows N] [--seconds S] [--dscp D] [--no-meter] "
          "[--scatter] [-- EAL args]");
    }
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

  // The capture, as plain bytes, one frame per 64-byte line.
  const uint32_t n_frames = std::max(n_flows, kMinFrames);
  std::vector<std::array<uint8_t, 64>> capture(n_frames);
  std::vector<uint16_t> frame_len(n_frames);
  for (uint32_t i = 0; i < n_frames; ++i) {
    const auto frame = qos::test::buildFrame(flowSpec(i % n_flows, scatter));
    std::copy(frame.begin(), frame.end(), capture[i].begin());
    frame_len[i] = static_cast<uint16_t>(frame.size());
  }

  rte_mempool* pool =
      rte_pktmbuf_pool_create("bench_pool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  uint16_t port = 0;
  if (pool == nullptr || rte_eth_dev_get_port_by_name("net_null0", &port) != 0) {
    return fail("no mbuf pool or no net_null0");
  }
  rte_eth_conf conf{};
  if (rte_eth_dev_configure(port, 1, 1, &conf) != 0 ||
      rte_eth_rx_queue_setup(port, 0, 256, static_cast<unsigned>(socket), nullptr, pool) != 0 ||
      rte_eth_tx_queue_setup(port, 0, 256, static_cast<unsigned>(socket), nullptr) != 0 ||
      rte_eth_dev_start(port) != 0) {
    return fail("cannot start net_null0");
  }

  const size_t qsbr_size = rte_rcu_qsbr_get_memsize(1);
  auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("bench_qsbr", qsbr_size, 64));
  if (qsbr == nullptr || rte_rcu_qsbr_init(qsbr, 1) != 0) {
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
  qos::appliance::WorkerShared shared;
  shared.flows = table->get();
  shared.policy = &published;
  shared.qsbr = qsbr;
  shared.stop = &stop;
  const qos::appliance::WorkerQueue queue{port, 0, port, 0};
  // The Worker is large (per-port counters): keep it off the stack.
  auto worker = std::make_unique<qos::appliance::Worker>(
      0, shared, std::vector<qos::appliance::WorkerQueue>{});
  rte_rcu_qsbr_thread_register(qsbr, 0);
  rte_rcu_qsbr_thread_online(qsbr, 0);

  Histogram burst_cycles;
  Histogram loop_cycles;
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t end_tsc = rte_rdtsc() + static_cast<uint64_t>(seconds * static_cast<double>(hz));
  uint32_t next = 0;
  uint64_t n_pkts = 0;
  uint64_t loop_start = rte_rdtsc();
  while (rte_rdtsc() < end_tsc) {
    std::array<rte_mbuf*, kBurstSize> pkts;
    if (rte_pktmbuf_alloc_bulk(pool, pkts.data(), kBurstSize) != 0) {
      return fail("mbuf pool empty: something leaks");
    }
    for (rte_mbuf* m : pkts) {
      rte_memcpy(rte_pktmbuf_mtod(m, void*), capture[next].data(), 64);
      m->data_len = frame_len[next];
      m->pkt_len = frame_len[next];
      next = next + 1 == n_frames ? 0 : next + 1;
    }
    const uint64_t t0 = rte_rdtsc_precise();
    worker->processBurst(policy, t0, queue, pkts.data(), kBurstSize);
    const uint64_t t1 = rte_rdtsc_precise();
    rte_rcu_qsbr_quiescent(qsbr, 0);
    burst_cycles.add(t1 - t0);
    loop_cycles.add(t1 - loop_start);
    loop_start = t1;
    n_pkts += kBurstSize;
  }
  rte_rcu_qsbr_thread_offline(qsbr, 0);
  const auto& c = worker->counters(port);
  std::printf("flows %u%s  packets %lu  remarked %lu  dropped-tx %lu\n", n_flows,
              scatter ? " (scattered)" : "", static_cast<unsigned long>(n_pkts),
              static_cast<unsigned long>(c.remarked_pkts.load()),
              static_cast<unsigned long>(
                  c.drops[static_cast<size_t>(qos::appliance::DropReason::TxFull)].load()));
  std::printf("processBurst: %.1f TSC cycles/packet (median burst); whole loop %.1f\n",
              static_cast<double>(burst_cycles.median()) / kBurstSize,
              static_cast<double>(loop_cycles.median()) / kBurstSize);
  worker.reset();
  table->reset();
  rte_free(qsbr);
  rte_eth_dev_stop(port);
  rte_eal_cleanup();
  return 0;
}
