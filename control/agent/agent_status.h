// What a "status" request to qos-agent answers (and qos-agent --status
// prints): the agent, its local clients' grants, and each standing policy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/agent/standing_policies.h"
#include "control/protocol/fields.h"

namespace qos::agent {

/** The request type qos-agent answers with an AgentStatus (no body). */
inline constexpr const char* kStatusRequest = "status";

struct AgentStatus {
  std::string name;     ///< this host's name at the manager
  std::string manager;  ///< the manager's endpoint
  std::string version;
  uint64_t clients = 0;        ///< local applications it serves now
  uint64_t client_grants = 0;  ///< grants it holds for them
  std::string enforcement;     ///< what this host's kernel does with them ("none": nothing)
  std::vector<PolicyStatus> policies;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("name", self.name, control::Need::Required);
    f.field("manager", self.manager);
    f.field("version", self.version);
    f.field("clients", self.clients);
    f.field("client_grants", self.client_grants);
    f.field("enforcement", self.enforcement);
    f.objects("policies", self.policies);
  }
};

}  // namespace qos::agent
