// A RequestServer for tests: parsed from a config text, on a free loopback
// port, served from a thread until destroyed.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "control/common/result.h"
#include "manager/admission/admission.h"
#include "manager/config/manager_config.h"
#include "manager/service/request_server.h"
#include "manager/service/server_metrics.h"
#include "manager/store/reservation_store.h"
#include "manager/topology/topology.h"

namespace qos::manager::test_data {

/** Binds port 0, reads the port back and closes: "tcp://127.0.0.1:PORT". */
inline std::string freeLoopbackEndpoint() {
  zmq::context_t ctx;
  zmq::socket_t probe(ctx, zmq::socket_type::router);
  probe.set(zmq::sockopt::linger, 0);
  probe.bind("tcp://127.0.0.1:*");
  return probe.get(zmq::sockopt::last_endpoint);
}

/**
 * The world these tests serve: lan-a (198.18.1.0/24) with EF (DSCP 46) and
 * AF41 (DSCP 34) of the given capacities, linked to lan-b (198.19.1.0/24,
 * no classes); voip (udp 16384-32767) at 100 kbit/s in EF, AF41 its
 * alternate.
 */
inline std::string voipWorld(const std::string& ef_capacity, const std::string& af41_capacity) {
  return R"(
[manager]
listen = "tcp://127.0.0.1:0"
lease = "60s"
[[network]]
name = "lan-a"
prefixes = ["198.18.1.0/24"]
class_enabled = true
classes = { EF = { dscp = 46, capacity = ")" +
         ef_capacity + R"(" }, AF41 = { dscp = 34, capacity = ")" + af41_capacity + R"(" } }
[[network]]
name = "lan-b"
prefixes = ["198.19.1.0/24"]
class_enabled = false
[[link]]
between = ["lan-a", "lan-b"]
[[application]]
name = "voip"
match = { proto = "udp", dport = "16384-32767" }
default = { class = "EF", rate = "100kbit", burst = "10kB" }
alternates = [ { class = "AF41", rate = "100kbit", burst = "10kB" } ]
)";
}

/** A provision body for voip from 198.18.1.10:@p sport to 198.19.1.20:20000. */
inline nlohmann::json voipProvision(int sport, const std::string& request_id) {
  return {{"app", "voip"},  {"src", "198.18.1.10"}, {"sport", sport},   {"dst", "198.19.1.20"},
          {"dport", 20000}, {"proto", "udp"},       {"client", "test"}, {"request_id", request_id}};
}

class TestServer {
public:
  struct Options {
    ReservationStore* store = nullptr;
    bool metrics = false;  ///< a ServerMetrics with no listener, for collect()
    Clock clock = systemClockMs;
    zmq::context_t* context = nullptr;      ///< the server's (a ZAP handler's too); null: its own
    std::string endpoint;                   ///< "" a free loopback port
    std::string source_path = "test.toml";  ///< key paths in the config are relative to it
    const std::vector<Grant>* restore = nullptr;  ///< grants restored before serving
  };

  /** Starts the server; an Error says what did not (config, metrics, bind). */
  Result<void> start(std::string_view config_text, Options options) {
    endpoint = options.endpoint.empty() ? freeLoopbackEndpoint() : options.endpoint;
    Result<ManagerConfig> parsed = parseManagerConfig(config_text, options.source_path);
    if (!parsed) {
      return parsed.error();
    }
    config = std::move(*parsed);
    config.listen = endpoint;
    topology = std::make_unique<Topology>(config);
    engine = std::make_unique<AdmissionEngine>(config, *topology);
    if (options.restore != nullptr) {
      for (const Grant& grant : *options.restore) {
        if (Result<void> r = engine->restore(grant); !r) {
          return r;
        }
      }
    }
    if (options.metrics) {
      Result<std::unique_ptr<ServerMetrics>> started = ServerMetrics::start("", *engine);
      if (!started) {
        return started.error();
      }
      metrics = std::move(*started);
    }
    server = std::make_unique<RequestServer>(config, *engine, options.store, metrics.get(),
                                             std::move(options.clock), options.context);
    if (Result<void> bound = server->bind(); !bound) {
      return bound;
    }
    thread_ = std::thread([this] { server->run(stop_); });
    return {};
  }

  /** Stops serving and waits for the server's loop to end (also on destruction). */
  void stop() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  ~TestServer() { stop(); }

  std::string endpoint;
  ManagerConfig config;
  std::unique_ptr<Topology> topology;
  std::unique_ptr<AdmissionEngine> engine;
  std::unique_ptr<ServerMetrics> metrics;
  std::unique_ptr<RequestServer> server;

private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace qos::manager::test_data
