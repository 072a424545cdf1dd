// Host enforcement on a fake kernel: the nftables commands a grant
// produces, what start() finds out and cleans up, all-or-nothing changes
// per grant, and everything taken back at the end.
#include "control/agent/enforce/host_enforcer.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/agent/enforce/nft_rules.h"
#include "control/common/ip_prefix.h"
#include "test/fakes/fake_host_kernel.h"

namespace qos::agent {
namespace {

using test::FakeHostKernel;

control::Grant grantOf(uint64_t flow_id, const std::string& src, const std::string& dst,
                       uint16_t sport, uint16_t dport) {
  control::Grant g;
  g.flow_id = flow_id;
  g.flow.src = *parseIpAddress(src);
  g.flow.dst = *parseIpAddress(dst);
  g.flow.protocol = 17;
  g.flow.src_port = sport;
  g.flow.dst_port = dport;
  g.dscp = 46;
  g.profile = {"EF", 1'000'000, 12'500};
  return g;
}

TEST(NftRulesTest, AGrantsChainMarksPolicesAndPicksItsClass) {
  EnforcedFlow f;
  f.flow_id = 7;
  f.flow = grantOf(7, "198.18.1.10", "198.19.1.20", 0, 5004).flow;
  f.dscp = 46;
  f.rate_bps = 1'000'000;
  f.burst_bytes = 12'500;
  f.police = true;
  EXPECT_EQ(nftAddFlow(NftPlace{}, f),
            "add chain inet qos_agent flow_7\n"
            "add rule inet qos_agent flow_7 limit rate over 125000 bytes/second burst 12500 "
            "bytes drop\n"
            "add rule inet qos_agent flow_7 ip dscp set 46\n"
            "add element inet qos_agent flows4_dport { 198.18.1.10 . 198.19.1.20 . udp . 5004 : "
            "goto flow_7 }\n");
  EXPECT_EQ(nftRemoveFlow(NftPlace{}, f),
            "delete element inet qos_agent flows4_dport { 198.18.1.10 . 198.19.1.20 . udp . 5004 "
            "}\n"
            "flush chain inet qos_agent flow_7\n"
            "delete chain inet qos_agent flow_7\n");

  f.police = false;
  f.tc_class = 0xa9e00003u;
  f.flow = grantOf(7, "2001:db8::1", "2001:db8:1::2", 4000, 443).flow;
  f.flow.protocol = 6;
  f.dscp = 34;
  EXPECT_EQ(nftAddFlow(NftPlace{}, f),
            "add chain inet qos_agent flow_7\n"
            "add rule inet qos_agent flow_7 ip6 dscp set 34\n"
            "add rule inet qos_agent flow_7 meta priority set a9e0:3\n"
            "add element inet qos_agent flows6 { 2001:db8::1 . 2001:db8:1::2 . tcp . 4000 . 443 "
            ": goto flow_7 }\n");
  EXPECT_EQ(tcHandleText(0xa9e00000u), "a9e0:");
  // The table: both families' maps looked up from one chain, at the output
  // hook or at one device's egress.
  const std::string table = nftCreateTable(NftPlace{});
  EXPECT_NE(table.find("add table inet qos_agent"), std::string::npos);
  EXPECT_NE(table.find("type filter hook output priority mangle"), std::string::npos);
  // Eight hash maps (no intervals), the most specific looked up first.
  EXPECT_NE(table.find("add map inet qos_agent flows4 { type ipv4_addr . ipv4_addr . inet_proto "
                       ". inet_service . inet_service : verdict; }"),
            std::string::npos)
      << table;
  EXPECT_EQ(table.find("interval"), std::string::npos);
  const std::vector<std::string> lookups = {
      "ip saddr . ip daddr . meta l4proto . th sport . th dport vmap @flows4\n",
      "ip saddr . ip daddr . meta l4proto . th dport vmap @flows4_dport\n",
      "ip saddr . ip daddr . meta l4proto . th sport vmap @flows4_sport\n",
      "ip saddr . ip daddr . meta l4proto vmap @flows4_noport\n",
      "ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport vmap @flows6\n",
      "ip6 saddr . ip6 daddr . meta l4proto vmap @flows6_noport\n",
  };
  size_t at = 0;
  for (const std::string& lookup : lookups) {
    const size_t found = table.find(lookup, at);
    ASSERT_NE(found, std::string::npos) << lookup << "in order, in\n" << table;
    at = found;
  }
  control::FlowSpec any_port = f.flow;
  any_port.src_port = 0;
  any_port.dst_port = 0;
  EXPECT_EQ(nftMapOf(any_port), "flows6_noport");
  EXPECT_EQ(nftFlowKey(any_port), "2001:db8::1 . 2001:db8:1::2 . tcp");
  any_port.src_port = 4000;
  EXPECT_EQ(nftMapOf(any_port), "flows6_sport");
  const NftPlace egress{"eth0"};
  EXPECT_NE(nftCreateTable(egress).find("add chain netdev qos_agent out { type filter hook egress "
                                        "device \"eth0\" priority 0; policy accept; }"),
            std::string::npos);
  EXPECT_EQ(nftAddFlow(egress, f).substr(0, 36), "add chain netdev qos_agent flow_7\nad");
  EXPECT_EQ(nftDeleteTables(),
            "add table inet qos_agent\ndelete table inet qos_agent\n"
            "add table netdev qos_agent\ndelete table netdev qos_agent\n");
}

class HostEnforcerTest : public ::testing::Test {
protected:
  Result<std::unique_ptr<HostEnforcer>> start(EnforceConfig config) {
    config.mode = EnforceMode::Nftables;
    return HostEnforcer::start(config, std::make_unique<FakeHostKernel>(kernel_));
  }
  void SetUp() override { kernel_.roots["eth0"] = RootQdisc{"fq_codel", 0}; }

  FakeHostKernel::State kernel_;
};

TEST_F(HostEnforcerTest, StartCleansUpAnEarlierRunAndShapesOnTheDefaultRoutesInterface) {
  kernel_.roots["eth0"] = RootQdisc{"htb", HostEnforcer::kHtbRoot};  // left by a killed agent
  kernel_.table = true;
  kernel_.elements.insert("stale");
  auto e = start({});
  ASSERT_TRUE(e.ok()) << e.error().message;
  ASSERT_GE(kernel_.nft.size(), 2u);
  EXPECT_EQ(kernel_.nft[0], nftDeleteTables()) << "the earlier table goes first";
  EXPECT_EQ(kernel_.nft[1], nftCreateTable(NftPlace{}));
  EXPECT_TRUE(kernel_.elements.empty());
  EXPECT_EQ(kernel_.ops, (std::vector<std::string>{
                             "nft", "delete-root eth0 a9e0:", "add-root eth0 a9e0:", "nft"}));
  EXPECT_TRUE((*e)->hasTree());
  EXPECT_FALSE((*e)->nftPolices());
  EXPECT_EQ((*e)->summary(),
            "nftables on output (table inet qos_agent): mark; shape with HTB on eth0 (a9e0:): a "
            "class per grant, its rate and burst, 100 ms queued");

  e->reset();
  EXPECT_FALSE(kernel_.table) << "its end deletes the table";
  EXPECT_EQ(kernel_.roots["eth0"].handle, 0u) << "and its tree: the kernel's default is back";
}

TEST_F(HostEnforcerTest, AnotherRootQdiscIsLeftAloneAndTheHostPolicesInstead) {
  kernel_.roots["eth0"] = RootQdisc{"htb", 0x00010000u};  // an operator's own tree
  auto e = start({});
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_FALSE((*e)->hasTree());
  EXPECT_TRUE((*e)->nftPolices()) << "policed by nftables at eth0's egress instead";
  EXPECT_EQ((*e)->place().egress_device, "eth0");
  EXPECT_EQ((*e)->summary(),
            "nftables on eth0's egress (table netdev qos_agent): mark and police (nftables limit: "
            "its bucket holds the burst and one second of the rate); no HTB: eth0's root qdisc "
            "(htb 1:) is someone else's, and the agent leaves it alone");
  for (const std::string& op : kernel_.ops) {
    EXPECT_EQ(op.find("root"), std::string::npos) << "touched: " << op;
  }

  // Shaping asked for outright: refused, and nothing left behind.
  EnforceConfig shape;
  shape.limit = LimitMode::Shape;
  e->reset();
  auto refused = start(shape);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("cannot shape"), std::string::npos);
  EXPECT_FALSE(kernel_.table);
}

TEST_F(HostEnforcerTest, WhatTheKernelLacksIsSaid) {
  kernel_.fail = {"add-root"};  // no HTB in this kernel
  auto e = start({});
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_TRUE((*e)->nftPolices());
  EXPECT_NE((*e)->summary().find("no HTB: fake kernel refuses: add-root eth0"), std::string::npos)
      << (*e)->summary();
  e->reset();

  kernel_.fail = {"add map"};  // nftables without interval maps
  auto old_kernel = start({});
  ASSERT_FALSE(old_kernel.ok());
  EXPECT_NE(old_kernel.error().message.find("cannot create the nftables table"), std::string::npos);

  kernel_.fail = {"nft"};  // no nftables at all
  auto none = start({});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("nftables is not usable here"), std::string::npos);

  kernel_.fail.clear();
  kernel_.default_route.clear();
  auto no_route = start({});
  ASSERT_TRUE(no_route.ok()) << no_route.error().message;
  EXPECT_EQ((*no_route)->summary(),
            "nftables on output (table inet qos_agent): mark only; no policing or shaping: this "
            "host has no default route (set [enforce] interface)");
  no_route->reset();

  EnforceConfig named;
  named.interface = "eth9";
  auto missing = start(named);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no interface eth9"), std::string::npos);
}

TEST_F(HostEnforcerTest, AGrantIsAppliedWhollyOrNotAtAll) {
  auto e = start({});
  ASSERT_TRUE(e.ok()) << e.error().message;
  HostEnforcer& enforcer = **e;
  const control::Grant a = grantOf(1, "198.18.1.10", "198.19.1.20", 0, 5004);
  ASSERT_TRUE(enforcer.apply(a).ok());
  EXPECT_TRUE(enforcer.enforces(1));
  EXPECT_EQ(kernel_.ops.back(), "nft");
  EXPECT_EQ(kernel_.ops[kernel_.ops.size() - 2],
            "add-class eth0 a9e0:1 rate 1000000 burst 12500 queue 12500");
  EXPECT_NE(kernel_.nft.back().find("meta priority set a9e0:1"), std::string::npos);
  EXPECT_EQ(kernel_.nft.back().find("limit rate"), std::string::npos) << "shaped, not policed";
  ASSERT_TRUE(enforcer.apply(a).ok()) << "applying twice is applying once";
  EXPECT_EQ(kernel_.classes["eth0"].size(), 1u);

  // The nftables step fails: the class made for it goes too.
  kernel_.fail = {"flow_2"};
  const control::Grant b = grantOf(2, "198.18.1.10", "198.19.1.20", 0, 6000);
  ASSERT_FALSE(enforcer.apply(b).ok());
  EXPECT_FALSE(enforcer.enforces(2));
  EXPECT_EQ(kernel_.classes["eth0"], std::set<uint32_t>{0xa9e00001u});
  EXPECT_EQ(kernel_.ops.back(), "delete-class eth0 a9e0:2");

  // The class step fails: nftables is not touched.
  kernel_.fail = {"add-class"};
  const size_t nft_before = kernel_.nft.size();
  ASSERT_FALSE(enforcer.apply(b).ok());
  EXPECT_EQ(kernel_.nft.size(), nft_before);

  // An overlapping flow (the same 5-tuple under another grant) is refused as such.
  kernel_.fail.clear();
  control::Grant overlap = a;
  overlap.flow_id = 3;
  Result<void> r = enforcer.apply(overlap);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("one flow, one grant"), std::string::npos) << r.error().message;
  EXPECT_EQ(kernel_.classes["eth0"].size(), 1u);

  // Removal takes back the element, the chain and the class; the class is reused.
  enforcer.remove(1);
  EXPECT_FALSE(enforcer.enforces(1));
  EXPECT_TRUE(kernel_.elements.empty());
  EXPECT_TRUE(kernel_.classes["eth0"].empty());
  EXPECT_NE(kernel_.nft.back().find("delete chain inet qos_agent flow_1"), std::string::npos);
  enforcer.remove(1);  // twice: nothing
  ASSERT_TRUE(enforcer.apply(b).ok());
  EXPECT_EQ(kernel_.classes["eth0"], std::set<uint32_t>{0xa9e00001u});
}

TEST_F(HostEnforcerTest, PolicingAndMarkOnly) {
  EnforceConfig police;
  police.limit = LimitMode::Police;
  auto e = start(police);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ((*e)->summary(),
            "nftables on output (table inet qos_agent): mark; police with HTB on eth0 (a9e0:): a "
            "class per grant, its rate and burst, 2 frames queued");
  ASSERT_TRUE((*e)->apply(grantOf(1, "198.18.1.10", "198.19.1.20", 0, 5004)).ok());
  EXPECT_EQ(kernel_.ops[kernel_.ops.size() - 2],
            "add-class eth0 a9e0:1 rate 1000000 burst 12500 queue 3028");
  EXPECT_EQ(kernel_.nft.back().find("limit rate"), std::string::npos);
  e->reset();

  // Without the tree: nftables' limit, at the egress hook.
  kernel_.roots["eth0"] = RootQdisc{"mq", 0x00010000u};
  auto nft = start(police);
  ASSERT_TRUE(nft.ok()) << nft.error().message;
  ASSERT_TRUE((*nft)->apply(grantOf(1, "198.18.1.10", "198.19.1.20", 0, 5004)).ok());
  EXPECT_NE(kernel_.nft.back().find("add rule netdev qos_agent flow_1 limit rate over 125000 "
                                    "bytes/second burst 12500 bytes drop"),
            std::string::npos)
      << kernel_.nft.back();
  EXPECT_EQ(kernel_.nft.back().find("meta priority"), std::string::npos);
  nft->reset();
  kernel_.roots["eth0"] = RootQdisc{"fq_codel", 0};

  // Without the tree and without an egress hook (before Linux 5.16): mark only, and say so.
  kernel_.roots["eth0"] = RootQdisc{"mq", 0x00010000u};
  kernel_.fail = {"hook egress"};
  auto old_kernel = start(police);
  ASSERT_TRUE(old_kernel.ok()) << old_kernel.error().message;
  EXPECT_FALSE((*old_kernel)->nftPolices());
  EXPECT_TRUE((*old_kernel)->place().egress_device.empty());
  EXPECT_NE((*old_kernel)
                ->summary()
                .find("mark only; no policing or shaping: eth0's root qdisc "
                      "(mq 1:) is someone else's"),
            std::string::npos)
      << (*old_kernel)->summary();
  EXPECT_NE((*old_kernel)->summary().find("no nftables egress hook on eth0 (Linux 5.16)"),
            std::string::npos);
  old_kernel->reset();
  kernel_.fail.clear();
  kernel_.roots["eth0"] = RootQdisc{"fq_codel", 0};

  kernel_.ops.clear();
  EnforceConfig mark;
  mark.limit = LimitMode::None;
  auto m = start(mark);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->summary(), "nftables on output (table inet qos_agent): mark");
  for (const std::string& op : kernel_.ops) {
    EXPECT_EQ(op.find("add-root"), std::string::npos) << "marking needs no qdisc: " << op;
  }
  ASSERT_TRUE((*m)->apply(grantOf(1, "198.18.1.10", "198.19.1.20", 0, 5004)).ok());
  EXPECT_EQ(kernel_.nft.back().find("limit"), std::string::npos);
}

}  // namespace
}  // namespace qos::agent
