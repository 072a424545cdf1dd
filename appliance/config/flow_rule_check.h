// The checks every flow rule passes before it is installed, wherever it
// comes from: a [[flow]] of the config file (the TOML reader names the key
// and its file:line:column) or a rule from the manager (the control agent
// refuses it and says why).
#pragma once

#include <optional>
#include <string>

#include "appliance/config/appliance_config.h"

namespace qos::appliance {

/** What is wrong with a rule, and which of its keys says so. */
struct RuleProblem {
  std::string field;    ///< the key as a [[flow]] writes it: "dst", "proto", "meter.cir"
  std::string message;  ///< e.g. "must be > 0"
};

/**
 * Whether @p rule can be installed: both addresses of one family, ports only
 * for protocols that have them, DSCPs within 0..63, a meter rte_meter takes
 * (srTCM: cir > 0, cbs and ebs not both 0; trTCM: cir > 0, pir >= cir,
 * cbs > 0, pbs > 0).
 * @return the first problem, in the order of the keys above; nullopt if none
 */
std::optional<RuleProblem> checkFlowRule(const FlowRule& rule);

}  // namespace qos::appliance
