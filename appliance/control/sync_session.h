// SyncSession: the appliance's side of the sync with the manager, as pure
// state: what to ask next, and what each reply means for the rules.  The
// transport (manager_link.h) sends what nextRequest() says and hands every
// reply to onReply(); the manager's side is manager/appliances/appliance_hub.h,
// which describes the exchange.
//
//   no epoch yet ──sync──► snapshot pages, gathered here ──last page──►
//   reconcile: the manager's rules become the snapshot's (replace_all: one
//   that did not change is not touched), then ask for changes after the
//   snapshot's seq ──sync(applied N)──► changes, applied as one set ──► ...
//
// Applying is the caller's RuleTarget: all or nothing.  When a set is
// refused (a rule the table cannot take, the table full), the set is
// applied again rule by rule; a rule that still cannot go in is reported to
// the manager as rejected, with the reason, and the rest is acknowledged,
// so that one bad rule never stops the others.
//
// The session survives losing the manager: it keeps its epoch and seq, and
// the manager decides on the next sync whether the changes continue or a
// snapshot is needed.  Single-threaded; no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "appliance/rules/rule_book.h"
#include "control/common/result.h"
#include "control/protocol/messages.h"

namespace qos::appliance {

/** What enforces the manager's rules: the Appliance, or a fake in tests. */
class RuleTarget {
public:
  virtual ~RuleTarget() = default;
  /** Applies a set of rule changes, all or nothing; says what they did. */
  virtual Result<RuleSummary> apply(const RuleChanges& changes) = 0;
  /** The manager rules held now. */
  virtual std::vector<RuleId> managerRules() const = 0;
};

/** A manager rule as the appliance enforces it: srTCM, yellow passes, red is dropped. */
FlowRule flowRuleOf(const control::ApplianceRule& rule);

class SyncSession {
public:
  /** Rejections carried by one sync at most (the rest wait for the next). */
  static constexpr size_t kMaxRejectionsPerSync = 100;

  SyncSession(std::string name, std::string instance, std::string version,
              std::vector<control::PortPairInfo> pairs);

  /**
   * The next sync to send, carrying @p counters.  @p more: there are more
   * counters to report, so the manager should answer at once.
   */
  control::SyncRequest nextRequest(std::vector<control::RuleCounters> counters, bool more);

  /**
   * Takes the reply to the last sync: applies what it says through @p apply.
   * @return a line for the log when something happened worth saying
   *         (a snapshot reconciled, rules rejected), or "" if not
   */
  std::string onReply(const control::SyncReply& reply, RuleTarget& target);

  /** The last sync went unanswered: what it carried is sent again with the next. */
  void onLost();

  const std::string& epoch() const { return epoch_; }
  uint64_t applied() const { return applied_; }
  bool inSnapshot() const { return snapshot_.has_value(); }
  /** The manager's heartbeat, as its last reply said (1 s before any reply). */
  uint32_t heartbeatMs() const { return heartbeat_ms_; }

private:
  struct Snapshot {
    std::string epoch;
    uint64_t seq = 0;
    std::vector<OwnedRule> rules;  ///< gathered so far, in (flow_id, dir) order
  };

  std::string reconcile(Snapshot snapshot, RuleTarget& target);
  std::string applyChanges(const std::vector<control::RuleChange>& changes, RuleTarget& target);
  /**
   * Applies @p changes, or, if refused, its removals and then each rule it
   * puts alone, recording what is rejected and adding what was done to
   * @p done.  @return how many were rejected
   */
  size_t applyOrSplit(const RuleChanges& changes, RuleTarget& target, RuleSummary& done);

  std::string name_;
  std::string instance_;
  std::string version_;
  std::vector<control::PortPairInfo> pairs_;
  std::string epoch_;     ///< the epoch the manager rules come from; "" none
  uint64_t applied_ = 0;  ///< every change of epoch_ up to here is applied
  uint32_t heartbeat_ms_ = 1000;
  std::optional<Snapshot> snapshot_;
  std::vector<control::RuleRejection> rejected_;   ///< not sent yet
  std::vector<control::RuleRejection> in_flight_;  ///< sent with the last sync
};

}  // namespace qos::appliance
