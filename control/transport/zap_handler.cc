#include "control/transport/zap_handler.h"

#include <array>
#include <cerrno>
#include <chrono>
#include <exception>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/eventfd.h>
#include <unistd.h>

#include "control/transport/curve_keys.h"

namespace qos::control {
namespace {

// A ZAP request as the ROUTER receives it (RFC 27):
//   [routing id][empty] [version][request id][domain][address][identity][mechanism][credentials...]
// Indexes below count from [version].
constexpr size_t kVersionIndex = 0;
constexpr size_t kRequestIdIndex = 1;
constexpr size_t kDomainIndex = 2;
constexpr size_t kMechanismIndex = 5;
constexpr size_t kCredentialsIndex = 6;
/** Frames every request has before the mechanism's credentials. */
constexpr size_t kRequestFrames = 6;
/** More frames than any mechanism sends; further frames are read and dropped. */
constexpr size_t kMaxFrames = 16;
/** The only version of RFC 27, and the one a reply must carry. */
constexpr std::string_view kZapVersion = "1.0";
/** Longest mechanism name quoted back in a status text. */
constexpr size_t kMaxQuotedChars = 20;

constexpr std::string_view kStatusOk = "200";
constexpr std::string_view kStatusRefused = "400";
constexpr std::string_view kStatusMalformed = "500";

std::string_view view(const zmq::message_t& frame) { return frame.to_string_view(); }

/** @p text with anything but printable ASCII replaced, and cut short: it came from a peer. */
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, kMaxQuotedChars)) {
    out += (c >= ' ' && c <= '~') ? c : '?';
  }
  if (text.size() > kMaxQuotedChars) {
    out += "...";
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<ZapHandler>> ZapHandler::start(zmq::context_t& context,
                                                      std::map<std::string, std::string> keys,
                                                      std::string domain) {
  for (const auto& [key, peer] : keys) {
    if (const auto decoded = decodeZ85Key(key); !decoded) {
      return makeError(ErrorCode::Invalid,
                       "ZAP handler: the key of peer \"" + peer +
                           "\" is not a CURVE public key: " + decoded.error().message);
    }
  }
  const std::string endpoint(kEndpoint);
  zmq::socket_t socket;
  try {
    socket = zmq::socket_t(context, zmq::socket_type::router);
    socket.set(zmq::sockopt::linger, 0);
    socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    std::string message = "cannot bind the ZAP handler on " + endpoint + ": " + e.what();
    if (e.num() == EADDRINUSE) {
      message += " (another ZAP handler is already bound in this ZeroMQ context)";
    }
    return makeError(ErrorCode::Internal, std::move(message));
  }
  const int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    return makeError("ZAP handler: eventfd: " +
                     std::error_code(errno, std::generic_category()).message());
  }
  try {
    // Not make_unique: the constructor is private.
    return std::unique_ptr<ZapHandler>(
        new ZapHandler(std::move(socket), wake_fd, std::move(keys), std::move(domain)));
  } catch (const std::system_error& e) {
    ::close(wake_fd);
    return makeError(std::string("ZAP handler: cannot start its thread: ") + e.what());
  }
}

ZapHandler::ZapHandler(zmq::socket_t socket, int wake_fd, std::map<std::string, std::string> keys,
                       std::string domain)
    : socket_(std::move(socket)),
      wake_fd_(wake_fd),
      domain_(std::move(domain)),
      keys_(std::move(keys)),
      // The socket moves to this thread; thread creation is the barrier
      // ZeroMQ asks for when a socket changes threads.
      thread_([this] { run(); }) {}

ZapHandler::~ZapHandler() {
  stop_.store(true);
  const uint64_t one = 1;
  // eventfd only fails to count up when the counter would overflow; stop_ is
  // set either way and the thread sees the descriptor readable.
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof(one));
  thread_.join();
  ::close(wake_fd_);
  // socket_ closes after this body, once the thread that used it is gone.
}

void ZapHandler::setKeys(std::map<std::string, std::string> keys) {
  const std::lock_guard lock(mutex_);
  keys_.swap(keys);
}

ZapHandler::Counts ZapHandler::counts() const { return Counts{accepted_.load(), refused_.load()}; }

std::string ZapHandler::lastRefusedKey() const {
  const std::lock_guard lock(mutex_);
  return last_refused_key_;
}

void ZapHandler::run() {
  try {
    while (!stop_.load()) {
      std::array<zmq::pollitem_t, 2> items{{
          {socket_.handle(), 0, ZMQ_POLLIN, 0},
          {nullptr, wake_fd_, ZMQ_POLLIN, 0},
      }};
      try {
        zmq::poll(items.data(), items.size(), std::chrono::milliseconds(-1));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) {
          continue;
        }
        throw;
      }
      if ((items[1].revents & ZMQ_POLLIN) != 0) {
        break;
      }
      if ((items[0].revents & ZMQ_POLLIN) != 0) {
        serveOne();
      }
    }
  } catch (const std::exception&) {
    // zmq::error_t ETERM (the caller shut the context down) or std::bad_alloc.
    // The thread ends: handshakes get no answer and fail, so nobody is let in.
  }
}

void ZapHandler::serveOne() {
  std::vector<zmq::message_t> frames;
  bool more = true;
  while (more) {
    zmq::message_t frame;
    if (!socket_.recv(frame, zmq::recv_flags::dontwait)) {
      break;
    }
    more = frame.more();
    if (frames.size() < kMaxFrames) {
      frames.push_back(std::move(frame));
    }
  }
  // [routing id][empty][version][request id] at least, or there is nobody
  // and nothing to answer to: drop it.
  if (frames.size() < 4 || frames[1].size() != 0) {
    refused_.fetch_add(1);
    return;
  }
  const Answer answer = decide(std::span<const zmq::message_t>(frames).subspan(2));
  if (answer.status_code == kStatusOk) {
    accepted_.fetch_add(1);
  } else {
    refused_.fetch_add(1);
  }
  // [routing id][empty][version][request id][status code][status text][user id][metadata]
  const zmq::message_t& routing_id = frames[0];
  const zmq::message_t& request_id = frames[2 + kRequestIdIndex];
  const std::array<zmq::const_buffer, 8> reply{
      zmq::buffer(routing_id.data(), routing_id.size()),
      zmq::const_buffer(),
      zmq::buffer(kZapVersion),
      zmq::buffer(request_id.data(), request_id.size()),
      zmq::buffer(answer.status_code),
      zmq::buffer(answer.status_text),
      zmq::buffer(answer.user_id),
      zmq::const_buffer(),  // metadata: none
  };
  // A ROUTER drops what it cannot deliver (the requester is gone, or its
  // queue is full) instead of blocking, and dontwait makes sure of it: no
  // send here can stall the loop.
  for (size_t i = 0; i < reply.size(); ++i) {
    const zmq::send_flags flags = i + 1 < reply.size()
                                      ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                      : zmq::send_flags::dontwait;
    if (!socket_.send(reply[i], flags)) {
      return;
    }
  }
}

ZapHandler::Answer ZapHandler::decide(std::span<const zmq::message_t> request) {
  if (request.size() < kRequestFrames) {
    return {kStatusMalformed,
            "malformed request: " + std::to_string(request.size()) + " frames, at least 6 needed",
            ""};
  }
  if (view(request[kVersionIndex]) != kZapVersion) {
    return {kStatusMalformed, "unsupported ZAP version, only 1.0 is known", ""};
  }
  const std::string_view mechanism = view(request[kMechanismIndex]);
  if (mechanism != "CURVE") {
    return {kStatusRefused, "mechanism " + printable(mechanism) + " is not allowed", ""};
  }
  if (request.size() != kRequestFrames + 1 || request[kCredentialsIndex].size() != kCurveKeyBytes) {
    return {kStatusMalformed, "malformed CURVE credentials", ""};
  }
  const std::string key = encodeZ85Key(std::span<const uint8_t, kCurveKeyBytes>(
      static_cast<const uint8_t*>(request[kCredentialsIndex].data()), kCurveKeyBytes));
  const std::lock_guard lock(mutex_);
  if (!domain_.empty() && view(request[kDomainIndex]) != domain_) {
    last_refused_key_ = key;
    return {kStatusRefused, "domain not allowed", ""};
  }
  const auto known = keys_.find(key);
  if (known == keys_.end()) {
    last_refused_key_ = key;
    return {kStatusRefused, "unknown key", ""};
  }
  return {kStatusOk, "OK", known->second};
}

}  // namespace qos::control
