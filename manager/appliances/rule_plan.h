// RulePlanner: which appliance enforces what for a grant.
//
// An appliance sits on a link between two networks.  For every grant, each
// appliance whose link is on the grant's path gets a rule for the forward
// 5-tuple; for a bidirectional grant, each appliance on the reverse path
// gets one for the reverse 5-tuple (sources and destinations swapped).
//
// The DSCP a rule writes is the class's DSCP in the network the packets
// enter at that appliance (RFC 2475 boundary re-marking: each DiffServ
// domain sees its own code point).  Where that network is not
// class-enabled, the packets keep the DSCP they had on the class-enabled
// side: that of the last class-enabled network they crossed, or, when they
// crossed none yet, the grant's DSCP for their direction (what the sending
// host marks with).  Every rule carries the grant's meter.
//
//   lan-a (EF 46) ──gw1── wan (EF 40) ──gw2── lan-b (not class-enabled)
//   forward: gw1 writes 40 (entering wan), gw2 writes 40 (kept from wan)
//   reverse: gw2 writes 40 (entering wan), gw1 writes 46 (entering lan-a)
//
// Immutable after construction; a config reload builds a new one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "control/protocol/messages.h"
#include "manager/config/manager_config.h"

namespace qos::manager {

/** One appliance's rule for one direction of a grant. */
struct PlannedRule {
  uint32_t appliance = 0;  ///< index in ManagerConfig::appliances
  control::ApplianceRule rule;
};

class RulePlanner {
public:
  /** @p config is read here only; the planner keeps what it needs. */
  explicit RulePlanner(const ManagerConfig& config);

  /** The rules of @p grant, forward first, each direction in path order. */
  std::vector<PlannedRule> plan(const control::Grant& grant) const;

  /** Appliances whose link is on @p path (in path order, each once). */
  std::vector<uint32_t> appliancesOn(const std::vector<std::string>& path) const;

private:
  struct Network {
    bool class_enabled = false;
    std::map<std::string, uint8_t> dscp_by_class;
  };
  void planDirection(const control::Grant& grant, control::Direction dir,
                     std::vector<PlannedRule>& out) const;
  /** The DSCP packets of @p class_name carry on entering path[at]. */
  uint8_t dscpEntering(const std::vector<std::string>& path, size_t at,
                       const std::string& class_name, uint8_t host_dscp) const;

  std::map<std::string, Network> networks_;
  /** Appliances by the (unordered) pair of networks of their link. */
  std::map<std::pair<std::string, std::string>, std::vector<uint32_t>> by_link_;
};

}  // namespace qos::manager
