// ConfigReload: qosmgr's SIGHUP.  Reads the config file again and, if it is
// valid and every live reservation still holds under it, switches the
// admission engine and the request server to it; otherwise changes nothing
// and says why (file:line:column for a bad file, the flow for a reservation
// that would not fit or would change).
//
// What a reload applies: networks, classes and their DSCPs and capacities,
// links, SLAs, applications, the lease limits, appliances (their rules are
// planned again) and the [[peer]] keys and roles.  What it does not: the
// listen and metrics addresses, the state file, the security mode and the
// manager's own key, which the running process holds; a change to those is
// reported as needing a restart.
//
// Every config and topology ever applied is kept until this object goes:
// the engine and the server point at the current one from other threads,
// and reloads are rare and small.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "manager/admission/admission.h"
#include "manager/config/manager_config.h"
#include "manager/service/request_server.h"
#include "manager/topology/topology.h"

namespace qos::manager {

class ConfigReload {
public:
  /** @p path is read again by reload(); @p initial is the config the process started with. */
  ConfigReload(std::string path, ManagerConfig initial);

  const ManagerConfig& config() const { return *configs_.back(); }
  const Topology& topology() const { return *topologies_.back(); }

  /**
   * Reads the file and applies it to @p engine, then @p server (may be null).
   * @return one line saying what was applied, with any setting that needs a
   *         restart; or an Error, and nothing changed.
   */
  Result<std::string> reload(AdmissionEngine& engine, RequestServer* server);

private:
  std::string path_;
  std::vector<std::unique_ptr<ManagerConfig>> configs_;
  std::vector<std::unique_ptr<Topology>> topologies_;
};

}  // namespace qos::manager
