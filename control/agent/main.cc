// qos-agent: the host's QoS daemon.  Local applications (libqosclient) ask
// it for QoS over its ipc:// endpoint; it asks the manager with this host's
// CURVE key, keeps their grants alive, and releases them when they release
// them, go silent, or it stops.
#include <cstdio>
#include <iostream>
#include <string>

#include "control/agent/agent.h"
#include "control/agent/agent_config.h"
#include "control/agent/agent_status.h"
#include "control/common/daemon.h"
#include "control/common/ip_protocol.h"
#include "control/common/log.h"
#include "control/common/units.h"
#include "control/transport/client.h"

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
    "Signals: SIGINT/SIGTERM release every grant held and stop; SIGHUP re-reads\n"
    "the config's [[policy]] set: removed policies are released, new ones asked for.\n",
    std::string("qos-agent ") + QOS_VERSION,
    {{"status", "ask the running agent (at the config's listen) what it holds, and exit"},
     {"json", "with --status: print the agent's JSON reply"}},
};

std::string portText(uint16_t port) { return port == 0 ? "any" : std::to_string(port); }

std::string flowText(const qos::control::FlowSpec& flow, bool bidir) {
  const char* proto = qos::ipProtocolName(flow.protocol);
  return std::string(proto != nullptr ? proto : "?") + " " + qos::formatIpAddress(flow.src) + ":" +
         portText(flow.src_port) + (bidir ? " <-> " : " -> ") + qos::formatIpAddress(flow.dst) +
         ":" + portText(flow.dst_port);
}

/** qos-agent --status: one request to the running agent, printed. */
int printStatus(const qos::agent::AgentConfig& config, bool json) {
  qos::control::RequestClient client;
  if (auto c = client.connect(config.listen, config.request_timeout_ms); !c) {
    qos::log::error(c.error().message);
    return kExitRuntime;
  }
  qos::Result<qos::control::Reply> reply =
      client.call(qos::agent::kStatusRequest, nlohmann::json::object());
  if (!reply) {
    qos::log::error("no status from the agent at " + config.listen + ": " + reply.error().message);
    return kExitRuntime;
  }
  if (reply->status != qos::control::ReplyStatus::Ok) {
    qos::log::error("the agent at " + config.listen + " answered " + reply->error.code + ": " +
                    reply->error.message);
    return kExitRuntime;
  }
  if (json) {
    std::cout << reply->body.dump(2) << "\n";
    return kExitOk;
  }
  auto status = qos::control::decodeObject<qos::agent::AgentStatus>(
      reply->body, qos::control::Unknown::Ignore, "status");
  if (!status) {
    qos::log::error("the agent's status is not readable: " + status.error().message);
    return kExitRuntime;
  }
  std::cout << "qos-agent " << status->name << " (" << status->version << "), manager "
            << status->manager << ": " << status->clients << " local client(s) holding "
            << status->client_grants << " grant(s); " << status->policies.size()
            << " standing polic" << (status->policies.size() == 1 ? "y" : "ies") << "\n"
            << "  enforcement: " << status->enforcement << "\n";
  for (const qos::agent::PolicyStatus& p : status->policies) {
    std::cout << "  " << p.name << ": " << qos::agent::policyStateName(p.state) << ", "
              << flowText(p.flow, p.bidirectional);
    if (!p.application.empty()) {
      std::cout << ", app " << p.application;
    }
    if (p.state == qos::agent::PolicyState::Held) {
      std::cout << ", flow " << p.flow_id << ", " << p.class_name << " DSCP "
                << static_cast<int>(p.dscp.value_or(0));
      if (p.reverse_dscp) {
        std::cout << " (reverse " << static_cast<int>(*p.reverse_dscp) << ")";
      }
      std::cout << ", " << qos::formatRate(p.rate_bps) << ", burst " << p.burst_bytes << " B"
                << (p.enforced ? ", enforced here" : "");
    } else {
      if (!p.reason.empty()) {
        std::cout << ": " << p.reason;
      }
      if (p.next_try_in_ms) {
        std::cout << " (asked again in " << (*p.next_try_in_ms + 999) / 1000 << " s, " << p.attempts
                  << " tr" << (p.attempts == 1 ? "y" : "ies") << " so far)";
      }
    }
    std::cout << "\n";
  }
  return kExitOk;
}

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
  if (options.flags.contains("status")) {
    return printStatus(*config, options.flags.contains("json"));
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
    std::cout << ", clients silent " << config->client_timeout_ms << " ms are gone, "
              << config->policies.size() << " standing polic"
              << (config->policies.size() == 1 ? "y" : "ies") << "\n";
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
  const std::atomic<bool>& stop = qos::daemon::stopFlag();
  while (!stop.load()) {
    (*agent)->serveOnce(100);
    if (qos::daemon::takeReload()) {
      qos::Result<qos::agent::AgentConfig> next = qos::agent::loadAgentConfig(options.config_path);
      if (!next) {
        qos::log::error("reload refused, the running config stays: " + next.error().message);
      } else {
        (*agent)->reload(*next);
      }
    }
  }
  const size_t held = (*agent)->grants();
  const size_t policies = (*agent)->policies().held();
  agent->reset();
  qos::log::info("stopped; released " + std::to_string(held) + " client grant(s) and " +
                 std::to_string(policies) + " standing policy grant(s)");
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return qos::daemon::runGuarded("qos-agent", [&] { return run(argc, argv); });
}
