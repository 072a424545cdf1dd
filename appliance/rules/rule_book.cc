#include "appliance/rules/rule_book.h"

#include <cstring>
#include <utility>

#include "appliance/config/flow_rule_check.h"
#include "control/common/ip_protocol.h"

namespace qos::appliance {
namespace {

int compareKeys(const FlowKey& a, const FlowKey& b) { return std::memcmp(&a, &b, sizeof(FlowKey)); }

std::string portText(uint16_t port) { return port == 0 ? "any" : std::to_string(port); }

}  // namespace

const char* ruleOriginName(RuleOrigin origin) {
  return origin == RuleOrigin::Manager ? "manager" : "file";
}

bool RuleId::operator<(const RuleId& other) const {
  if (origin != other.origin) {
    return origin < other.origin;
  }
  if (flow_id != other.flow_id) {
    return flow_id < other.flow_id;
  }
  if (dir != other.dir) {
    return dir < other.dir;
  }
  return compareKeys(key, other.key) < 0;
}

bool RuleId::operator==(const RuleId& other) const {
  return origin == other.origin && flow_id == other.flow_id && dir == other.dir && key == other.key;
}

std::string describeRule(const RuleId& id, const FlowRule& rule) {
  const char* proto = ipProtocolName(rule.protocol);
  const std::string tuple = formatIpAddress(rule.src) + " -> " + formatIpAddress(rule.dst) + " " +
                            (rule.protocol == kAnyProtocol ? std::string("any")
                             : proto != nullptr            ? std::string(proto)
                                                : "proto " + std::to_string(rule.protocol)) +
                            " " + portText(rule.src_port) + " -> " + portText(rule.dst_port);
  if (id.origin == RuleOrigin::File) {
    return "file rule " + tuple;
  }
  return "manager rule of flow " + std::to_string(id.flow_id) + " " +
         std::string(id.dir == control::Direction::Forward ? "forward" : "reverse") + " (" + tuple +
         ")";
}

bool RuleBook::KeyLess::operator()(const FlowKey& a, const FlowKey& b) const {
  return compareKeys(a, b) < 0;
}

Result<RulePlan> RuleBook::plan(const RuleChanges& changes, uint32_t capacity) const {
  RulePlan plan;
  plan.origin = changes.origin;
  const auto refuse = [](const std::string& message) {
    return makeError(ErrorCode::Invalid, message);
  };
  std::set<RuleId> put_ids;
  for (const OwnedRule& owned : changes.put) {
    const std::string what = describeRule(owned.id, owned.rule);
    if (owned.id.origin != changes.origin) {
      return refuse(what + ": not a " + ruleOriginName(changes.origin) + " rule");
    }
    if (owned.id.origin == RuleOrigin::File && !(owned.id.key == flowKeyOf(owned.rule))) {
      return refuse(what + ": a file rule is named by its own 5-tuple");
    }
    if (!put_ids.insert(owned.id).second) {
      return refuse(what + ": given twice in one change");
    }
    if (const std::optional<RuleProblem> problem = checkFlowRule(owned.rule)) {
      return refuse(what + ": " + problem->field + ": " + problem->message);
    }
    const FlowRule* old = find(owned.id);
    if (old != nullptr && *old == owned.rule) {
      ++plan.summary.unchanged;
      continue;
    }
    plan.delta[owned.id] = owned.rule;
    old != nullptr ? ++plan.summary.changed : ++plan.summary.added;
  }
  if (changes.replace_all) {
    forEach(changes.origin, [&](const RuleId& id, const FlowRule&) {
      if (put_ids.count(id) == 0) {
        plan.delta[id] = std::nullopt;
        ++plan.summary.removed;
      }
    });
  }
  for (const RuleId& id : changes.remove) {
    if (id.origin != changes.origin) {
      return refuse("a change to the " + std::string(ruleOriginName(changes.origin)) +
                    "'s rules cannot remove a " + ruleOriginName(id.origin) + " rule");
    }
    if (put_ids.count(id) != 0) {
      return refuse("a rule is both put and removed in one change");
    }
    if (find(id) != nullptr && plan.delta.count(id) == 0) {
      plan.delta[id] = std::nullopt;
      ++plan.summary.removed;
    }
  }

  // The 5-tuples whose owners change, with the rules the change puts there.
  std::map<FlowKey, std::vector<std::pair<const RuleId*, const FlowRule*>>, KeyLess> touched;
  for (const auto& [id, rule] : plan.delta) {
    if (const FlowRule* old = find(id)) {
      touched[flowKeyOf(*old)];
    }
    if (rule) {
      touched[flowKeyOf(*rule)].emplace_back(&id, &*rule);
    }
  }
  size_t n_installed = installed_.size();
  for (const auto& [key, added] : touched) {
    // The winner: the first owner the change keeps, or a rule it puts here.
    const RuleId* winner = nullptr;
    const FlowRule* winner_rule = nullptr;
    if (const auto owners = owners_.find(key); owners != owners_.end()) {
      for (const RuleId& id : owners->second) {
        if (plan.delta.count(id) == 0) {
          winner = &id;
          winner_rule = &rules_.at(id);
          break;
        }
      }
    }
    for (const auto& [id, rule] : added) {
      if (winner == nullptr || *id < *winner) {
        winner = id;
        winner_rule = rule;
      }
    }
    const auto current = installed_.find(key);
    const FlowRule* before = current != installed_.end() ? &rules_.at(current->second) : nullptr;
    if (winner == nullptr) {
      if (before != nullptr) {
        plan.ops.push_back({TableOp::Kind::Remove, key, {}, *before});
        --n_installed;
      }
      continue;
    }
    if (before != nullptr && *before == *winner_rule) {
      continue;  // the same rule under another owner: the entry stays as it is
    }
    TableOp op{TableOp::Kind::Install, key, *winner_rule, std::nullopt};
    if (before != nullptr) {
      op.before = *before;
    } else {
      ++n_installed;
    }
    plan.ops.push_back(op);
  }
  if (n_installed > capacity) {
    return makeError(ErrorCode::Unavailable, "the flow table holds " + std::to_string(capacity) +
                                                 " flows and this change needs " +
                                                 std::to_string(n_installed) +
                                                 " (dataplane.max_flows)");
  }
  return plan;
}

void RuleBook::commit(const RulePlan& plan) {
  std::set<FlowKey, KeyLess> touched;
  for (const auto& [id, rule] : plan.delta) {
    if (const auto old = rules_.find(id); old != rules_.end()) {
      const FlowKey key = flowKeyOf(old->second);
      touched.insert(key);
      auto owners = owners_.find(key);
      owners->second.erase(id);
      if (owners->second.empty()) {
        owners_.erase(owners);
      }
      rules_.erase(old);
      --counts_[static_cast<size_t>(id.origin)];
    }
    if (rule) {
      const FlowKey key = flowKeyOf(*rule);
      touched.insert(key);
      rules_.emplace(id, *rule);
      owners_[key].insert(id);
      ++counts_[static_cast<size_t>(id.origin)];
    }
  }
  for (const FlowKey& key : touched) {
    const auto owners = owners_.find(key);
    if (owners == owners_.end()) {
      installed_.erase(key);
    } else {
      installed_[key] = *owners->second.begin();
    }
  }
}

const FlowRule* RuleBook::find(const RuleId& id) const {
  const auto it = rules_.find(id);
  return it != rules_.end() ? &it->second : nullptr;
}

bool RuleBook::installed(const RuleId& id) const {
  const FlowRule* rule = find(id);
  if (rule == nullptr) {
    return false;
  }
  const auto it = installed_.find(flowKeyOf(*rule));
  return it != installed_.end() && it->second == id;
}

}  // namespace qos::appliance
