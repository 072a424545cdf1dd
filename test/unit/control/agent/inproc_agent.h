// An Agent's options for a test in one process: it listens and reaches the
// manager over inproc:// on the test's ZeroMQ context, on the test's clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include <zmq.hpp>

#include "control/agent/agent.h"

namespace qos::agent::test {

inline Agent::Options inprocAgentOptions(zmq::context_t& context, const std::string& listen,
                                         const std::string& manager,
                                         const std::atomic<uint64_t>& now) {
  Agent::Options options;
  options.config.listen = listen;
  options.config.name = "host-a";
  options.config.manager = manager;
  options.context = &context;
  client::SessionOptions upstream;
  upstream.endpoint = manager;
  upstream.context = &context;
  upstream.timeout_ms = 1000;
  upstream.steady_ms = [&now] { return now.load(); };
  upstream.wall_ms = [&now] { return now.load(); };
  options.upstream = upstream;
  options.steady_ms = [&now] { return now.load(); };
  options.wall_ms = [&now] { return now.load(); };
  return options;
}

}  // namespace qos::agent::test
