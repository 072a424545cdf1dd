// MessageRegistry: what qosmgr does with each message type, registered in
// one place (RequestServer's constructor), and the checks every message
// passes before its handler runs: the type exists, the sender's role may
// send it (control/protocol/message_types.h), and its body reads as the
// type's described body (control/protocol/fields.h).
//
// A handler is registered with its body type; the registry decodes the body
// from the fast flat form when it can (decodeFlat()) and from the parsed
// tree otherwise, and answers a body that does not read with "bad_request"
// naming the field.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "control/protocol/fields.h"
#include "control/protocol/flat_request.h"
#include "control/protocol/message_types.h"
#include "manager/service/batch.h"

namespace qos::manager {

/** What a handler knows of the message besides its body. */
struct Call {
  const std::string& request_id;
  const Peer& peer;
  uint64_t now_ms = 0;
  Outgoing& out;  ///< its reply: id and identity are set, status Ok, body empty
  Batch& batch;   ///< the batch it is answered in (for flow events)
};

/** The body of a message that carries nothing. */
struct EmptyBody {
  template <typename Self, typename Fields>
  static void fields(Self&, Fields&) {}
};

/** Sets @p out's reply to an error. */
void setError(control::Reply& reply, std::string code, std::string message);

class MessageRegistry {
public:
  template <typename Body>
  using Handler = std::function<void(Body& body, Call& call)>;

  /** Registers @p handler for @p type; a type is registered once. */
  template <typename Body>
  void add(control::MessageType type, Handler<Body> handler) {
    Entry& entry = entries_[static_cast<size_t>(type)];
    entry.flat = [handler](const control::FlatRequest& message, Call& call) {
      std::optional<Body> body = control::decodeFlat<Body>(message);
      if (!body) {
        return false;
      }
      handler(*body, call);
      return true;
    };
    entry.tree = [handler](const nlohmann::json& json, Call& call) {
      Result<Body> body = control::decodeObject<Body>(json, control::Unknown::Reject, "body");
      if (!body) {
        setError(call.out.reply, "bad_request", "body." + body.error().message);
        return;
      }
      handler(*body, call);
    };
  }

  /**
   * The fast path: handles a message decoded by decodeFlatRequest() if its
   * type is known, the peer may send it and its body reads flat.
   * @return false: not handled, take the general path (which names any error).
   */
  bool dispatchFlat(control::MessageType type, const control::FlatRequest& message,
                    Call& call) const {
    const Entry& entry = entries_[static_cast<size_t>(type)];
    if (!entry.flat || !control::roleMaySend(call.peer.role, type)) {
      return false;
    }
    return entry.flat(message, call);
  }

  /** The general path: checks the role, decodes the body and handles it. */
  void dispatch(control::MessageType type, const nlohmann::json& body, Call& call) const;

private:
  struct Entry {
    std::function<bool(const control::FlatRequest&, Call&)> flat;
    std::function<void(const nlohmann::json&, Call&)> tree;
  };
  std::array<Entry, control::kMessageTypes.size()> entries_;
};

}  // namespace qos::manager
