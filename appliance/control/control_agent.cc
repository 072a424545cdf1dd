#include "appliance/control/control_agent.h"

#include "control/common/random_id.h"
#include "control/transport/curve_keys.h"

namespace qos::appliance {

Result<std::optional<control::CurveClientKeys>> loadControlKeys(const ControlConfig& control) {
  if (control.secret_key_path.empty()) {
    return std::optional<control::CurveClientKeys>();
  }
  Result<control::CurveKeyPair> own = control::loadCurveSecretKey(control.secret_key_path);
  if (!own) {
    return makeError(ErrorCode::Invalid, "control.secret_key: " + own.error().message);
  }
  Result<std::string> manager = control::loadCurvePublicKey(control.manager_public_key);
  if (!manager) {
    return makeError(ErrorCode::Invalid, "control.manager_public_key: " + manager.error().message);
  }
  return std::optional<control::CurveClientKeys>(
      control::CurveClientKeys{own->public_z85, own->secret_z85, *manager});
}

Result<std::unique_ptr<ControlAgent>> ControlAgent::start(const ControlConfig& control,
                                                          Appliance& appliance) {
  Result<std::optional<control::CurveClientKeys>> keys = loadControlKeys(control);
  if (!keys) {
    return keys.error();
  }
  std::vector<control::PortPairInfo> pairs;
  for (const PortPair& pair : appliance.config().pairs) {
    pairs.push_back({pair.inside, pair.outside});
  }
  std::unique_ptr<ControlAgent> agent(new ControlAgent(appliance));
  ManagerLinkOptions options{control.manager, std::move(*keys)};
  agent->link_ = std::make_unique<ManagerLink>(
      nullptr, std::move(options),
      SyncSession(control.name, randomHexId(), QOS_VERSION, std::move(pairs)), agent->target_,
      &agent->target_);
  if (Result<void> r = agent->link_->start(); !r) {
    return makeError(r.error().code, "control.manager: " + r.error().message);
  }
  return agent;
}

}  // namespace qos::appliance
