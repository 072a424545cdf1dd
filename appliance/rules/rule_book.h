// RuleBook: every flow rule the appliance holds, who owns it, and which one
// is installed in the flow table for each 5-tuple.
//
// Rules have owners.  The config file's [[flow]]s are File rules, named by
// their own 5-tuple; the manager's are Manager rules, named by the grant's
// flow id and direction.  A SIGHUP reload replaces the File rules and never
// touches the Manager's; a resync with the manager replaces the Manager
// rules and never touches the file's.
//
// Two owners may name the same 5-tuple (a grant for a flow the file also
// lists, two grants for one 5-tuple).  The flow table holds one entry per
// 5-tuple, so one rule wins, by RuleId order: the manager's before the
// file's (the grant is what was admitted; the file rule is the fallback),
// and among the manager's the earliest grant.  When the winner goes, the
// next one is installed.  The others are shadowed: held, not enforced.
//
// Changes come in sets (RuleChanges) and are planned before anything is
// touched: plan() checks every rule (checkFlowRule()) and the table's
// capacity and returns the table operations; the caller applies them
// (Appliance::applyRules(), which undoes what it did if one fails) and then
// commit()s the plan.  All or nothing.  A rule put again unchanged plans no
// operation: its table entry, meter state and counters stay as they are.
//
// Not thread-safe: the control thread owns it (it is the flow table's one
// writer).  No DPDK here, so it is unit-tested without EAL.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "appliance/config/appliance_config.h"
#include "appliance/dataplane/flow_key.h"
#include "control/common/result.h"
#include "control/protocol/messages.h"

namespace qos::appliance {

/** Who owns a rule; the order is precedence, the manager's first. */
enum class RuleOrigin : uint8_t { Manager, File };

/** "manager" or "file". */
const char* ruleOriginName(RuleOrigin origin);

/** Which rule of which owner. */
struct RuleId {
  RuleOrigin origin = RuleOrigin::File;
  uint64_t flow_id = 0;                                  ///< Manager: the grant's flow id
  control::Direction dir = control::Direction::Forward;  ///< Manager: which way of the grant
  FlowKey key{};                                         ///< File: the rule's own 5-tuple key

  /** Precedence: origin, then flow id and direction, then the key's bytes. */
  bool operator<(const RuleId& other) const;
  bool operator==(const RuleId& other) const;

  static RuleId file(const FlowRule& rule) { return {RuleOrigin::File, 0, {}, flowKeyOf(rule)}; }
  static RuleId manager(uint64_t flow_id, control::Direction dir) {
    return {RuleOrigin::Manager, flow_id, dir, {}};
  }
};

/** "file 198.18.1.10 -> 198.19.1.20 udp 0 -> 5004" or "manager flow 7 forward". */
std::string describeRule(const RuleId& id, const FlowRule& rule);

struct OwnedRule {
  RuleId id;
  FlowRule rule;
};

/** A set of changes to one owner's rules, applied all or nothing. */
struct RuleChanges {
  RuleOrigin origin = RuleOrigin::File;
  /** The owner's rules become exactly @ref put: the others it has are removed. */
  bool replace_all = false;
  std::vector<OwnedRule> put;  ///< added, or replacing the rule with the same id
  std::vector<RuleId> remove;  ///< removed; an id it does not hold is no error
};

/** One operation on the flow table. */
struct TableOp {
  enum class Kind : uint8_t { Install, Remove };
  Kind kind = Kind::Install;
  FlowKey key{};
  FlowRule rule;  ///< Install: the rule to install under key (adding, or replacing)
  /** What the key held before: reinstalled if the change is undone; none: remove it. */
  std::optional<FlowRule> before;
};

/** What a set of rule changes does to the rule book. */
struct RuleSummary {
  uint32_t added = 0;      ///< rules new to the book
  uint32_t removed = 0;    ///< rules gone from the book
  uint32_t changed = 0;    ///< rules replaced by a different one
  uint32_t unchanged = 0;  ///< rules put again as they were

  RuleSummary& operator+=(const RuleSummary& other) {
    added += other.added;
    removed += other.removed;
    changed += other.changed;
    unchanged += other.unchanged;
    return *this;
  }
};

/** What a set of changes does, before it is done. */
struct RulePlan {
  RuleOrigin origin = RuleOrigin::File;
  std::vector<TableOp> ops;
  /** The book's changes: a rule per id, or nullopt to remove it. */
  std::map<RuleId, std::optional<FlowRule>> delta;
  RuleSummary summary;

  bool empty() const { return delta.empty(); }
};

class RuleBook {
public:
  /**
   * Plans @p changes against the book and a table of @p capacity entries.
   * Changes nothing.  Fails, naming the rule, if a rule is invalid, a File
   * rule's id is not its own key, a Manager change names a File rule (or the
   * reverse), or the installed 5-tuples would not fit.
   */
  Result<RulePlan> plan(const RuleChanges& changes, uint32_t capacity) const;

  /** Records a plan whose table operations are all applied. */
  void commit(const RulePlan& plan);

  /** The rule with @p id, or nullptr. */
  const FlowRule* find(const RuleId& id) const;
  /** Whether @p id is the rule installed for its 5-tuple (not shadowed). */
  bool installed(const RuleId& id) const;
  /** Rules @p origin holds (installed or shadowed). */
  size_t count(RuleOrigin origin) const { return counts_[static_cast<size_t>(origin)]; }
  /** 5-tuples installed in the table. */
  size_t installedCount() const { return installed_.size(); }
  /** Calls f(id, rule) for each rule of @p origin, in id order. */
  template <typename F>
  void forEach(RuleOrigin origin, F&& f) const {
    for (auto it = rules_.lower_bound(RuleId{origin, 0, {}, {}});
         it != rules_.end() && it->first.origin == origin; ++it) {
      f(it->first, it->second);
    }
  }

private:
  /** FlowKey by its bytes, ordered, for maps. */
  struct KeyLess {
    bool operator()(const FlowKey& a, const FlowKey& b) const;
  };

  std::map<RuleId, FlowRule> rules_;
  /** The rules naming each 5-tuple, in precedence order: the first is installed. */
  std::map<FlowKey, std::set<RuleId>, KeyLess> owners_;
  /** The rule installed for each 5-tuple. */
  std::map<FlowKey, RuleId, KeyLess> installed_;
  std::array<size_t, 2> counts_{};  ///< rules by origin
};

}  // namespace qos::appliance
