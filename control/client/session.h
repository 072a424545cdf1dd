// libqosclient's C++ API: a host application's link to the services
// manager, directly (with the host's CURVE key) or through the local
// qos-agent, with the same code either way.
//
//   qos::client::SessionOptions options;
//   options.endpoint = "tcp://qosmgr.example:7700";
//   options.curve = keys;                       // or none, for ipc:// to qos-agent
//   auto session = qos::client::Session::open(options);
//   control::AdmissionRequest request;          // app, 5-tuple, bidir, lease
//   auto outcome = (*session)->request(request);
//   if (auto* held = std::get_if<std::shared_ptr<HeldGrant>>(&*outcome)) {
//     (*held)->markSocket(fd);                  // the granted DSCP, ECN kept
//     ...                                       // the lease is refreshed meanwhile
//     (*held)->release();                       // or let the last copy go
//   }
//
// A session runs one thread, which alone uses its ZeroMQ socket: it sends
// the application's requests and releases and refreshes every held grant
// when a third of its lease has passed (grant_keeper.h).  A grant the
// manager no longer holds (an admin released it; its lease ran out while the
// manager could not be reached) turns Lost, and the on_lost callback, if
// any, is called once, on the session's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "control/client/grant_keeper.h"
#include "control/client/socket_marking.h"
#include "control/common/result.h"
#include "control/protocol/messages.h"
#include "control/transport/client.h"

namespace qos::client {

struct SessionOptions {
  std::string endpoint;                           ///< the manager's, or qos-agent's
  std::optional<control::CurveClientKeys> curve;  ///< none: the NULL mechanism
  int timeout_ms = 3000;                          ///< for each request to the manager
  zmq::context_t* context = nullptr;              ///< for inproc:// (tests); null: its own
  std::function<uint64_t()> steady_ms;            ///< lease timing; null: steady_clock
  std::function<uint64_t()> wall_ms;              ///< epoch ms; null: system_clock
};

class SessionCore;

/**
 * A grant the session holds: kept alive until released, lost, or the last
 * copy goes.  Use one from one thread at a time.
 */
class HeldGrant {
public:
  HeldGrant(std::shared_ptr<SessionCore> core, control::GrantReply reply);
  /** Releases the grant at the manager if it is still held (errors ignored). */
  ~HeldGrant();
  HeldGrant(const HeldGrant&) = delete;
  HeldGrant& operator=(const HeldGrant&) = delete;

  /** The grant as the manager gave it: DSCPs, class, rate, profile, flow id, path. */
  const control::Grant& grant() const { return reply_.grant; }
  /** The appliances that enforced it when the reply came, and those that had not yet. */
  const control::Enforcement& enforcement() const { return reply_.enforcement; }
  uint64_t flowId() const { return reply_.grant.flow_id; }

  GrantState state() const;
  /** Why a lost grant was lost; "" while held. */
  std::string lostReason() const;

  /**
   * Marks @p fd's packets with the grant's DSCP (the forward one; a
   * bidirectional grant's other host uses reverse_dscp), ECN bits kept, and
   * paces a TCP socket at the grant's rate (SO_MAX_PACING_RATE).  Release
   * puts the socket back as it was.
   */
  Result<void> markSocket(int fd);

  /**
   * Releases the grant at the manager and puts the marked sockets back.
   * @return nothing, or the Error of the release (the grant is given up
   *         here anyway: it will lapse with its lease if the manager did not
   *         hear of it)
   */
  Result<void> release();

private:
  std::shared_ptr<SessionCore> core_;
  control::GrantReply reply_;
  std::vector<SocketMark> marks_;
  bool released_ = false;
};

using LostCallback = std::function<void(uint64_t flow_id, const std::string& why)>;
/** A request's answer: a grant held by the session, or the manager's denial. */
using Outcome = std::variant<std::shared_ptr<HeldGrant>, control::Denial>;

class Session {
public:
  /**
   * Opens a session to @p options.endpoint; nothing is sent until the first
   * request.  @return the session, or an Error (ErrorCode::Invalid: an
   *         endpoint or key ZeroMQ does not take)
   */
  static Result<std::unique_ptr<Session>> open(SessionOptions options);
  /** Releases every grant still held, then stops the session's thread. */
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /**
   * Asks the manager to admit @p request (request_id is set if empty, so a
   * retry after a lost reply gets the same grant).  @return the grant or
   * the denial, or an Error: unreachable (ErrorCode::Unavailable), refused
   * key or role (ErrorCode::Unauthorized), a bad request (ErrorCode::Invalid)
   */
  Result<Outcome> request(control::AdmissionRequest request, LostCallback on_lost = {});

  /** Grants held now (not lost, not released). */
  size_t held() const;

  /** Has the session's thread look at the clock now (tests that move it). */
  void wake();

private:
  explicit Session(std::shared_ptr<SessionCore> core);
  std::shared_ptr<SessionCore> core_;
};

}  // namespace qos::client
