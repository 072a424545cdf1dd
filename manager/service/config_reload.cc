#include "manager/service/config_reload.h"

#include <utility>

namespace qos::manager {

ConfigReload::ConfigReload(std::string path, ManagerConfig initial) : path_(std::move(path)) {
  configs_.push_back(std::make_unique<ManagerConfig>(std::move(initial)));
  topologies_.push_back(std::make_unique<Topology>(*configs_.back()));
}

Result<std::string> ConfigReload::reload(AdmissionEngine& engine, RequestServer* server) {
  Result<ManagerConfig> loaded = loadManagerConfig(path_);
  if (!loaded) {
    return makeError("config not reloaded: " + loaded.error().message);
  }
  auto fresh = std::make_unique<ManagerConfig>(std::move(*loaded));
  const ManagerConfig& old = config();
  // The process holds these; the new values wait for a restart.
  std::string restart_needed;
  const auto held = [&](const char* key, const std::string& before, const std::string& after) {
    if (before != after) {
      restart_needed += std::string(restart_needed.empty() ? "" : ", ") + key;
    }
  };
  held("manager.listen", old.listen, fresh->listen);
  held("manager.state", old.state_path, fresh->state_path);
  held("metrics.listen", old.metrics_listen, fresh->metrics_listen);
  held("security.mode", old.security.curve ? "curve" : "none",
       fresh->security.curve ? "curve" : "none");
  held("security.secret_key", old.security.secret_z85, fresh->security.secret_z85);
  fresh->listen = old.listen;
  fresh->state_path = old.state_path;
  fresh->metrics_listen = old.metrics_listen;
  if (fresh->security.curve != old.security.curve) {
    // The socket was bound with the old mode: its peers stay until a restart.
    fresh->security = old.security;
  } else {
    // The [[peer]]s apply now; the socket keeps the key it was bound with.
    fresh->security.secret_key_path = old.security.secret_key_path;
    fresh->security.secret_z85 = old.security.secret_z85;
    fresh->security.public_z85 = old.security.public_z85;
  }

  auto topology = std::make_unique<Topology>(*fresh);
  if (Result<void> r = engine.reconfigure(*fresh, *topology); !r) {
    return makeError("config not reloaded (nothing changed): " + r.error().message);
  }
  if (server != nullptr) {
    server->setConfig(*fresh);
  }
  std::string summary = "reloaded " + path_ + ": " + std::to_string(fresh->networks.size()) +
                        " network(s), " + std::to_string(fresh->links.size()) + " link(s), " +
                        std::to_string(fresh->slas.size()) + " SLA(s), " +
                        std::to_string(fresh->applications.size()) + " application(s), " +
                        std::to_string(fresh->appliances.size()) + " appliance(s), " +
                        std::to_string(fresh->security.peers.size()) + " peer(s); " +
                        std::to_string(engine.flowCount()) + " reservation(s) kept";
  if (!restart_needed.empty()) {
    summary += "; changed but applied only at the next restart: " + restart_needed;
  }
  configs_.push_back(std::move(fresh));
  topologies_.push_back(std::move(topology));
  return summary;
}

}  // namespace qos::manager
