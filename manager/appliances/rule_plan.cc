#include "manager/appliances/rule_plan.h"

#include <algorithm>

namespace qos::manager {
namespace {

std::pair<std::string, std::string> linkKey(const std::string& a, const std::string& b) {
  return a < b ? std::pair(a, b) : std::pair(b, a);
}

}  // namespace

RulePlanner::RulePlanner(const ManagerConfig& config) {
  for (const NetworkConfig& net : config.networks) {
    Network& n = networks_[net.name];
    n.class_enabled = net.class_enabled;
    for (const auto& [name, spec] : net.classes) {
      n.dscp_by_class.emplace(name, spec.dscp);
    }
  }
  for (uint32_t i = 0; i < config.appliances.size(); ++i) {
    const ApplianceSite& site = config.appliances[i];
    by_link_[linkKey(site.inside, site.outside)].push_back(i);
  }
}

uint8_t RulePlanner::dscpEntering(const std::vector<std::string>& path, size_t at,
                                  const std::string& class_name, uint8_t host_dscp) const {
  // The network entered, then the ones crossed before it, nearest first.
  for (size_t i = at + 1; i-- > 0;) {
    const auto net = networks_.find(path[i]);
    if (net == networks_.end() || !net->second.class_enabled) {
      continue;
    }
    const auto dscp = net->second.dscp_by_class.find(class_name);
    if (dscp != net->second.dscp_by_class.end()) {
      return dscp->second;
    }
  }
  return host_dscp;
}

void RulePlanner::planDirection(const control::Grant& grant, control::Direction dir,
                                std::vector<PlannedRule>& out) const {
  const bool forward = dir == control::Direction::Forward;
  const std::vector<std::string>& path = forward ? grant.path : grant.reverse_path;
  const uint8_t host_dscp = forward ? grant.dscp : grant.reverse_dscp.value_or(grant.dscp);
  control::FlowSpec flow = grant.flow;
  if (!forward) {
    std::swap(flow.src, flow.dst);
    std::swap(flow.src_port, flow.dst_port);
  }
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const auto on_link = by_link_.find(linkKey(path[i], path[i + 1]));
    if (on_link == by_link_.end()) {
      continue;
    }
    const uint8_t dscp = dscpEntering(path, i + 1, grant.profile.class_name, host_dscp);
    for (const uint32_t appliance : on_link->second) {
      PlannedRule planned;
      planned.appliance = appliance;
      planned.rule.flow_id = grant.flow_id;
      planned.rule.dir = dir;
      planned.rule.flow = flow;
      planned.rule.dscp = dscp;
      planned.rule.meter = grant.meter;
      out.push_back(planned);
    }
  }
}

std::vector<PlannedRule> RulePlanner::plan(const control::Grant& grant) const {
  std::vector<PlannedRule> out;
  if (by_link_.empty()) {
    return out;
  }
  planDirection(grant, control::Direction::Forward, out);
  if (grant.bidirectional) {
    planDirection(grant, control::Direction::Reverse, out);
  }
  return out;
}

std::vector<uint32_t> RulePlanner::appliancesOn(const std::vector<std::string>& path) const {
  std::vector<uint32_t> out;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const auto on_link = by_link_.find(linkKey(path[i], path[i + 1]));
    if (on_link == by_link_.end()) {
      continue;
    }
    for (const uint32_t appliance : on_link->second) {
      if (std::find(out.begin(), out.end(), appliance) == out.end()) {
        out.push_back(appliance);
      }
    }
  }
  return out;
}

}  // namespace qos::manager
