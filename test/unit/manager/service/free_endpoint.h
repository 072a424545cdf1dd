// A loopback TCP endpoint no one listens on right now, for a test server.
#pragma once

#include <string>

#include <zmq.hpp>

namespace qos::manager {

/** Binds port 0, reads the port back and closes: "tcp://127.0.0.1:PORT". */
inline std::string freeLoopbackEndpoint() {
  zmq::context_t ctx;
  zmq::socket_t probe(ctx, zmq::socket_type::router);
  probe.set(zmq::sockopt::linger, 0);
  probe.bind("tcp://127.0.0.1:*");
  return probe.get(zmq::sockopt::last_endpoint);
}

}  // namespace qos::manager
