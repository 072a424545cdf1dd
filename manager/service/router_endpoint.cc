#include "manager/service/router_endpoint.h"

#include <vector>

namespace qos::manager {
namespace {

/** A frame's metadata property, or "" (zmq_msg_gets fails for properties a connection lacks). */
std::string metadata(zmq::message_t& frame, const char* property) {
  const char* value = zmq_msg_gets(frame.handle(), property);
  return value != nullptr ? std::string(value) : std::string();
}

}  // namespace

RouterEndpoint::RouterEndpoint(zmq::context_t& context)
    : socket_(context, zmq::socket_type::router) {}

void RouterEndpoint::setOptions() {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::maxmsgsize, kHardMaxFrameBytes);
  socket_.set(zmq::sockopt::sndhwm, kSendQueueMessages);
  socket_.set(zmq::sockopt::rcvhwm, kReceiveQueueMessages);
}

std::optional<Incoming> RouterEndpoint::receive() {
  // At most 4 frames are kept: any more is malformed already.
  std::vector<zmq::message_t> frames;
  size_t n_frames = 0;
  while (true) {
    zmq::message_t frame;
    const auto got =
        socket_.recv(frame, frames.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
    if (!got) {
      return std::nullopt;
    }
    ++n_frames;
    const bool more = frame.more();
    if (frames.size() < 4) {
      frames.push_back(std::move(frame));
    }
    if (!more) {
      break;
    }
  }
  Incoming in;
  in.n_frames = n_frames;
  if (frames.size() != 3 || frames[1].size() != 0) {
    in.framing = frames.size() >= 2 ? Incoming::Framing::Malformed : Incoming::Framing::Dropped;
    if (!frames.empty()) {
      in.identity = std::move(frames[0]);
    }
    return in;
  }
  in.identity = std::move(frames[0]);
  in.payload = std::move(frames[2]);
  in.address = metadata(in.payload, "Peer-Address");
  in.user_id = metadata(in.payload, "User-Id");
  return in;
}

Result<void> RouterEndpoint::send(const zmq::message_t& identity, std::string_view payload) {
  try {
    zmq::message_t id_copy(identity.data(), identity.size());
    socket_.send(id_copy, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    socket_.send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    socket_.send(zmq::buffer(payload), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    return makeError(ErrorCode::Unavailable, std::string("cannot send a reply: ") + e.what());
  }
  return {};
}

}  // namespace qos::manager
