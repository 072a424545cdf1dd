#include "control/agent/agent_config.h"

#include <optional>

#include "control/common/units.h"
#include "control/config/endpoint.h"
#include "control/config/toml_support.h"

namespace qos::agent {
namespace {

using config::ConfigReader;
using config::Need;
using config::Section;

Result<AgentConfig> readConfig(const toml::table& root, const std::string& path) {
  ConfigReader reader;
  Section top(reader, root, "");
  AgentConfig cfg;
  cfg.source_path = path;
  std::optional<Section> agent = top.getTable("agent", Need::Required);
  top.rejectUnknownKeys();
  if (!agent || reader.failed()) {
    return reader.failed() ? Result<AgentConfig>(reader.error())
                           : makeError(ErrorCode::Invalid, path + ": [agent] is required");
  }
  Section& a = *agent;
  cfg.listen = a.getString("listen").value_or(kDefaultListen);
  cfg.name = a.getString("name", Need::Required).value_or("");
  cfg.manager = a.getString("manager", Need::Required).value_or("");
  const auto secret = a.getString("secret_key");
  const auto manager_key = a.getString("manager_public_key");
  const auto timeout = a.getString("client_timeout");
  const auto request_timeout = a.getString("request_timeout");
  a.rejectUnknownKeys();
  if (reader.failed()) {
    return reader.error();
  }
  if (auto problem = config::checkZmqEndpoint(cfg.listen)) {
    a.failAt("listen", *problem);
  } else if (!config::isLocalEndpoint(cfg.listen)) {
    a.failAt("listen",
             "qos-agent serves this host only: listen on ipc:// or a loopback tcp:// "
             "endpoint, not " +
                 cfg.listen);
  } else if (!config::isPeerName(cfg.name)) {
    a.failAt("name", "invalid name '" + cfg.name +
                         "': names are letters, digits, '-' and '_', as in the manager's [[peer]]");
  } else if (auto bad_manager = config::checkZmqEndpoint(cfg.manager)) {
    a.failAt("manager", *bad_manager);
  } else if (secret.has_value() != manager_key.has_value()) {
    a.failAt(secret ? "secret_key" : "manager_public_key",
             "CURVE needs both secret_key (this host's) and manager_public_key");
  } else if (!secret && !config::isLocalEndpoint(cfg.manager)) {
    a.failAt("manager", "the manager at " + cfg.manager +
                            " is not on this machine: set secret_key and manager_public_key "
                            "(CURVE), which only a loopback or ipc manager may go without");
  }
  if (!reader.failed() && timeout) {
    if (Result<uint64_t> ms = parseDurationMs(*timeout); ms) {
      cfg.client_timeout_ms = *ms;
    } else {
      a.failAt("client_timeout", ms.error().message);
    }
  }
  if (!reader.failed() && request_timeout) {
    if (Result<uint64_t> ms = parseDurationMs(*request_timeout); ms && *ms <= 60'000) {
      cfg.request_timeout_ms = static_cast<int>(*ms);
    } else {
      a.failAt("request_timeout", ms ? "at most 60s" : ms.error().message);
    }
  }
  if (reader.failed()) {
    return reader.error();
  }
  if (secret) {
    cfg.secret_key_path = config::pathFromConfig(path, *secret);
    cfg.manager_public_key = config::publicKeyFromConfig(path, *manager_key);
  }
  return cfg;
}

}  // namespace

Result<AgentConfig> loadAgentConfig(const std::string& path) {
  auto root = config::parseTomlFile(path);
  if (!root) {
    return root.error();
  }
  return readConfig(*root, path);
}

Result<AgentConfig> parseAgentConfig(std::string_view text, const std::string& source_name) {
  auto root = config::parseTomlText(text, source_name);
  if (!root) {
    return root.error();
  }
  return readConfig(*root, source_name);
}

}  // namespace qos::agent
