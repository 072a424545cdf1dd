// What one turn of the request loop produces: the replies to send and the
// flow events to publish, both held until the batch's changes are durable
// (commit_pipeline.h).  Shared by the handlers, the pipeline and the loop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "control/protocol/envelope.h"
#include "control/protocol/message_types.h"
#include "control/protocol/messages.h"
#include "manager/admission/admission.h"

namespace qos::manager {

/** Who sent a message, as the transport authenticated it. */
struct Peer {
  std::string name;                           ///< the key's [[peer]] name; "" without CURVE
  control::Role role = control::Role::Admin;  ///< every peer is Admin without CURVE
  std::string address;                        ///< the connection's remote address, if known
};

/** A reply, and what the pipeline must do with it. */
struct Outgoing {
  zmq::message_t identity;  ///< the ROUTER routing id of the peer
  control::Reply reply;
  /** Send at once: the reply tells nothing of this batch's changes. */
  bool immediate = false;
  /** Sent later by whoever took it over (a sync held by the appliance hub): not by the loop. */
  bool deferred = false;
  std::optional<uint64_t> undo_admission;  ///< flow to release if the commit fails
  std::optional<uint64_t> names_flow;      ///< the reply tells of this flow (retry, refresh)
  std::optional<uint64_t> released_flow;   ///< the delete to stage again if the commit fails
  /**
   * A grant reply, encoded into reply.body_json when the batch is delivered,
   * once it is known which appliances enforce the grant.
   */
  std::optional<control::GrantReply> grant_reply;
};

/** A change to the set of live grants: the feed of everything downstream of the store. */
struct FlowEvent {
  enum class Kind : uint8_t {
    Granted,   ///< a new grant
    Released,  ///< released by its client or an admin
    Expired,   ///< its lease lapsed
    Idle,      ///< released because no appliance saw a packet of it for idle_release
  };
  Kind kind = Kind::Granted;
  Grant grant;
};

/** "granted", "released", "expired", "idle". */
const char* flowEventName(FlowEvent::Kind kind);

/** The replies and events of one turn, published together once durable. */
struct Batch {
  std::vector<Outgoing> replies;
  std::vector<FlowEvent> events;

  bool empty() const { return replies.empty() && events.empty(); }
  void clear() {
    replies.clear();
    events.clear();
  }
};

}  // namespace qos::manager
