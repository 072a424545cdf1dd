// RouterEndpoint: qosmgr's one ZeroMQ ROUTER socket, and the framing of the
// messages on it.
//
//   peer DEALER  --[empty][request]-->  ROUTER sees [routing id][empty][request]
//   peer DEALER  <--[empty][reply]----  ROUTER sends [routing id][empty][reply]
//
// Each message comes with the name the ZAP handler gave its connection
// (User-Id; control/transport/zap_handler.h) and the address it came from.  A message
// whose framing is wrong is reported as such, with the routing id when one
// can be answered.
//
// Socket options: linger 0, no message larger than kHardMaxFrameBytes (libzmq
// drops the connection of a peer that sends one; one of up to that size is
// answered "too_large"), and per peer at most kReceiveQueueMessages queued
// in and kSendQueueMessages out: what one peer can make the manager hold is
// bounded (about 32 MiB in), whatever it sends and whether or not it reads
// its replies (past the send queue, ZeroMQ drops replies to that peer).
// A peer that sends faster than it is served waits in TCP, on its side.
//
// Thread safety: none; one thread (the request loop) owns it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "control/common/result.h"
#include "manager/service/batch.h"

namespace qos::manager {

/** One message off the ROUTER socket. */
struct Incoming {
  enum class Framing : uint8_t {
    Ok,         ///< [routing id][empty][payload]
    Malformed,  ///< something else, from a peer that can be answered
    Dropped,    ///< something else, from a peer that cannot
  };
  Framing framing = Framing::Ok;
  size_t n_frames = 0;
  zmq::message_t identity;
  zmq::message_t payload;
  std::string user_id;  ///< ZAP's User-Id for the connection (CURVE): the peer's name; "" without
  std::string address;  ///< the connection's remote address

  std::string_view payloadView() const {
    return {static_cast<const char*>(payload.data()), payload.size()};
  }
};

class RouterEndpoint {
public:
  /** Frames larger than this make libzmq drop the peer's connection. */
  static constexpr int64_t kHardMaxFrameBytes = int64_t{128} * 1024;
  static constexpr int kReceiveQueueMessages = 256;
  static constexpr int kSendQueueMessages = 1024;

  /** @p context must outlive the endpoint. */
  explicit RouterEndpoint(zmq::context_t& context);

  /**
   * Applies @p configure (security options) to the socket, then binds it to
   * @p endpoint.
   */
  template <typename Configure>
  Result<void> bind(const std::string& endpoint, Configure configure) {
    try {
      setOptions();
      configure(socket_);
      socket_.bind(endpoint);
    } catch (const zmq::error_t& e) {
      return makeError(ErrorCode::Unavailable, "cannot listen on " + endpoint + ": " + e.what());
    }
    return {};
  }

  /** Receives one message if one is waiting; nullopt when none is. */
  std::optional<Incoming> receive();

  /** Sends [identity][empty][payload]; a peer that went away makes ROUTER drop it. */
  Result<void> send(const zmq::message_t& identity, std::string_view payload);

  zmq::socket_t& socket() { return socket_; }

private:
  void setOptions();

  zmq::socket_t socket_;
};

}  // namespace qos::manager
