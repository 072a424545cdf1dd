// qosgate: the DiffServ bump in the wire.
//
//   parse options -> load and validate the config -> EAL init -> ports, flow
//   table, workers -> control loop (signals, reload, reclamation) -> clean stop
//   with final counters and an mbuf leak check.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include <unistd.h>

#include <rte_eal.h>
#include <rte_version.h>

#include "appliance/config/appliance_config.h"
#include "appliance/control/control_agent.h"
#include "appliance/runtime/appliance.h"
#include "appliance/runtime/metrics.h"
#include "control/common/daemon.h"
#include "control/common/log.h"

using qos::appliance::Appliance;
using qos::appliance::ApplianceConfig;

namespace {

using qos::daemon::kExitOk;
using qos::daemon::kExitRuntime;

/** The control loop's turn: signals, reloads, RCU reclamation and the manager, every 20 ms. */
constexpr int kControlTickMs = 20;

void printSummary(const Appliance& app) {
  std::printf("qosgate: final counters\n");
  std::printf("%-5s %-20s %-8s %12s %12s %10s %10s %10s %10s\n", "port", "device", "role",
              "rx_pkts", "tx_pkts", "dropped", "malformed", "non_ip", "remarked");
  for (const auto& port : app.ports()) {
    const auto t = app.portTotals(port.port_id);
    uint64_t malformed = 0;
    for (uint64_t m : t.malformed) {
      malformed += m;
    }
    std::printf("%-5u %-20s %-8s %12lu %12lu %10lu %10lu %10lu %10lu\n", port.port_id,
                port.device.c_str(), port.role.c_str(), t.rx_pkts, t.tx_pkts, t.droppedTotal(),
                malformed, t.non_ip_pkts, t.remarked_pkts);
    std::string reasons;
    for (size_t r = 0; r < qos::appliance::kDropReasons; ++r) {
      if (t.drops[r] != 0) {
        reasons += std::string(" ") +
                   qos::appliance::dropReasonName(static_cast<qos::appliance::DropReason>(r)) +
                   "=" + std::to_string(t.drops[r]);
      }
    }
    if (!reasons.empty()) {
      std::printf("      drops by reason:%s\n", reasons.c_str());
    }
    std::string malformed_reasons;
    for (size_t r = 1; r < qos::appliance::kMalformedReasons; ++r) {
      if (t.malformed[r] != 0) {
        malformed_reasons += " " +
                             std::string(qos::appliance::malformedReasonName(
                                 static_cast<qos::appliance::MalformedReason>(r))) +
                             "=" + std::to_string(t.malformed[r]);
      }
    }
    if (!malformed_reasons.empty()) {
      std::printf("      malformed by reason:%s\n", malformed_reasons.c_str());
    }
    const auto hw = app.hardwareStats(port.port_id);
    if (hw.rx_missed + hw.rx_errors + hw.rx_nombuf + hw.tx_errors != 0) {
      std::printf("      port drops: rx_missed=%lu rx_errors=%lu rx_nombuf=%lu tx_errors=%lu\n",
                  hw.rx_missed, hw.rx_errors, hw.rx_nombuf, hw.tx_errors);
    }
    if (t.rx_pkts != t.tx_pkts + t.droppedTotal()) {
      std::printf("      CONSERVATION VIOLATED: rx %lu != tx %lu + dropped %lu\n", t.rx_pkts,
                  t.tx_pkts, t.droppedTotal());
    }
  }
  std::fflush(stdout);
}

void reloadConfig(Appliance& app) {
  auto next = qos::appliance::loadApplianceConfig(app.config().source_path);
  if (!next) {
    qos::log::error("reload refused, keeping the running config: " + next.error().message);
    return;
  }
  const auto reloaded = app.reload(*next);
  if (!reloaded) {
    qos::log::error("reload refused, keeping the running config: " + reloaded.error().message);
    return;
  }
  const qos::appliance::ReloadSummary& s = *reloaded;
  qos::log::info("reloaded " + app.config().source_path + ": flows +" +
                 std::to_string(s.flows_added) + " -" + std::to_string(s.flows_removed) + " ~" +
                 std::to_string(s.flows_changed) +
                 (s.policy_changed ? ", policy changed" : ", policy unchanged"));
  for (const auto& key : s.needs_restart) {
    qos::log::warning("reload: changes to [" + key + "] take effect only after a restart");
  }
}

/**
 * What EAL gets to leave no file behind, if asked to and no argument
 * chooses its memory mode: --in-memory, or --no-shconf with --no-huge
 * (which has no hugepage files, and which --in-memory refuses).
 */
std::optional<std::string> inMemoryArg(const ApplianceConfig& config,
                                       const std::vector<std::string>& args) {
  const auto has = [&](std::string_view prefix) {
    return std::any_of(args.begin(), args.end(),
                       [&](const std::string& a) { return a.starts_with(prefix); });
  };
  if (!config.eal_in_memory || has("--in-memory") || has("--no-shconf") || has("--huge-unlink") ||
      has("--proc-type")) {
    return std::nullopt;
  }
  return has("--no-huge") || has("--legacy-mem") ? "--no-shconf" : "--in-memory";
}

/**
 * EAL's resources go; its runtime directory too (under --in-memory only the
 * telemetry socket is there, which DPDK would unlink only at exit).
 */
void cleanUpEal() {
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  unlink((runtime_dir + "/dpdk_telemetry.v2").c_str());
  rmdir(runtime_dir.c_str());
}

int run(const ApplianceConfig& config, const std::vector<std::string>& extra_eal_args,
        const char* argv0) {
  std::vector<std::string> eal_args{argv0};
  eal_args.insert(eal_args.end(), config.eal_args.begin(), config.eal_args.end());
  eal_args.insert(eal_args.end(), extra_eal_args.begin(), extra_eal_args.end());
  if (auto arg = inMemoryArg(config, eal_args)) {
    eal_args.push_back(*arg);
  }
  std::vector<char*> eal_argv;
  eal_argv.reserve(eal_args.size());
  for (auto& a : eal_args) {
    eal_argv.push_back(a.data());
  }
  // Handlers first: a stop asked for during start-up is honoured once it is done.
  qos::daemon::installSignals();
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    qos::log::error("EAL initialization failed (see the EAL messages above); EAL args were:" + [&] {
      std::string s;
      for (size_t i = 1; i < eal_args.size(); ++i) {
        s += " " + eal_args[i];
      }
      return s;
    }());
    return kExitRuntime;
  }

  int status = kExitOk;
  {
    // A start-up failure undoes what was made, in order (the agent, the
    // metrics listener, then the appliance: workers, ports, which give their
    // mbufs back, and only then the pool), then EAL; its message is the last line.
    std::unique_ptr<Appliance> appliance;
    std::unique_ptr<qos::appliance::MetricsServer> metrics;
    std::unique_ptr<qos::appliance::ControlAgent> agent;
    const auto fail = [&](const std::string& message) {
      agent.reset();
      metrics.reset();
      appliance.reset();
      cleanUpEal();
      qos::log::error(message);
      return kExitRuntime;
    };
    auto created = Appliance::create(config);
    if (!created) {
      return fail(created.error().message);
    }
    appliance = std::move(*created);
    if (!config.metrics.listen.empty()) {
      auto m = qos::appliance::MetricsServer::start(config.metrics.listen, *appliance);
      if (!m) {
        return fail(m.error().message);
      }
      metrics = std::move(*m);
    }
    if (auto r = appliance->start(); !r) {
      return fail(r.error().message);
    }
    std::string pairs;
    for (const auto& p : appliance->ports()) {
      if (p.role == "inside") {
        pairs +=
            " " + p.device + "<->" + appliance->ports()[&p - &appliance->ports()[0] + 1].device;
      }
    }
    qos::log::info("forwarding:" + pairs + "; " + std::to_string(appliance->workerCount()) +
                   " worker(s), " + std::to_string(appliance->flowCount()) + " flow(s), " +
                   std::to_string(config.policy.classes.size()) + " class rule(s)" +
                   (config.metrics.listen.empty() ? "" : ", metrics on " + config.metrics.listen));

    if (config.control) {
      auto started = qos::appliance::ControlAgent::start(*config.control, *appliance);
      if (!started) {
        return fail(started.error().message);
      }
      agent = std::move(*started);
    }
    while (!qos::daemon::stopFlag().load()) {
      if (agent) {
        agent->poll(kControlTickMs);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(kControlTickMs));
      }
      if (qos::daemon::takeReload()) {
        reloadConfig(*appliance);
      }
      appliance->housekeeping();
    }
    qos::log::info("stopping");
    agent.reset();
    metrics.reset();
    appliance->stop();
    printSummary(*appliance);
    appliance->closePorts();
    const unsigned leaked = appliance->mbufsInUse();
    std::printf("qosgate: mbufs in use after stop: %u of %u\n", leaked, appliance->mbufsTotal());
    if (leaked != 0) {
      qos::log::error("mbuf leak: " + std::to_string(leaked) + " mbufs not returned to the pool");
      status = kExitRuntime;
    }
  }
  cleanUpEal();
  return status;
}

}  // namespace

int runMain(int argc, char** argv) {
  qos::log::setProgram("qosgate");
  // Everything after "--" goes to EAL untouched.
  std::vector<std::string> eal_extra;
  int own_argc = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--") {
      own_argc = i;
      eal_extra.assign(argv + i + 1, argv + argc);
      break;
    }
  }

  const auto parsed = qos::daemon::parseOptions(
      own_argc, argv,
      {"qosgate",
       "Usage: qosgate --config FILE [--check-config] [-- EAL args]\n\n"
       "DiffServ bump in the wire: classifies flows, rewrites DSCP and polices\n"
       "with rte_meter on DPDK ports.  EAL args come from [eal] args in the\n"
       "config, then from the command line after \"--\".",
       "Signals: SIGINT/SIGTERM stop cleanly (final counters are printed);\n"
       "SIGHUP re-reads the config and applies flows and policy without a restart.\n",
       std::string("qosgate ") + QOS_VERSION + " (" + rte_version() + ")"});
  if (const int* exit_code = std::get_if<int>(&parsed)) {
    return *exit_code;
  }
  const std::string& path = std::get<qos::daemon::Options>(parsed).config_path;
  auto config = qos::appliance::loadApplianceConfig(path);
  if (!config) {
    std::cerr << "qosgate: error: " << config.error().message << "\n";
    return qos::daemon::kExitUsage;
  }
  if (config->control) {
    // Keys are read now, so a bad one is refused before EAL starts.
    if (auto keys = qos::appliance::loadControlKeys(*config->control); !keys) {
      std::cerr << "qosgate: error: " << path << ": " << keys.error().message << "\n";
      return qos::daemon::kExitUsage;
    }
  }
  if (std::get<qos::daemon::Options>(parsed).check_config) {
    std::cout << path << ": OK: " << config->pairs.size() << " port pair(s), "
              << config->flows.size() << " flow(s), " << config->policy.classes.size()
              << " class rule(s)"
              << (config->control
                      ? ", manager " + config->control->manager + " as " + config->control->name +
                            (config->control->secret_key_path.empty() ? "" : " (CURVE)")
                      : std::string())
              << "\n";
    return kExitOk;
  }
  return run(*config, eal_extra, argv[0]);
}

int main(int argc, char** argv) {
  return qos::daemon::runGuarded("qosgate", [&] { return runMain(argc, argv); });
}
