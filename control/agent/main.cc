// qos-agent: the host's QoS daemon.  Local applications (libqosclient) ask
// it for QoS over its ipc:// endpoint; it asks the manager with this host's
// CURVE key, keeps their grants alive, and releases them when they release
// them, go silent, or it stops.
#include <cstdio>
#include <iostream>
#include <string>

#include "control/agent/agent.h"
#include "control/agent/agent_config.h"
#include "control/common/daemon.h"
#include "control/common/log.h"

namespace {

using qos::daemon::kExitOk;
using qos::daemon::kExitRuntime;
using qos::daemon::kExitUsage;

const qos::daemon::Description kDescription{
    "qos-agent",
    "Usage: qos-agent --config FILE [--check-config]\n"
    "\n"
    "The host's QoS agent: local applications ask it for QoS over its ipc://\n"
    "endpoint; it asks the qosgate services manager as this host (CURVE),\n"
    "keeps their grants' leases alive, and releases a client's grants when the\n"
    "client releases them, goes silent for client_timeout, or the agent stops.",
    "Signals: SIGINT/SIGTERM release every grant held and stop.",
    std::string("qos-agent ") + QOS_VERSION,
};

int run(int argc, char** argv) {
  qos::log::setProgram("qos-agent");
  auto parsed = qos::daemon::parseOptions(argc, argv, kDescription);
  if (const int* code = std::get_if<int>(&parsed)) {
    return *code;
  }
  const auto& options = std::get<qos::daemon::Options>(parsed);
  qos::Result<qos::agent::AgentConfig> config = qos::agent::loadAgentConfig(options.config_path);
  if (!config) {
    qos::log::error(config.error().message);
    return kExitUsage;
  }
  if (options.check_config) {
    std::cout << options.config_path << ": OK: " << config->name << " at " << config->manager
              << (config->secret_key_path.empty() ? "" : " (CURVE)") << ", listening on "
              << config->listen;
    if (config->listen.starts_with("ipc://")) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", config->socket_mode);
      std::cout << " (mode " << mode
                << (config->socket_group.empty() ? "" : ", group " + config->socket_group) << ")";
    }
    std::cout << ", clients silent " << config->client_timeout_ms << " ms are gone\n";
    return kExitOk;
  }
  qos::daemon::installSignals();
  qos::agent::Agent::Options agent_options;
  agent_options.config = *config;
  qos::Result<std::unique_ptr<qos::agent::Agent>> agent =
      qos::agent::Agent::start(std::move(agent_options));
  if (!agent) {
    qos::log::error(agent.error().message);
    return agent.error().code == qos::ErrorCode::Invalid ? kExitUsage : kExitRuntime;
  }
  qos::log::info("serving local applications on " + (*agent)->endpoint() + " as " + config->name +
                 " at the manager " + config->manager);
  (*agent)->run(qos::daemon::stopFlag());
  const size_t held = (*agent)->grants();
  agent->reset();
  qos::log::info("stopped; released " + std::to_string(held) + " grant(s)");
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return qos::daemon::runGuarded("qos-agent", [&] { return run(argc, argv); });
}
