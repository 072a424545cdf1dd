// qosmgr: the services manager.
//
//   parse options -> load and validate the config -> open the reservation
//   store and restore every live reservation (expired leases are released,
//   reservations that no longer fit are reported and dropped) -> serve
//   requests over ZeroMQ until SIGINT/SIGTERM.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <variant>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "control/common/daemon.h"
#include "control/common/log.h"
#include "control/transport/zap_handler.h"
#include "manager/admission/admission.h"
#include "manager/config/manager_config.h"
#include "manager/service/config_reload.h"
#include "manager/service/request_server.h"
#include "manager/service/server_metrics.h"
#include "manager/store/reservation_store.h"
#include "manager/topology/topology.h"

namespace mgr = qos::manager;

namespace {

// Loads the stored reservations into the engine; drops what expired while we
// were down and what the current config can no longer carry.
qos::Result<void> restore(mgr::ReservationStore& store, mgr::AdmissionEngine& engine,
                          uint64_t now_ms) {
  auto grants = store.loadAll();
  if (!grants) {
    return grants.error();
  }
  size_t restored = 0;
  size_t expired = 0;
  size_t dropped = 0;
  for (const mgr::Grant& g : *grants) {
    if (g.expires_at_ms <= now_ms) {
      store.stageDelete(g.flow_id);
      ++expired;
      continue;
    }
    if (auto r = engine.restore(g); !r) {
      qos::log::warning("reservation of flow " + std::to_string(g.flow_id) +
                        " dropped at start: " + r.error().message);
      store.stageDelete(g.flow_id);
      ++dropped;
      continue;
    }
    ++restored;
  }
  if (auto r = store.commit(); !r) {
    return r.error();
  }
  // Flow ids handed out before, released or not, are never handed out again.
  engine.reserveFlowIds(store.nextFlowId());
  qos::log::info("restored " + std::to_string(restored) + " reservation(s); " +
                 std::to_string(expired) + " had expired, " + std::to_string(dropped) +
                 " no longer fit");
  return {};
}

/** The keys the ZAP handler lets in, each with the peer name it authenticates as. */
std::map<std::string, std::string> zapKeys(const mgr::SecurityConfig& security) {
  std::map<std::string, std::string> keys;
  for (const mgr::PeerConfig& peer : security.peers) {
    keys.emplace(peer.public_key_z85, peer.name);
  }
  return keys;
}

}  // namespace

int runMain(int argc, char** argv) {
  qos::log::setProgram("qosmgr");
  const auto parsed = qos::daemon::parseOptions(
      argc, argv,
      {"qosmgr",
       "Usage: qosmgr --config FILE [--check-config]\n\n"
       "The qosgate services manager: admits flows against per-class capacity on\n"
       "every network and SLA of their path, and serves hosts, appliances and\n"
       "qosctl over ZeroMQ.",
       "Signals: SIGINT/SIGTERM stop cleanly after the current batch; SIGHUP reloads\n"
       "the config (networks, classes, links, SLAs, applications, leases) if every\n"
       "live reservation still fits it unchanged, and otherwise keeps the old one.\n",
       std::string("qosmgr ") + QOS_VERSION});
  if (const int* exit_code = std::get_if<int>(&parsed)) {
    return *exit_code;
  }
  const std::string& path = std::get<qos::daemon::Options>(parsed).config_path;
  auto config = mgr::loadManagerConfig(path);
  if (!config) {
    std::cerr << "qosmgr: error: " << config.error().message << "\n";
    return qos::daemon::kExitUsage;
  }
  if (std::get<qos::daemon::Options>(parsed).check_config) {
    std::cout << path << ": OK: " << config->networks.size() << " network(s), "
              << config->links.size() << " link(s), " << config->slas.size() << " SLA(s), "
              << config->applications.size() << " application(s), " << config->appliances.size()
              << " appliance(s), "
              << (config->security.curve
                      ? "CURVE with " + std::to_string(config->security.peers.size()) + " peer(s)"
                      : std::string("no CURVE (local only)"))
              << "\n";
    return qos::daemon::kExitOk;
  }
  qos::daemon::installSignals();

  // Declared before everything that points into it (engine, server, metrics).
  mgr::ConfigReload configs(path, *config);
  mgr::AdmissionEngine engine(configs.config(), configs.topology());
  // One manager per state file: two would both hand out the same bandwidth.
  int lock_fd = -1;
  if (!config->state_path.empty()) {
    const std::string lock_path = config->state_path + ".lock";
    lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      qos::log::error("cannot lock " + lock_path + ": " + std::strerror(errno) +
                      (errno == EWOULDBLOCK ? " (another qosmgr uses this state file)" : ""));
      return qos::daemon::kExitRuntime;
    }
  }
  auto store = mgr::ReservationStore::open(config->state_path);
  if (!store) {
    qos::log::error(store.error().message);
    return qos::daemon::kExitRuntime;
  }
  if (auto r = restore(**store, engine, mgr::systemClockMs()); !r) {
    qos::log::error("cannot restore reservations from " + config->state_path + ": " +
                    r.error().message);
    return qos::daemon::kExitRuntime;
  }
  auto metrics = mgr::ServerMetrics::start(config->metrics_listen, engine);
  if (!metrics) {
    qos::log::error(metrics.error().message);
    return qos::daemon::kExitRuntime;
  }
  // Declared in this order so that they go in the reverse: the server's
  // socket closes before the ZAP handler stops (a CURVE server without one
  // would let any key in), and the handler before the context it runs on.
  zmq::context_t context(1);
  std::unique_ptr<qos::control::ZapHandler> zap;
  if (config->security.curve) {
    auto started = qos::control::ZapHandler::start(context, zapKeys(config->security),
                                                   std::string(mgr::RequestServer::kZapDomain));
    if (!started) {
      qos::log::error("cannot start the ZAP handler, so no key could be checked: " +
                      started.error().message);
      return qos::daemon::kExitRuntime;
    }
    zap = std::move(*started);
  } else {
    qos::log::warning("[security] mode \"none\": every peer that reaches " + config->listen +
                      " may do everything (it is on this machine only)");
  }
  mgr::RequestServer server(configs.config(), engine, store->get(), metrics->get(),
                            mgr::systemClockMs, &context);
  if (auto r = server.bind(); !r) {
    qos::log::error(r.error().message);
    return qos::daemon::kExitRuntime;
  }
  qos::log::info("serving on " + config->listen + " (" + std::to_string(engine.flowCount()) +
                 " reservation(s), state " +
                 (config->state_path.empty() ? std::string("in memory") : config->state_path) +
                 (config->metrics_listen.empty() ? "" : ", metrics on " + config->metrics_listen) +
                 ")");
  std::thread reload_watch([&configs, &engine, &server, &zap] {
    uint64_t refused_logged = 0;
    auto last_refusal_log = std::chrono::steady_clock::now();
    while (!qos::daemon::stopFlag().load()) {
      // Keys the ZAP handler refused, said at most every 10 s.
      if (zap && std::chrono::steady_clock::now() - last_refusal_log > std::chrono::seconds(10)) {
        const uint64_t refused = zap->counts().refused;
        if (refused > refused_logged) {
          qos::log::warning(
              std::to_string(refused - refused_logged) +
              " connection(s) refused: key not a [[peer]] (last: " + zap->lastRefusedKey() + ")");
          refused_logged = refused;
        }
        last_refusal_log = std::chrono::steady_clock::now();
      }
      if (qos::daemon::takeReload()) {
        if (qos::Result<std::string> r = configs.reload(engine, &server); r) {
          if (zap) {
            zap->setKeys(zapKeys(configs.config().security));
          }
          qos::log::info("SIGHUP: " + *r);
        } else {
          qos::log::error("SIGHUP: " + r.error().message);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  server.run(qos::daemon::stopFlag());
  reload_watch.join();
  qos::log::info("stopped with " + std::to_string(engine.flowCount()) + " reservation(s) stored");
  if (lock_fd >= 0) {
    close(lock_fd);
  }
  return qos::daemon::kExitOk;
}

int main(int argc, char** argv) {
  return qos::daemon::runGuarded("qosmgr", [&] { return runMain(argc, argv); });
}
