// Several workers (built twice: EAL with 2 and with 3 worker lcores on this
// machine's CPUs), net_ring ports with one queue per worker, and packets of
// one rule spread over every queue as RSS spreads a wildcard rule's
// 5-tuples: each rule is metered by one worker (its owner; the others hand
// its packets over), so it is policed to its rate in total, not per worker,
// and its counters add up exactly.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include <rte_lcore.h>

#include "test/dpdk/ring_appliance.h"
#include "test/fakes/frame_builder.h"

namespace qos::test {
namespace {

using appliance::DropReason;
using appliance::MatchKind;
using Frames = std::vector<std::vector<uint8_t>>;

unsigned workers() { return rte_lcore_count() - 1; }

void expectConservation(RingAppliance& h, Side side) {
  const auto t = h.totals(side);
  EXPECT_EQ(t.rx_pkts, t.tx_pkts + t.droppedTotal()) << "received = transmitted + dropped";
}

// A wildcard rule (any source port) with 10 packets' worth of committed
// burst and a rate that adds none during the test: 400 packets of 400
// source ports over every queue, so every worker sees the rule.  Exactly 10
// pass green (one meter, whoever received them), the rest are red.
TEST(Workers, AWildcardRuleIsPolicedInTotal) {
  ASSERT_GE(workers(), 2u) << "built for several workers";
  // IP bytes of buildFrame(FrameSpec{}): 20 + 8 + 18.
  constexpr unsigned kIpBytes = 46;
  auto h = RingAppliance::create("wild", R"(
[policy]
unmatched = "remark"
[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
dport = 5004
dscp = 46
meter = { mode = "srtcm", cir = "8bit", cbs = "460B", ebs = "1B", yellow = "drop", red = "drop" }
)",
                                 workers());
  ASSERT_TRUE(h);
  constexpr unsigned kPackets = 400;
  for (unsigned i = 0; i < kPackets; ++i) {
    FrameSpec spec;
    spec.src_port = static_cast<uint16_t>(20000 + i);
    h->send(Side::Inside, {buildFrame(spec)}, i);  // queue i % workers
  }
  const Frames out = h->receive(Side::Inside);
  EXPECT_EQ(out.size(), 460 / kIpBytes) << "the committed burst, once, whatever the queues";
  for (const auto& f : out) {
    EXPECT_EQ(dscpOf(f, 14), 46);
  }
  const auto t = h->totals(Side::Inside);
  EXPECT_EQ(t.matched[static_cast<size_t>(MatchKind::Flow)], kPackets);
  EXPECT_EQ(t.drops[static_cast<size_t>(DropReason::MeterRed)] +
                t.drops[static_cast<size_t>(DropReason::MeterYellow)],
            kPackets - 460 / kIpBytes);
  EXPECT_EQ(t.drops[static_cast<size_t>(DropReason::HandoffFull)], 0u);
  expectConservation(*h, Side::Inside);
}

/** The IPv4 frame of @p spec as a fragment: the first (more fragments) or a later one. */
std::vector<uint8_t> fragment(const FrameSpec& spec, bool first) {
  auto f = buildFrame(spec);
  f[20] = first ? 0x20 : 0x00;  // MF on the first; the last has it clear
  f[21] = first ? 0x00 : 0x03;  // a later one at offset 3 * 8 bytes
  f[24] = 0;
  f[25] = 0;
  const uint16_t sum = checksum16(&f[14], 20);
  f[24] = static_cast<uint8_t>(sum >> 8);
  f[25] = static_cast<uint8_t>(sum);
  return f;
}

// A fragmented flow: RSS hashes its first fragments on the 5-tuple and its
// later ones on addresses only, so they come in on different queues; the
// rule (any ports) still meters them all with one meter.
TEST(Workers, AFragmentedFlowIsPolicedInTotal) {
  auto h = RingAppliance::create("frag", R"(
[policy]
unmatched = "remark"
[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
dscp = 46
meter = { mode = "srtcm", cir = "8bit", cbs = "460B", ebs = "1B", yellow = "drop", red = "drop" }
)",
                                 workers());
  ASSERT_TRUE(h);
  constexpr unsigned kPairs = 200;
  for (unsigned i = 0; i < kPairs; ++i) {
    h->send(Side::Inside, {fragment(FrameSpec{}, true)}, 0);
    h->send(Side::Inside, {fragment(FrameSpec{}, false)}, 1 + i % (workers() - 1));
  }
  const Frames out = h->receive(Side::Inside);
  EXPECT_EQ(out.size(), 10u) << "the committed burst (10 packets of 46 IP bytes), once";
  const auto t = h->totals(Side::Inside);
  EXPECT_EQ(t.matched[static_cast<size_t>(MatchKind::Flow)], 2 * kPairs);
  expectConservation(*h, Side::Inside);
}

// Many flows, their packets on every queue, far below their meters: every
// packet is counted once in its flow's counters and in the port's.
TEST(Workers, CountersAddUpExactly) {
  auto h = RingAppliance::create("count", R"(
)",
                                 workers());
  ASSERT_TRUE(h);
  constexpr unsigned kFlows = 64;
  appliance::FlowRule rule = voiceRule();
  for (unsigned f = 0; f < kFlows; ++f) {
    rule.dst_port = static_cast<uint16_t>(7000 + f);
    ASSERT_TRUE(h->app().addFlow(rule).ok());
  }
  constexpr unsigned kRounds = 300;
  size_t n_out = 0;
  for (unsigned r = 0; r < kRounds; ++r) {
    for (unsigned f = 0; f < kFlows; ++f) {
      FrameSpec spec;
      spec.dst_port = static_cast<uint16_t>(7000 + f);
      h->send(Side::Inside, {buildFrame(spec)}, r + f);
    }
    if (r % 16 == 15 || r + 1 == kRounds) {  // well within the TX rings
      n_out += h->receive(Side::Inside).size();
    }
  }
  EXPECT_EQ(n_out, kFlows * kRounds);
  for (unsigned f = 0; f < kFlows; ++f) {
    rule.dst_port = static_cast<uint16_t>(7000 + f);
    const appliance::FlowEntry* e = h->app().entryOf(appliance::RuleId::file(rule));
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->green_counts.pkts.load(), kRounds) << "flow " << f;
  }
  const auto t = h->totals(Side::Inside);
  EXPECT_EQ(t.rx_pkts, kFlows * kRounds);
  EXPECT_EQ(t.tx_pkts, kFlows * kRounds);
  EXPECT_EQ(t.matched[static_cast<size_t>(MatchKind::Flow)], kFlows * kRounds);
  expectConservation(*h, Side::Inside);
}

// Rules added and removed while every worker forwards the flow they name,
// on every queue: every packet comes out, marked by the rule (46) or by the
// trust policy (0), with a good checksum; nothing is lost or leaked.
TEST(Workers, RulesChangeWhileAllWorkersForward) {
  auto h = RingAppliance::create("wchurn", R"(
[policy]
unmatched = "remark"
default_dscp = 0
)",
                                 workers());
  ASSERT_TRUE(h);
  appliance::FlowRule rule = voiceRule();
  std::atomic<bool> done{false};
  std::atomic<uint64_t> n_sent{0};
  std::atomic<uint64_t> n_received{0};
  std::atomic<uint64_t> n_bad{0};
  std::thread traffic([&] {
    const auto frame = buildFrame(FrameSpec{});
    unsigned queue = 0;
    while (!done.load()) {
      if (n_sent.load() - n_received.load() < 1024) {
        h->send(Side::Inside, Frames(8, frame), queue++);
        n_sent += 8;
      }
      for (const auto& f : h->takeOutput(Side::Outside)) {
        ++n_received;
        const uint8_t d = dscpOf(f, 14);
        if ((d != 46 && d != 0) || checksum16(&f[14], 20) != 0) {
          ++n_bad;
        }
      }
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i = 0; i < 2000 || n_sent.load() < 20000; ++i) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "traffic did not flow";
    ASSERT_TRUE(h->app().addFlow(rule).ok());
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    EXPECT_TRUE(h->app().removeFlow(rule));
    h->app().housekeeping();
  }
  done = true;
  traffic.join();
  const Frames rest = h->receive(Side::Inside);
  n_received += rest.size();
  EXPECT_EQ(n_bad.load(), 0u);
  EXPECT_EQ(n_received.load(), n_sent.load()) << "every packet came out";
  const auto t = h->totals(Side::Inside);
  for (size_t r = 0; r < appliance::kDropReasons; ++r) {
    EXPECT_EQ(t.drops[r], 0u) << appliance::dropReasonName(static_cast<DropReason>(r));
  }
  expectConservation(*h, Side::Inside);
}

}  // namespace
}  // namespace qos::test
