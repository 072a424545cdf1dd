// ApplianceTarget: the manager's rules as the running Appliance enforces
// them, for the sync session (sync_session.h): applying changes through the
// run-time update path, and reading back each manager rule's counters from
// its flow-table entry for the heartbeats.
//
// Control thread only, as the Appliance it wraps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "appliance/control/manager_link.h"
#include "appliance/control/sync_session.h"
#include "appliance/runtime/appliance.h"
#include "control/protocol/messages.h"

namespace qos::appliance {

class ApplianceTarget : public RuleTarget, public CounterSource {
public:
  /** @p appliance must outlive this object. */
  explicit ApplianceTarget(Appliance& appliance) : appliance_(appliance) {}

  // RuleTarget
  Result<RuleSummary> apply(const RuleChanges& changes) override;
  std::vector<RuleId> managerRules() const override;

  // CounterSource
  /**
   * Counters of the manager rules to report: those not reported yet (so the
   * manager learns they are in) and those that counted packets since their
   * last report, at most @p max, taken round-robin so that every rule gets
   * its turn.  @p more is set when some were left for the next sync.
   */
  std::vector<control::RuleCounters> takeCounters(size_t max, bool& more) override;
  void unreport(const std::vector<control::RuleCounters>& counters) override;

private:
  Appliance& appliance_;
  /** Packets each manager rule had counted at its last report. */
  std::map<RuleId, uint64_t> reported_;
  /** Where the last report stopped. */
  std::optional<RuleId> cursor_;
};

}  // namespace qos::appliance
