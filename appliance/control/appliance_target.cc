#include "appliance/control/appliance_target.h"

#include <algorithm>

#include <rte_cycles.h>

namespace qos::appliance {
namespace {

constexpr uint64_t kMsPerSec = 1000;

uint64_t packetsOf(const FlowEntry& entry) {
  return entry.green_counts.pkts.load() + entry.yellow_counts.pkts.load() +
         entry.red_counts.pkts.load();
}

}  // namespace

Result<RuleSummary> ApplianceTarget::apply(const RuleChanges& changes) {
  return appliance_.applyRules(changes);
}

std::vector<RuleId> ApplianceTarget::managerRules() const {
  std::vector<RuleId> ids;
  appliance_.rules().forEach(RuleOrigin::Manager,
                             [&ids](const RuleId& id, const FlowRule&) { ids.push_back(id); });
  return ids;
}

void ApplianceTarget::unreport(const std::vector<control::RuleCounters>& counters) {
  for (const control::RuleCounters& c : counters) {
    reported_.erase(RuleId::manager(c.flow_id, c.dir));
  }
}

std::vector<control::RuleCounters> ApplianceTarget::takeCounters(size_t max, bool& more) {
  more = false;
  std::vector<RuleId> ids = managerRules();
  // Forget rules that are gone.
  for (auto it = reported_.begin(); it != reported_.end();) {
    it = appliance_.rules().find(it->first) == nullptr ? reported_.erase(it) : std::next(it);
  }
  // Start after the cursor, wrapping around.
  size_t start = 0;
  if (cursor_) {
    while (start < ids.size() && !(*cursor_ < ids[start])) {
      ++start;
    }
  }
  const uint64_t now_tsc = rte_rdtsc();
  const uint64_t tsc_hz = rte_get_tsc_hz();
  std::vector<control::RuleCounters> out;
  for (size_t n = 0; n < ids.size(); ++n) {
    const RuleId& id = ids[(start + n) % ids.size()];
    const FlowEntry* entry = appliance_.entryOf(id);
    if (entry == nullptr) {
      continue;  // shadowed or rejected: nothing of ours to count
    }
    const uint64_t packets = packetsOf(*entry);
    const auto last = reported_.find(id);
    if (last != reported_.end() && last->second == packets) {
      continue;
    }
    if (out.size() == max) {
      more = true;
      break;
    }
    control::RuleCounters c;
    c.flow_id = id.flow_id;
    c.dir = id.dir;
    c.green_pkts = entry->green_counts.pkts.load();
    c.green_bytes = entry->green_counts.bytes.load();
    c.yellow_pkts = entry->yellow_counts.pkts.load();
    c.yellow_bytes = entry->yellow_counts.bytes.load();
    c.red_pkts = entry->red_counts.pkts.load();
    c.red_bytes = entry->red_counts.bytes.load();
    const uint64_t seen_tsc = entry->last_seen_tsc.load();
    if (seen_tsc != 0 && tsc_hz != 0) {
      c.idle_ms =
          now_tsc > seen_tsc ? (now_tsc - seen_tsc) / std::max<uint64_t>(tsc_hz / kMsPerSec, 1) : 0;
    }
    out.push_back(c);
    reported_[id] = packets;
    cursor_ = id;
  }
  return out;
}

}  // namespace qos::appliance
