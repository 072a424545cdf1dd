// The rule book: owners, precedence, all-or-nothing plans, and that a rule
// put again unchanged plans no table operation.
#include "appliance/rules/rule_book.h"

#include <string>

#include <gtest/gtest.h>

namespace qos::appliance {
namespace {

using control::Direction;

FlowRule rule(uint16_t dport, uint8_t dscp) {
  FlowRule r;
  r.src = *parseIpAddress("198.18.1.10");
  r.dst = *parseIpAddress("198.19.1.20");
  r.protocol = 17;
  r.dst_port = dport;
  r.dscp = dscp;
  return r;
}

OwnedRule fileRule(uint16_t dport, uint8_t dscp) {
  const FlowRule r = rule(dport, dscp);
  return {RuleId::file(r), r};
}

OwnedRule managerRule(uint64_t flow_id, uint16_t dport, uint8_t dscp) {
  return {RuleId::manager(flow_id, Direction::Forward), rule(dport, dscp)};
}

RuleChanges fileSet(std::vector<OwnedRule> rules) {
  return {RuleOrigin::File, /*replace_all=*/true, std::move(rules), {}};
}

RuleChanges managerPut(std::vector<OwnedRule> rules) {
  return {RuleOrigin::Manager, false, std::move(rules), {}};
}

/** Plans and commits, as the appliance does once the table took the operations. */
RulePlan apply(RuleBook& book, const RuleChanges& changes, uint32_t capacity = 100) {
  Result<RulePlan> plan = book.plan(changes, capacity);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  if (!plan.ok()) {
    return {};
  }
  book.commit(*plan);
  return *plan;
}

TEST(RuleBookTest, FileRulesAreReplacedByDifference) {
  RuleBook book;
  RulePlan first = apply(book, fileSet({fileRule(5004, 46), fileRule(5006, 34)}));
  EXPECT_EQ(first.summary.added, 2u);
  ASSERT_EQ(first.ops.size(), 2u);
  EXPECT_EQ(book.installedCount(), 2u);

  RulePlan second = apply(book, fileSet({fileRule(5004, 40), fileRule(7000, 10)}));
  EXPECT_EQ(second.summary.added, 1u);
  EXPECT_EQ(second.summary.changed, 1u);
  EXPECT_EQ(second.summary.removed, 1u);
  EXPECT_EQ(second.summary.unchanged, 0u);
  EXPECT_EQ(second.ops.size(), 3u);  // replace 5004, install 7000, remove 5006
  EXPECT_EQ(book.count(RuleOrigin::File), 2u);
  EXPECT_EQ(book.find(fileRule(5006, 34).id), nullptr);
}

TEST(RuleBookTest, ARulePutAgainUnchangedPlansNothing) {
  RuleBook book;
  apply(book, fileSet({fileRule(5004, 46)}));
  apply(book, managerPut({managerRule(7, 6000, 46)}));
  const RulePlan again = apply(book, fileSet({fileRule(5004, 46)}));
  EXPECT_EQ(again.summary.unchanged, 1u);
  EXPECT_TRUE(again.ops.empty()) << "an unchanged rule must keep its entry, meter and counters";
  EXPECT_TRUE(again.empty());
  const RulePlan manager_again = apply(book, managerPut({managerRule(7, 6000, 46)}));
  EXPECT_TRUE(manager_again.ops.empty());
}

TEST(RuleBookTest, TheManagersRuleWinsAFiveTupleAndTheFilesComesBack) {
  RuleBook book;
  apply(book, fileSet({fileRule(5004, 46)}));
  const RulePlan granted = apply(book, managerPut({managerRule(9, 5004, 40)}));
  ASSERT_EQ(granted.ops.size(), 1u);
  EXPECT_EQ(granted.ops[0].kind, TableOp::Kind::Install);
  EXPECT_EQ(granted.ops[0].rule.dscp, 40);
  ASSERT_TRUE(granted.ops[0].before.has_value()) << "undo puts the file's rule back";
  EXPECT_EQ(granted.ops[0].before->dscp, 46);
  EXPECT_TRUE(book.installed(RuleId::manager(9, Direction::Forward)));
  EXPECT_FALSE(book.installed(fileRule(5004, 46).id));
  EXPECT_EQ(book.installedCount(), 1u);

  // An earlier grant of the same 5-tuple wins over a later one.
  apply(book, managerPut({managerRule(3, 5004, 26)}));
  EXPECT_TRUE(book.installed(RuleId::manager(3, Direction::Forward)));

  // A reload of the file touches no manager rule, even with replace_all.
  const RulePlan reload = apply(book, fileSet({}));
  EXPECT_EQ(reload.summary.removed, 1u);
  EXPECT_TRUE(reload.ops.empty()) << "the file rule was shadowed: nothing to remove";
  EXPECT_EQ(book.count(RuleOrigin::Manager), 2u);

  apply(book, fileSet({fileRule(5004, 46)}));
  RuleChanges release{
      RuleOrigin::Manager,
      false,
      {},
      {RuleId::manager(3, Direction::Forward), RuleId::manager(9, Direction::Forward)}};
  const RulePlan released = apply(book, release);
  ASSERT_EQ(released.ops.size(), 1u);
  EXPECT_EQ(released.ops[0].kind, TableOp::Kind::Install);
  EXPECT_EQ(released.ops[0].rule.dscp, 46) << "the file's rule is enforced again";
  EXPECT_TRUE(book.installed(fileRule(5004, 46).id));
}

TEST(RuleBookTest, ASnapshotReplacesOnlyTheManagersRules) {
  RuleBook book;
  apply(book, fileSet({fileRule(5004, 46)}));
  apply(book, managerPut({managerRule(1, 6001, 46), managerRule(2, 6002, 46)}));
  RuleChanges snapshot{
      RuleOrigin::Manager, true, {managerRule(2, 6002, 46), managerRule(3, 6003, 34)}, {}};
  const RulePlan plan = apply(book, snapshot);
  EXPECT_EQ(plan.summary.added, 1u);
  EXPECT_EQ(plan.summary.removed, 1u);
  EXPECT_EQ(plan.summary.unchanged, 1u);
  EXPECT_EQ(plan.ops.size(), 2u);  // remove 6001, install 6003; 6002 untouched
  EXPECT_EQ(book.count(RuleOrigin::File), 1u);
  EXPECT_EQ(book.count(RuleOrigin::Manager), 2u);
}

TEST(RuleBookTest, OneBadRuleRefusesTheWholeChange) {
  RuleBook book;
  apply(book, fileSet({fileRule(5004, 46)}));
  OwnedRule bad = managerRule(5, 6000, 46);
  bad.rule.meter = MeterConfig{};  // cir 0
  const Result<RulePlan> plan =
      book.plan(managerPut({managerRule(4, 6001, 46), bad}), /*capacity=*/100);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("flow 5"), std::string::npos) << plan.error().message;
  EXPECT_NE(plan.error().message.find("meter.cir: must be > 0"), std::string::npos)
      << plan.error().message;
  EXPECT_EQ(book.count(RuleOrigin::Manager), 0u);

  OwnedRule v6 = managerRule(6, 6000, 46);
  v6.rule.dst = *parseIpAddress("2001:db8::1");
  const Result<RulePlan> mixed = book.plan(managerPut({v6}), 100);
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.error().message.find("dst: src and dst must both be IPv4 or both IPv6"),
            std::string::npos)
      << mixed.error().message;
}

TEST(RuleBookTest, OwnersCannotTouchEachOthersRules) {
  RuleBook book;
  apply(book, fileSet({fileRule(5004, 46)}));
  RuleChanges wrong{RuleOrigin::Manager, false, {}, {fileRule(5004, 46).id}};
  EXPECT_FALSE(book.plan(wrong, 100).ok());
  RuleChanges mislabelled{RuleOrigin::File, false, {managerRule(1, 5004, 46)}, {}};
  EXPECT_FALSE(book.plan(mislabelled, 100).ok());
  OwnedRule renamed = fileRule(5004, 46);
  renamed.rule.dst_port = 5005;  // its id no longer is its 5-tuple
  EXPECT_FALSE(book.plan(RuleChanges{RuleOrigin::File, false, {renamed}, {}}, 100).ok());
}

TEST(RuleBookTest, CapacityCountsFiveTuplesNotRules) {
  RuleBook book;
  apply(book, fileSet({fileRule(1, 46), fileRule(2, 46)}), 2);
  // Shadowing an installed 5-tuple needs no room.
  EXPECT_TRUE(book.plan(managerPut({managerRule(1, 1, 40)}), 2).ok());
  const Result<RulePlan> full = book.plan(managerPut({managerRule(1, 3, 40)}), 2);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ErrorCode::Unavailable);
  EXPECT_NE(full.error().message.find("max_flows"), std::string::npos) << full.error().message;
}

}  // namespace
}  // namespace qos::appliance
