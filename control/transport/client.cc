#include "control/transport/client.h"

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "control/common/random_id.h"
#include "control/transport/curve_keys.h"

namespace qos::control {
namespace {

using Clock = std::chrono::steady_clock;

// What libzmq 4.3.4 reports on a CURVE client's monitor (found by experiment,
// a DEALER against a ROUTER on the loopback, and read in its source):
//
//   ZAP says 200:        HANDSHAKE_SUCCEEDED, then the DEALER is writable.
//   ZAP says 400 or 500: HANDSHAKE_FAILED_AUTH with the status (400, 500) a
//                        few ms after connecting, then DISCONNECTED.  The
//                        server sent an ERROR command; libzmq treats it as
//                        a protocol error and never reconnects.
//   ZAP says 300:        nothing: the server sends no ERROR and the client
//                        waits in the handshake (ZMQ_HANDSHAKE_IVL, 30 s).
//   wrong server key:    the server cannot open our HELLO and closes the
//                        connection (on its side HANDSHAKE_FAILED_PROTOCOL,
//                        ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC); we see only
//                        HANDSHAKE_FAILED_NO_DETAIL with errno EPIPE, then
//                        DISCONNECTED, and a reconnect every 100-200 ms
//                        (ZMQ_RECONNECT_IVL plus jitter) that fails alike.
//                        A listener that is not ZeroMQ at all and closes
//                        the connection looks the same.
//   server without CURVE: HANDSHAKE_FAILED_PROTOCOL with
//                        ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH; never
//                        reconnects.
//   no key, CURVE server: the same MECHANISM_MISMATCH if our side reads the
//                        server's greeting before the server closes the
//                        connection; if the close comes first, NO_DETAIL
//                        and a reconnect that may go either way.
//   nobody listening:    no handshake event at all (CLOSED, CONNECT_RETRIED).
//   CURVE server without a ZAP handler: HANDSHAKE_SUCCEEDED for any key.
//
// So AUTH and PROTOCOL are final, and NO_DETAIL is taken as a wrong server
// key (without CURVE: as a server that requires it) once it happens twice
// with no success between: one alone may be a server that went away in the
// middle of a handshake.
constexpr int kHandshakeEvents = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
constexpr int kSilentFailuresToGiveUp = 2;
/** A version 1 monitor event's first frame: uint16_t event, uint32_t value. */
constexpr size_t kEventFrameBytes = 6;
constexpr int kZapStatusTemporary = 300;
constexpr int kZapStatusInternal = 500;

/** A monitor endpoint no other client in this process uses. */
std::string monitorEndpoint(const std::string& id_prefix) {
  static std::atomic<uint64_t> next_monitor{0};
  return "inproc://qos-request-client-monitor-" + id_prefix + "-" +
         std::to_string(next_monitor.fetch_add(1));
}

/**
 * Closes a DEALER and its monitor's PAIR.  The monitor is stopped first:
 * libzmq sends its events with a blocking send, so with the PAIR gone and
 * the monitor still on, libzmq's I/O thread would wait forever at the next
 * event (libzmq issue 3575).
 */
void closeSockets(std::unique_ptr<zmq::socket_t>& socket,
                  std::unique_ptr<zmq::socket_t>& monitor) noexcept {
  if (monitor && socket) {
    zmq_socket_monitor(socket->handle(), nullptr, 0);
  }
  monitor.reset();
  socket.reset();
}

/** Receives every frame of one message without waiting; empty if none was there. */
std::vector<zmq::message_t> receiveFrames(zmq::socket_t& socket) {
  std::vector<zmq::message_t> frames;
  while (true) {
    zmq::message_t frame;
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) {
      break;
    }
    const bool more = frame.more();
    frames.push_back(std::move(frame));
    if (!more) {
      break;
    }
  }
  return frames;
}

}  // namespace

RequestClient::RequestClient() : id_prefix_(randomHexId()) {}

RequestClient::RequestClient(zmq::context_t& context)
    : context_(&context), id_prefix_(randomHexId()) {}

RequestClient::~RequestClient() { closeSocket(); }

RequestClient::RequestClient(RequestClient&& other) noexcept { *this = std::move(other); }

RequestClient& RequestClient::operator=(RequestClient&& other) noexcept {
  if (this != &other) {
    closeSocket();
    socket_ = std::move(other.socket_);
    monitor_ = std::move(other.monitor_);
    curve_ = std::move(other.curve_);
    silent_handshake_failures_ = std::exchange(other.silent_handshake_failures_, 0);
    reopen_ = std::exchange(other.reopen_, false);
    owned_context_ = std::move(other.owned_context_);
    context_ = std::exchange(other.context_, nullptr);
    endpoint_ = std::move(other.endpoint_);
    timeout_ms_ = std::exchange(other.timeout_ms_, 0);
    id_prefix_ = std::move(other.id_prefix_);
    next_seq_ = other.next_seq_;
  }
  return *this;
}

Result<void> RequestClient::connect(const std::string& endpoint, int timeout_ms,
                                    const CurveClientKeys* curve) {
  if (timeout_ms <= 0) {
    return makeError(ErrorCode::Invalid,
                     "request timeout must be > 0 ms, got " + std::to_string(timeout_ms));
  }
  if (curve != nullptr) {
    const std::array<std::pair<const char*, const std::string*>, 3> keys{{
        {"this client's CURVE public key", &curve->public_z85},
        {"this client's CURVE secret key", &curve->secret_z85},
        {"the server's CURVE public key", &curve->server_public_z85},
    }};
    for (const auto& [what, key] : keys) {
      if (const auto decoded = decodeZ85Key(*key); !decoded) {
        return makeError(ErrorCode::Invalid, std::string(what) + ": " + decoded.error().message);
      }
    }
    const Result<std::string> derived = deriveCurvePublicKey(curve->secret_z85);
    if (!derived) {
      return derived.error();
    }
    if (*derived != curve->public_z85) {
      return makeError(ErrorCode::Invalid,
                       "this client's CURVE public key is not the one of its secret key");
    }
  }
  if (Result<void> opened = openSocket(endpoint, curve); !opened) {
    return opened;
  }
  endpoint_ = endpoint;
  timeout_ms_ = timeout_ms;
  curve_.reset();
  if (curve != nullptr) {
    curve_ = *curve;
  }
  return {};
}

Result<void> RequestClient::openSocket(const std::string& endpoint, const CurveClientKeys* curve) {
  std::unique_ptr<zmq::socket_t> socket;
  std::unique_ptr<zmq::socket_t> monitor;
  try {
    if (context_ == nullptr) {
      owned_context_ = std::make_unique<zmq::context_t>(1);
      context_ = owned_context_.get();
    }
    socket = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::immediate, true);
    socket->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxReplyBytes));
    if (curve != nullptr) {
      socket->set(zmq::sockopt::curve_serverkey, curve->server_public_z85);
      socket->set(zmq::sockopt::curve_publickey, curve->public_z85);
      socket->set(zmq::sockopt::curve_secretkey, curve->secret_z85);
    }
    {
      // The monitor is on before the DEALER connects, so the first
      // handshake is seen too: after a refusal libzmq does not try again.
      // Without CURVE it still tells a server that requires it at once.
      const std::string monitor_endpoint = monitorEndpoint(id_prefix_);
      if (zmq_socket_monitor(socket->handle(), monitor_endpoint.c_str(), kHandshakeEvents) != 0) {
        const int err = zmq_errno();
        closeSockets(socket, monitor);
        return makeError("cannot watch the handshakes of the socket for " + endpoint + ": " +
                         zmq_strerror(err));
      }
      monitor = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::pair);
      monitor->set(zmq::sockopt::linger, 0);
      // No limit on the events queued for us between calls: at a limit the
      // monitor's blocking send would stall libzmq's I/O thread until the
      // next call.  What queues up is small: one event per handshake, and
      // only a handshake failing again and again (a wrong server key) makes
      // more than a few, about 7 a second until a call reads them and gives
      // up the socket.
      monitor->set(zmq::sockopt::rcvhwm, 0);
      monitor->connect(monitor_endpoint);
    }
    socket->connect(endpoint);
  } catch (const zmq::error_t& e) {
    closeSockets(socket, monitor);
    // zmq_connect() checks the endpoint and starts connecting in the
    // background: it fails on the endpoint's text or transport, which will
    // not change, or for want of a context (terminated, out of I/O threads).
    const bool bad_endpoint =
        e.num() == EINVAL || e.num() == EPROTONOSUPPORT || e.num() == ENOCOMPATPROTO;
    return makeError(bad_endpoint ? ErrorCode::Invalid : ErrorCode::Unavailable,
                     "cannot connect to " + endpoint + ": " + e.what());
  }
  closeSocket();
  socket_ = std::move(socket);
  monitor_ = std::move(monitor);
  silent_handshake_failures_ = 0;
  reopen_ = false;
  return {};
}

void RequestClient::closeSocket() noexcept { closeSockets(socket_, monitor_); }

template <typename Accept>
Result<Reply> RequestClient::exchange(const std::string& payload, Accept accept) {
  if (reopen_) {
    if (Result<void> opened = openSocket(endpoint_, curve_ ? &*curve_ : nullptr); !opened) {
      return opened.error();
    }
  }
  if (!socket_) {
    return makeError(ErrorCode::Invalid, "request client is not connected");
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  try {
    // With ZMQ_IMMEDIATE a DEALER has no pipe to write to until a connection
    // is up (with CURVE: until its handshake succeeded), and a blocking send
    // would wait for one forever.
    Result<bool> writable = waitFor(ZMQ_POLLOUT, deadline);
    if (!writable) {
      return writable.error();
    }
    if (!*writable) {
      return noReplyError("the request could not be sent: no connection");
    }
    // ZeroMQ accepts or refuses a multipart message as a whole on its first
    // frame, so once the delimiter is in, the payload follows.
    if (!socket_->send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return noReplyError("the request could not be sent: send queue full");
    }
    if (!socket_->send(zmq::buffer(payload), zmq::send_flags::dontwait)) {
      return makeError(ErrorCode::Unavailable,
                       "sending to " + endpoint_ + " failed after the first frame");
    }
    while (true) {
      // A handshake refused while we wait means the connection that carried
      // the request is gone, and with it the reply.
      Result<bool> readable = waitFor(ZMQ_POLLIN, deadline);
      if (!readable) {
        return readable.error();
      }
      if (!*readable) {
        break;
      }
      std::vector<zmq::message_t> frames = receiveFrames(*socket_);
      if (frames.size() != 2 || frames[0].size() != 0) {
        continue;  // Not [empty][reply]: not from a ROUTER speaking our protocol.
      }
      Result<Reply> reply = decodeReply(frames[1].to_string_view());
      if (!reply) {
        return makeError(ErrorCode::Internal,
                         "undecodable reply from " + endpoint_ + ": " + reply.error().message);
      }
      if (accept(*reply)) {
        return reply;
      }
      // A late reply to an earlier call that timed out: drop it and keep waiting.
    }
  } catch (const zmq::error_t& e) {
    return makeError(ErrorCode::Unavailable, "talking to " + endpoint_ + ": " + e.what());
  }
  return noReplyError("");
}

Result<bool> RequestClient::waitFor(short events, TimePoint deadline) {
  // Polls at least once, so that a deadline of now asks without waiting.
  while (true) {
    const Clock::time_point now = Clock::now();
    const auto remaining = now >= deadline
                               ? std::chrono::milliseconds(0)
                               : std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    std::array<zmq::pollitem_t, 2> items{{
        {socket_->handle(), 0, events, 0},
        {monitor_ ? monitor_->handle() : nullptr, 0, ZMQ_POLLIN, 0},
    }};
    const size_t n_items = monitor_ ? 2 : 1;
    try {
      zmq::poll(items.data(), n_items, remaining);
    } catch (const zmq::error_t& e) {
      // A signal (EINTR) only shortens one wait; the deadline stays.
      if (e.num() == EINTR) {
        continue;
      }
      throw;
    }
    // Ready wins over stale news: a writable DEALER has a connection whose
    // handshake succeeded, whatever failed before it.
    if ((items[0].revents & events) != 0) {
      return true;
    }
    if (n_items == 2 && (items[1].revents & ZMQ_POLLIN) != 0) {
      if (std::optional<Error> refused = readHandshakeEvents()) {
        closeSocket();
        reopen_ = true;
        return *std::move(refused);
      }
    }
    if (Clock::now() >= deadline) {
      return false;
    }
  }
}

std::optional<Error> RequestClient::readHandshakeEvents() {
  std::optional<Error> refused;
  while (true) {
    zmq::message_t header;
    if (!monitor_->recv(header, zmq::recv_flags::dontwait)) {
      break;
    }
    // The second frame (the peer's address) is sent with the first.
    if (header.more()) {
      zmq::message_t address;
      if (!monitor_->recv(address, zmq::recv_flags::dontwait)) {
        break;
      }
    }
    if (header.size() != kEventFrameBytes) {
      continue;
    }
    uint16_t event = 0;
    uint32_t value = 0;
    std::memcpy(&event, header.data(), sizeof(event));
    std::memcpy(&value, static_cast<const char*>(header.data()) + sizeof(event), sizeof(value));
    switch (event) {
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        silent_handshake_failures_ = 0;
        refused.reset();
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        if (value == kZapStatusInternal) {
          refused =
              makeError(ErrorCode::Internal, "the server at " + endpoint_ +
                                                 " could not check this key (ZAP status 500)");
        } else if (value == kZapStatusTemporary) {
          refused =
              makeError(ErrorCode::Unavailable,
                        "the server at " + endpoint_ + " cannot check keys now (ZAP status 300)");
        } else {
          refused = makeError(ErrorCode::Unauthorized, "the server at " + endpoint_ +
                                                           " refused this key (ZAP status " +
                                                           std::to_string(value) + ")");
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
          refused = makeError(
              ErrorCode::Unauthorized,
              curve_ ? "cannot authenticate the server at " + endpoint_ + ": it does not use CURVE"
                     : "the server at " + endpoint_ +
                           " requires CURVE: give this client its key and the "
                           "server's public key");
        } else {
          std::array<char, 16> code{};
          std::snprintf(code.data(), code.size(), "0x%08x", static_cast<unsigned>(value));
          refused =
              makeError(ErrorCode::Unauthorized,
                        "cannot authenticate the server at " + endpoint_ +
                            ": wrong server public key? (ZMTP protocol error " + code.data() + ")");
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        if (++silent_handshake_failures_ >= kSilentFailuresToGiveUp) {
          const std::string closed =
              " (it closed the handshake " + std::to_string(silent_handshake_failures_) + " times)";
          refused = makeError(
              ErrorCode::Unauthorized,
              curve_ ? "cannot authenticate the server at " + endpoint_ +
                           ": wrong server public key?" + closed
                     : "the server at " + endpoint_ + " requires CURVE, or is not a ZeroMQ server" +
                           closed + ": give this client its key and the server's public key");
        }
        break;
      default:
        break;
    }
  }
  return refused;
}

Result<Reply> RequestClient::call(std::string type, const nlohmann::json& body) {
  return callEncoded(std::move(type),
                     body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Result<std::string> RequestClient::encodeNew(std::string type, std::string body_json,
                                             std::string& id) {
  Request request;
  request.type = std::move(type);
  request.id = id_prefix_ + "-" + std::to_string(next_seq_++);
  request.body_json = std::move(body_json);
  std::string payload = encodeRequest(request);
  if (payload.size() > kMaxMessageBytes) {
    return makeError(ErrorCode::Invalid, "request of " + std::to_string(payload.size()) +
                                             " bytes exceeds the limit of " +
                                             std::to_string(kMaxMessageBytes) + " bytes");
  }
  id = std::move(request.id);
  return payload;
}

Result<Reply> RequestClient::callEncoded(std::string type, std::string body_json) {
  std::string id;
  Result<std::string> payload = encodeNew(std::move(type), std::move(body_json), id);
  if (!payload) {
    return payload.error();
  }
  return exchange(*payload, [&id](const Reply& reply) { return reply.id == id; });
}

Result<std::string> RequestClient::send(std::string type, std::string body_json) {
  if (reopen_ || !socket_) {
    if (endpoint_.empty()) {
      return makeError(ErrorCode::Invalid, "request client is not connected");
    }
    if (Result<void> opened = openSocket(endpoint_, curve_ ? &*curve_ : nullptr); !opened) {
      return opened.error();
    }
  }
  std::string id;
  Result<std::string> payload = encodeNew(std::move(type), std::move(body_json), id);
  if (!payload) {
    return payload.error();
  }
  try {
    Result<bool> writable = waitFor(ZMQ_POLLOUT, Clock::now());
    if (!writable) {
      return writable.error();
    }
    if (!*writable) {
      return makeError(ErrorCode::Unavailable, "no connection to " + endpoint_ + " yet");
    }
    if (!socket_->send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
        !socket_->send(zmq::buffer(*payload), zmq::send_flags::dontwait)) {
      return makeError(ErrorCode::Unavailable, "sending to " + endpoint_ + " failed");
    }
  } catch (const zmq::error_t& e) {
    return makeError(ErrorCode::Unavailable, "talking to " + endpoint_ + ": " + e.what());
  }
  return id;
}

Result<std::optional<Reply>> RequestClient::receive(const std::string& id, int wait_ms) {
  if (!socket_ || reopen_) {
    return std::optional<Reply>();
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
  try {
    while (true) {
      Result<bool> readable = waitFor(ZMQ_POLLIN, deadline);
      if (!readable) {
        return readable.error();
      }
      if (!*readable) {
        return std::optional<Reply>();
      }
      std::vector<zmq::message_t> frames = receiveFrames(*socket_);
      if (frames.size() != 2 || frames[0].size() != 0) {
        continue;
      }
      Result<Reply> reply = decodeReply(frames[1].to_string_view());
      if (!reply) {
        return makeError(ErrorCode::Internal,
                         "undecodable reply from " + endpoint_ + ": " + reply.error().message);
      }
      if (reply->id == id) {
        return std::optional<Reply>(std::move(*reply));
      }
    }
  } catch (const zmq::error_t& e) {
    return makeError(ErrorCode::Unavailable, "talking to " + endpoint_ + ": " + e.what());
  }
}

Result<Reply> RequestClient::callRaw(const std::string& payload) {
  return exchange(payload, [this](const Reply& reply) { return !isOwnEarlierId(reply.id); });
}

bool RequestClient::isOwnEarlierId(const std::string& id) const {
  // Every id this client generated starts with its prefix, and callRaw() makes
  // none, so any such id belongs to an earlier call().
  return id.size() > id_prefix_.size() && id.compare(0, id_prefix_.size(), id_prefix_) == 0 &&
         id[id_prefix_.size()] == '-';
}

Error RequestClient::noReplyError(std::string_view detail) const {
  std::string message =
      "no reply from " + endpoint_ + " within " + std::to_string(timeout_ms_) + " ms";
  if (!detail.empty()) {
    message += " (";
    message += detail;
    message += ")";
  }
  return makeError(ErrorCode::Unavailable, std::move(message));
}

}  // namespace qos::control
