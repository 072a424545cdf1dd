// The appliance's side of the sync alone: what a manager rule becomes, and
// that rejections reach the manager exactly once even if a sync is lost.
#include "appliance/control/sync_session.h"

#include <gtest/gtest.h>

#include "test/fakes/fake_rule_target.h"

namespace qos::appliance {
namespace {

using control::ApplianceRule;
using control::Direction;

/** A gateway that refuses any rule to port 666. */
struct RefusingTarget : test_fakes::FakeRuleTarget {
  RefusingTarget() {
    capacity = 100;
    refused_dst_ports.insert(666);
  }
};

ApplianceRule managerRule(uint64_t flow_id, uint16_t dport) {
  ApplianceRule rule;
  rule.flow_id = flow_id;
  rule.flow.src = *parseIpAddress("198.18.1.10");
  rule.flow.dst = *parseIpAddress("198.19.1.20");
  rule.flow.protocol = 17;
  rule.flow.dst_port = dport;
  rule.dscp = 40;
  rule.meter = {100'001, 10'000, 10'000};
  return rule;
}

TEST(SyncSessionTest, AManagerRuleIsAnSrtcmThatDropsRedAndPassesYellow) {
  const FlowRule rule = flowRuleOf(managerRule(7, 5004));
  EXPECT_EQ(rule.dscp, 40);
  EXPECT_EQ(rule.dst_port, 5004);
  ASSERT_TRUE(rule.meter.has_value());
  EXPECT_EQ(rule.meter->mode, MeterMode::Srtcm);
  EXPECT_EQ(rule.meter->cir_bytes_per_sec, 12'501u) << "100001 bit/s rounded up to whole bytes";
  EXPECT_EQ(rule.meter->cbs_bytes, 10'000u);
  EXPECT_EQ(rule.meter->red.kind, PacketAction::Kind::Drop);
  EXPECT_EQ(rule.meter->yellow.kind, PacketAction::Kind::Pass);
}

TEST(SyncSessionTest, RejectionsGoOutOnceAndAgainIfTheSyncWasLost) {
  SyncSession session("gw1", "i", "v", {});
  RefusingTarget target;
  control::SyncReply snapshot;
  snapshot.epoch = "e";
  snapshot.heartbeat_ms = 700;
  snapshot.kind = control::SyncKind::Snapshot;
  snapshot.snapshot_seq = 5;
  snapshot.rules = {managerRule(1, 5004), managerRule(2, 666), managerRule(3, 5006)};
  snapshot.last_page = true;
  const std::string said = session.onReply(snapshot, target);
  EXPECT_NE(said.find("1 rejected"), std::string::npos) << said;
  EXPECT_EQ(target.book.count(RuleOrigin::Manager), 2u) << "the others went in";
  EXPECT_EQ(session.applied(), 5u);
  EXPECT_EQ(session.heartbeatMs(), 700u);

  control::SyncRequest first = session.nextRequest({}, false);
  EXPECT_EQ(first.epoch, "e");
  EXPECT_EQ(first.applied, 5u);
  ASSERT_EQ(first.rejected.size(), 1u);
  EXPECT_EQ(first.rejected[0].flow_id, 2u);
  session.onLost();
  EXPECT_EQ(session.nextRequest({}, false).rejected.size(), 1u) << "sent again";
  control::SyncReply heartbeat;
  heartbeat.epoch = "e";
  heartbeat.heartbeat_ms = 700;
  heartbeat.to = 5;
  session.onReply(heartbeat, target);
  EXPECT_TRUE(session.nextRequest({}, false).rejected.empty()) << "and only once delivered";
}

TEST(SyncSessionTest, AResyncSaysWhatItAddedRemovedAndLeftAlone) {
  SyncSession session("gw1", "i", "v", {});
  RefusingTarget target;
  control::SyncReply snapshot;
  snapshot.epoch = "e1";
  snapshot.kind = control::SyncKind::Snapshot;
  snapshot.snapshot_seq = 3;
  snapshot.rules = {managerRule(1, 5004), managerRule(2, 5006)};
  snapshot.last_page = true;
  EXPECT_NE(session.onReply(snapshot, target).find("2 manager rule(s) added, 0 removed"),
            std::string::npos);

  // The manager restarted: flow 2 went meanwhile, flow 4 came, flow 1 is as it was.
  snapshot.epoch = "e2";
  snapshot.rules = {managerRule(1, 5004), managerRule(4, 5008)};
  const std::string said = session.onReply(snapshot, target);
  EXPECT_NE(said.find("1 manager rule(s) added, 1 removed, 0 changed, 1 unchanged"),
            std::string::npos)
      << said;

  // One refused rule: the rest is applied one by one and still counted.
  snapshot.epoch = "e3";
  snapshot.rules = {managerRule(1, 5004), managerRule(5, 666), managerRule(6, 5010)};
  const std::string split = session.onReply(snapshot, target);
  EXPECT_NE(split.find("1 manager rule(s) added, 1 removed, 0 changed, 1 unchanged, 1 rejected"),
            std::string::npos)
      << split;
}

TEST(SyncSessionTest, ChangesOfAnotherEpochAreNotApplied) {
  SyncSession session("gw1", "i", "v", {});
  RefusingTarget target;
  control::SyncReply updates;
  updates.epoch = "other";
  updates.kind = control::SyncKind::Updates;
  updates.to = 3;
  updates.changes = {{1, control::ChangeOp::Add, managerRule(1, 5004)}};
  session.onReply(updates, target);
  EXPECT_EQ(target.book.count(RuleOrigin::Manager), 0u);
  EXPECT_EQ(session.applied(), 0u);
  EXPECT_EQ(session.nextRequest({}, false).epoch, "");
}

}  // namespace
}  // namespace qos::appliance
