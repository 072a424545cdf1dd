// FlowTable on its own: keys, wildcard masks, replace, remove, capacity.
#include "appliance/flows/flow_table.h"

#include <memory>

#include <gtest/gtest.h>

#include <rte_lcore.h>
#include <rte_malloc.h>

#include "appliance/dataplane/packet_parser.h"
#include "test/fakes/frame_builder.h"

namespace qos::test {
namespace {

using appliance::FlowEntry;
using appliance::FlowKey;
using appliance::FlowRule;
using appliance::FlowTable;

// One RCU variable with one (never online) reader: grace periods end at once.
class FlowTableTest : public ::testing::Test {
protected:
  void SetUp() override {
    const size_t size = rte_rcu_qsbr_get_memsize(1);
    qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("test_qsbr", size, RTE_CACHE_LINE_SIZE));
    ASSERT_NE(qsbr_, nullptr);
    ASSERT_EQ(rte_rcu_qsbr_init(qsbr_, 1), 0);
  }
  void TearDown() override {
    table_.reset();
    rte_free(qsbr_);
  }
  FlowTable& make(uint32_t capacity) {
    auto t = FlowTable::create("t" + std::to_string(counter_++), capacity,
                               static_cast<int>(rte_socket_id()), qsbr_);
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    table_ = std::move(*t);
    return *table_;
  }

  // The entry a packet finds, probing masks as the worker does; nullptr if none.
  const FlowEntry* find(const FlowTable& table, const FrameSpec& spec) {
    const auto frame = buildFrame(spec);
    appliance::ParsedPacket p;
    EXPECT_EQ(appliance::parsePacket(frame, p), appliance::ParseStatus::Ip);
    for (uint8_t mask : appliance::kMaskProbeOrder) {
      if ((table.activeMasks() & (1u << mask)) == 0) {
        continue;
      }
      FlowKey key = p.key;
      appliance::applyMask(key, mask);
      const void* keys[1] = {&key};
      FlowEntry* found[1] = {nullptr};
      if (table.lookupBulk(keys, 1, found) & 1u) {
        return found[0];
      }
    }
    return nullptr;
  }

  static FlowRule rule(uint8_t proto, uint16_t sport, uint16_t dport, uint8_t dscp) {
    FlowRule r;
    r.src = *parseIpAddress("198.18.1.10");
    r.dst = *parseIpAddress("198.19.1.20");
    r.protocol = proto;
    r.src_port = sport;
    r.dst_port = dport;
    r.dscp = dscp;
    return r;
  }

  rte_rcu_qsbr* qsbr_ = nullptr;
  std::unique_ptr<FlowTable> table_;
  static inline int counter_ = 0;
};

TEST_F(FlowTableTest, ExactAndWildcardRules) {
  FlowTable& t = make(1024);
  ASSERT_TRUE(t.add(rule(17, 40000, 5004, 40)).ok());
  ASSERT_TRUE(t.add(rule(17, 0, 5004, 46)).ok());
  ASSERT_TRUE(t.add(rule(0, 0, 0, 10)).ok());
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.activeMasks(), (1u << 0) | (1u << appliance::kWildSrcPort) |
                                 (1u << (appliance::kWildSrcPort | appliance::kWildDstPort |
                                         appliance::kWildProtocol)));
  FrameSpec exact;
  ASSERT_NE(find(t, exact), nullptr);
  EXPECT_EQ(find(t, exact)->dscp, 40);
  FrameSpec any_sport;
  any_sport.src_port = 1;
  EXPECT_EQ(find(t, any_sport)->dscp, 46);
  FrameSpec tcp;
  tcp.protocol = 6;
  EXPECT_EQ(find(t, tcp)->dscp, 10);
  FrameSpec other_host;
  other_host.dst = "198.19.1.21";
  EXPECT_EQ(find(t, other_host), nullptr);
}

TEST_F(FlowTableTest, ReplaceKeepsOneEntryAndRemoveForgets) {
  FlowTable& t = make(1024);
  ASSERT_TRUE(t.add(rule(17, 0, 5004, 46)).ok());
  ASSERT_TRUE(t.add(rule(17, 0, 5004, 34)).ok());
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(find(t, FrameSpec{})->dscp, 34);
  EXPECT_TRUE(t.remove(appliance::flowKeyOf(rule(17, 0, 5004, 0))));
  EXPECT_FALSE(t.remove(appliance::flowKeyOf(rule(17, 0, 5004, 0))));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.activeMasks(), 0u);
  EXPECT_EQ(find(t, FrameSpec{}), nullptr);
  EXPECT_EQ(t.reclaim(), 0u) << "no reader is online: everything is reclaimed";
}

TEST_F(FlowTableTest, FullTableRefusesAndRecoversAfterRemove) {
  FlowTable& t = make(1024);
  for (uint16_t i = 0; i < 1024; ++i) {
    ASSERT_TRUE(t.add(rule(17, 1, static_cast<uint16_t>(i + 1), 46)).ok()) << i;
  }
  auto refused = t.add(rule(17, 1, 2000, 46));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("full"), std::string::npos);
  // Removing one makes room again once its slot is reclaimed.
  ASSERT_TRUE(t.remove(appliance::flowKeyOf(rule(17, 1, 1, 0))));
  EXPECT_TRUE(t.add(rule(17, 1, 2000, 46)).ok());
}

TEST_F(FlowTableTest, FlowsWithEqualMetersShareOneProfile) {
  FlowTable& t = make(1024);
  appliance::MeterConfig gold;
  gold.cir_bytes_per_sec = 125'000;
  gold.cbs_bytes = 16'000;
  gold.ebs_bytes = 16'000;
  appliance::MeterConfig silver = gold;
  silver.cir_bytes_per_sec = 62'500;
  for (uint16_t i = 0; i < 100; ++i) {
    FlowRule r = rule(17, 1, static_cast<uint16_t>(i + 1), 46);
    r.meter = i % 2 == 0 ? gold : silver;
    // Actions are per flow: they do not make a profile of their own.
    r.meter->red = appliance::PacketAction{appliance::PacketAction::Kind::Remark,
                                           static_cast<uint8_t>(i % 64)};
    ASSERT_TRUE(t.add(r).ok()) << i;
  }
  EXPECT_EQ(t.profileCount(), 2u);
  FrameSpec even;
  even.src_port = 1;
  even.dst_port = 1;
  FrameSpec odd = even;
  odd.dst_port = 2;
  const FlowEntry* e = find(t, even);
  const FlowEntry* o = find(t, odd);
  ASSERT_NE(e, nullptr);
  ASSERT_NE(o, nullptr);
  EXPECT_NE(e->profile, o->profile);
  EXPECT_EQ(t.profiles()[e->profile].srtcm.cbs, 16'000u);
  EXPECT_EQ(o->red.dscp, 1);

  // Replacing every silver flow by an unmetered one leaves gold alone; the
  // silver profile goes once the replaced entries are reclaimed.
  for (uint16_t i = 1; i < 100; i += 2) {
    ASSERT_TRUE(t.add(rule(17, 1, static_cast<uint16_t>(i + 1), 10)).ok()) << i;
  }
  EXPECT_EQ(t.reclaim(), 0u);
  EXPECT_EQ(t.profileCount(), 1u);
  for (uint16_t i = 0; i < 100; ++i) {
    EXPECT_TRUE(t.remove(appliance::flowKeyOf(rule(17, 1, static_cast<uint16_t>(i + 1), 0))));
  }
  EXPECT_EQ(t.reclaim(), 0u);
  EXPECT_EQ(t.profileCount(), 0u);
}

TEST_F(FlowTableTest, FreedEntriesArePoisonedAndReused) {
  FlowTable& t = make(1024);
  ASSERT_TRUE(t.add(rule(17, 0, 5004, 46)).ok());
  const FlowEntry* first = find(t, FrameSpec{});
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->dscp, 46);
  ASSERT_TRUE(t.remove(appliance::flowKeyOf(rule(17, 0, 5004, 0))));
  // No reader is online, so the grace period is over at once.  The slot is
  // table memory: reading it here, after the free, is what a worker must
  // never do, and what the poison would show.
  EXPECT_EQ(t.reclaim(), 0u);
  EXPECT_EQ(first->dscp, appliance::kPoisonedDscp);
  EXPECT_EQ(first->meter_kind, appliance::MeterKind::None);
  // The slot is reused, fully reset.
  ASSERT_TRUE(t.add(rule(17, 0, 5004, 34)).ok());
  const FlowEntry* second = find(t, FrameSpec{});
  EXPECT_EQ(second, first);
  EXPECT_EQ(second->dscp, 34);
  EXPECT_EQ(second->green_counts.pkts.load(), 0u);
}

TEST_F(FlowTableTest, HoldsOneMillionFlows) {
  constexpr uint32_t kFlows = 1u << 20;
  FlowTable& t = make(kFlows);
  FlowRule r = rule(17, 0, 0, 46);
  for (uint32_t i = 0; i < kFlows; ++i) {
    r.src.bytes[2] = static_cast<uint8_t>(i >> 8);
    r.src.bytes[3] = static_cast<uint8_t>(i);
    r.dst.bytes[2] = static_cast<uint8_t>(i >> 16);
    r.src_port = static_cast<uint16_t>(1024 + (i & 7));
    r.dst_port = 5004;
    ASSERT_TRUE(t.add(r).ok()) << "flow " << i;
  }
  EXPECT_EQ(t.size(), kFlows);
  size_t iterated = 0;
  t.forEach([&](const FlowEntry&) { ++iterated; });
  EXPECT_EQ(iterated, kFlows);
  // Spot-check lookups through the packet path.
  for (uint32_t i = 0; i < kFlows; i += 4099) {
    FrameSpec spec;
    spec.src = "198.18." + std::to_string((i >> 8) & 0xFF) + "." + std::to_string(i & 0xFF);
    spec.dst = "198.19." + std::to_string((i >> 16) & 0xFF) + ".20";
    spec.src_port = static_cast<uint16_t>(1024 + (i & 7));
    ASSERT_NE(find(t, spec), nullptr) << "flow " << i;
  }
}

}  // namespace
}  // namespace qos::test
