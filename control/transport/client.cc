#include "control/transport/client.h"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

namespace qos::control {
namespace {

using Clock = std::chrono::steady_clock;

/**
 * 64 random bits as 16 hex digits.  std::random_device may throw when the
 * system has no entropy source; then the clock and pid have to do, since the
 * prefix only has to differ between clients, not be secret.
 */
std::string randomIdPrefix() {
  uint64_t bits = 0;
  try {
    std::random_device device;
    bits = (static_cast<uint64_t>(device()) << 32) ^ device();
  } catch (const std::exception&) {
    bits = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) ^
           (static_cast<uint64_t>(getpid()) << 40);
  }
  std::array<char, 17> hex{};
  std::snprintf(hex.data(), hex.size(), "%016llx", static_cast<unsigned long long>(bits));
  return std::string(hex.data(), 16);
}

/**
 * Polls @p socket for @p events until @p deadline.  A signal (EINTR) only
 * shortens one wait; the deadline stays.
 * @return true if the socket became ready, false at the deadline.
 */
bool pollUntil(zmq::socket_t& socket, short events, Clock::time_point deadline) {
  while (true) {
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      return false;
    }
    const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    zmq::pollitem_t item{socket.handle(), 0, events, 0};
    try {
      zmq::poll(&item, 1, remaining);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) {
        continue;
      }
      throw;
    }
    if ((item.revents & events) != 0) {
      return true;
    }
  }
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

RequestClient::RequestClient() : id_prefix_(randomIdPrefix()) {}

RequestClient::RequestClient(zmq::context_t& context)
    : context_(&context), id_prefix_(randomIdPrefix()) {}

RequestClient::~RequestClient() = default;

RequestClient::RequestClient(RequestClient&& other) noexcept { *this = std::move(other); }

RequestClient& RequestClient::operator=(RequestClient&& other) noexcept {
  if (this != &other) {
    socket_ = std::move(other.socket_);
    owned_context_ = std::move(other.owned_context_);
    context_ = std::exchange(other.context_, nullptr);
    endpoint_ = std::move(other.endpoint_);
    timeout_ms_ = std::exchange(other.timeout_ms_, 0);
    id_prefix_ = std::move(other.id_prefix_);
    next_seq_ = other.next_seq_;
  }
  return *this;
}

Result<void> RequestClient::connect(const std::string& endpoint, int timeout_ms) {
  if (timeout_ms <= 0) {
    return makeError(ErrorCode::Invalid,
                     "request timeout must be > 0 ms, got " + std::to_string(timeout_ms));
  }
  try {
    if (context_ == nullptr) {
      owned_context_ = std::make_unique<zmq::context_t>(1);
      context_ = owned_context_.get();
    }
    auto socket = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::immediate, true);
    socket->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxReplyBytes));
    socket->connect(endpoint);
    socket_ = std::move(socket);
  } catch (const zmq::error_t& e) {
    // zmq_connect() checks the endpoint and starts connecting in the
    // background: it fails on the endpoint's text or transport, which will
    // not change, or for want of a context (terminated, out of I/O threads).
    const bool bad_endpoint =
        e.num() == EINVAL || e.num() == EPROTONOSUPPORT || e.num() == ENOCOMPATPROTO;
    return makeError(bad_endpoint ? ErrorCode::Invalid : ErrorCode::Unavailable,
                     "cannot connect to " + endpoint + ": " + e.what());
  }
  endpoint_ = endpoint;
  timeout_ms_ = timeout_ms;
  return {};
}

template <typename Accept>
Result<Reply> RequestClient::exchange(const std::string& payload, Accept accept) {
  if (!socket_) {
    return makeError(ErrorCode::Invalid, "request client is not connected");
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  try {
    // With ZMQ_IMMEDIATE a DEALER has no pipe to write to until a connection
    // is up, and a blocking send would wait for one forever.
    if (!pollUntil(*socket_, ZMQ_POLLOUT, deadline)) {
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
    while (pollUntil(*socket_, ZMQ_POLLIN, deadline)) {
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

Result<Reply> RequestClient::call(std::string type, nlohmann::json body) {
  Request request;
  request.type = std::move(type);
  request.id = id_prefix_ + "-" + std::to_string(next_seq_++);
  request.body = std::move(body);
  const std::string payload = encodeRequest(request);
  if (payload.size() > kMaxMessageBytes) {
    return makeError(ErrorCode::Invalid, "request of " + std::to_string(payload.size()) +
                                             " bytes exceeds the limit of " +
                                             std::to_string(kMaxMessageBytes) + " bytes");
  }
  return exchange(payload, [&request](const Reply& reply) { return reply.id == request.id; });
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
