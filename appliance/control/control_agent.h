// ControlAgent: what joins a running qosgate to its manager ([control]):
// the appliance's rule target and the link that syncs it, polled by the
// control loop on the main lcore between its other chores.
#pragma once

#include <memory>
#include <optional>

#include "appliance/config/appliance_config.h"
#include "appliance/control/appliance_target.h"
#include "appliance/control/manager_link.h"
#include "appliance/runtime/appliance.h"
#include "control/common/result.h"
#include "control/transport/client.h"

namespace qos::appliance {

/**
 * The CURVE keys [control] names, read from their files: this appliance's
 * pair and the manager's public key; nullopt without CURVE.  Errors name
 * the file (a missing file, a key that is not one, a secret key others may
 * read).
 */
Result<std::optional<control::CurveClientKeys>> loadControlKeys(const ControlConfig& control);

class ControlAgent {
public:
  /**
   * Starts syncing @p appliance's manager rules with the manager @p control
   * names.  @p appliance must outlive the agent.
   */
  static Result<std::unique_ptr<ControlAgent>> start(const ControlConfig& control,
                                                     Appliance& appliance);

  /** Does what is due; waits at most @p wait_ms. */
  void poll(int wait_ms) {
    link_->poll(wait_ms);
    appliance_.setManagerConnected(link_->connected());
  }
  const ManagerLink& link() const { return *link_; }

private:
  explicit ControlAgent(Appliance& appliance) : appliance_(appliance), target_(appliance) {}

  Appliance& appliance_;
  ApplianceTarget target_;
  std::unique_ptr<ManagerLink> link_;
};

}  // namespace qos::appliance
