// A gateway's rules without a data plane: a RuleTarget over a plain rule
// book, as the Appliance keeps one, for tests of the sync on either side.
// It can refuse rules by port (as the Appliance refuses a rule it cannot
// install) and counts the flow-table operations its changes would take.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "appliance/control/sync_session.h"
#include "appliance/rules/rule_book.h"

namespace qos::test_fakes {

class FakeRuleTarget : public appliance::RuleTarget {
public:
  Result<appliance::RuleSummary> apply(const appliance::RuleChanges& changes) override {
    for (const appliance::OwnedRule& rule : changes.put) {
      const uint16_t src = rule.rule.src_port;
      const uint16_t dst = rule.rule.dst_port;
      if (refused_src_ports.count(src) != 0 || refused_dst_ports.count(dst) != 0) {
        return makeError(ErrorCode::Invalid, "port " + std::to_string(src) + " -> " +
                                                 std::to_string(dst) + " refused by the test");
      }
    }
    Result<appliance::RulePlan> plan = book.plan(changes, capacity);
    if (!plan) {
      return plan.error();
    }
    table_ops += plan->ops.size();
    book.commit(*plan);
    return plan->summary;
  }

  std::vector<appliance::RuleId> managerRules() const override {
    std::vector<appliance::RuleId> ids;
    book.forEach(
        appliance::RuleOrigin::Manager,
        [&ids](const appliance::RuleId& id, const appliance::FlowRule&) { ids.push_back(id); });
    return ids;
  }

  appliance::RuleBook book;
  uint32_t capacity = 1000;              ///< rules the book may hold
  std::set<uint16_t> refused_src_ports;  ///< a rule from one of these is refused
  std::set<uint16_t> refused_dst_ports;  ///< a rule to one of these is refused
  size_t table_ops = 0;                  ///< flow-table operations the changes took
};

}  // namespace qos::test_fakes
