// RequestClient: one request, one reply, over a ZeroMQ DEALER socket, with a
// deadline that always holds.
//
//   client DEALER  --[empty][request]-->  server ROUTER sees [identity][empty][request]
//   client DEALER  <--[empty][reply]----  server ROUTER sends [identity][empty][reply]
//
// The empty delimiter frame makes the exchange look like REQ/REP to the
// server, but unlike REQ the DEALER has no lock-step state machine: after a
// timed-out call the next call can be sent at once.  A reply that arrives
// late for an earlier call is recognized by its id and dropped.
//
// Socket options: ZMQ_LINGER 0 (closing never waits for unsent requests),
// ZMQ_IMMEDIATE 1 (a request is never queued for a peer that is not connected,
// so it cannot be delivered long after the caller gave up) and
// ZMQ_MAXMSGSIZE kMaxReplyBytes (a peer cannot make us buffer a huge message).
//
// CURVE (RFC 26), when connect() is given keys: the DEALER proves who it is
// with its key pair and checks that the server holds the secret half of
// server_public_z85.  With ZMQ_IMMEDIATE nothing is sent before that
// handshake succeeds, so a refused handshake would look like a server that
// does not answer.  To tell them apart, a socket monitor reports the
// DEALER's handshakes to a PAIR socket, which each call polls beside the
// DEALER:
//
//   server's ZAP handler says 400          -> Unauthorized, at once
//   server cannot decrypt our HELLO        -> Unauthorized, after the 2nd try (~0.1-0.2 s)
//   server does not use CURVE              -> Unauthorized, at once
//   no server / no handshake by the deadline -> Unavailable "no reply ... within N ms"
//
// After a refused handshake libzmq gives up on the endpoint (or, for a
// wrong server key, retries forever), so the client closes the socket and
// the next call starts over with a fresh one: keys fixed on either side
// take effect without a new connect().
//
// Thread safety: none, as for the ZeroMQ socket inside.  Use one client per
// thread.  No exception escapes: zmq::error_t is caught at each call.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "control/common/result.h"
#include "control/protocol/envelope.h"

namespace qos::control {

/** What a client needs to speak CURVE to a server; each key is 40 characters of Z85. */
struct CurveClientKeys {
  std::string public_z85;         ///< this client's public key, known to the server's ZAP handler
  std::string secret_z85;         ///< this client's secret key
  std::string server_public_z85;  ///< the key the server must prove it holds the secret of
};

class RequestClient {
public:
  /** A client with its own ZeroMQ context (created by connect()). */
  RequestClient();
  /** A client on a shared context (needed for inproc:// endpoints); @p context must outlive it. */
  explicit RequestClient(zmq::context_t& context);
  ~RequestClient();

  RequestClient(const RequestClient&) = delete;
  RequestClient& operator=(const RequestClient&) = delete;
  RequestClient(RequestClient&&) noexcept;
  RequestClient& operator=(RequestClient&&) noexcept;

  /**
   * Creates the socket and connects it to @p endpoint ("tcp://127.0.0.1:7700",
   * "ipc://...", "inproc://..."); ZeroMQ connects in the background, so a
   * server that is not up yet is not an error here.  May be called again to
   * move to another endpoint (replies still pending on the old one are lost).
   * @param timeout_ms how long each call waits for its reply, in milliseconds (> 0)
   * @param curve      keys to speak CURVE with (copied); null for no security,
   *                   as before (the NULL mechanism)
   * @return nothing, or an Error: @p timeout_ms <= 0, an endpoint ZeroMQ
   *         does not take, or a key that is not a key or a public key that is
   *         not the secret key's (ErrorCode::Invalid); a ZeroMQ context that
   *         cannot take a socket now (ErrorCode::Unavailable).
   */
  Result<void> connect(const std::string& endpoint, int timeout_ms,
                       const CurveClientKeys* curve = nullptr);

  /**
   * Sends {"v":1,"type":@p type,"id":<fresh id>,"body":@p body} and waits at most
   * timeout_ms for the reply with that id.  Denied and error replies are
   * replies: they come back as a value, with their status.
   * @return the reply, or an Error: not connected or the request is larger
   *         than kMaxMessageBytes (ErrorCode::Invalid); "no reply from ENDPOINT
   *         within N ms" or a ZeroMQ failure (ErrorCode::Unavailable); a reply
   *         that cannot be decoded (ErrorCode::Internal).  With CURVE also:
   *         "the server at ENDPOINT refused this key (ZAP status 400)" or
   *         "cannot authenticate the server at ENDPOINT: ..." (both
   *         ErrorCode::Unauthorized), as soon as the handshake fails.
   */
  Result<Reply> call(std::string type, const nlohmann::json& body);

  /** call() with a body already encoded as a JSON object (fields.h encodeObject()). */
  Result<Reply> callEncoded(std::string type, std::string body_json);

  /**
   * Sends @p payload as it is (tests send garbage with it) and returns the
   * first reply within timeout_ms that is not a late reply to an earlier call().
   */
  Result<Reply> callRaw(const std::string& payload);

  // Without blocking, for a caller with its own loop (qosgate's control
  // thread, which long-polls the manager and must stay responsive) --------

  /**
   * Sends a request if the connection can take it now, without waiting.
   * @return its id, for receive(); or an Error: no connection (yet)
   *         (ErrorCode::Unavailable: try again later), a refused handshake
   *         (ErrorCode::Unauthorized), too large (ErrorCode::Invalid)
   */
  Result<std::string> send(std::string type, std::string body_json);
  /**
   * Waits at most @p wait_ms for the reply to the request @p id; replies to
   * other ids are dropped.  @return the reply, nullopt if none came yet, or
   * the Error of a refused handshake or an undecodable reply.
   */
  Result<std::optional<Reply>> receive(const std::string& id, int wait_ms);
  /**
   * Gives up on what is in flight: the next send() opens a new connection
   * (a peer that went away and came back is reached anew, with no stale
   * queue in between).
   */
  void reset() { reopen_ = true; }

  const std::string& endpoint() const { return endpoint_; }
  int timeoutMs() const { return timeout_ms_; }

private:
  using TimePoint = std::chrono::steady_clock::time_point;

  /**
   * Opens a DEALER (and, with @p curve, its handshake monitor) connected to
   * @p endpoint, and replaces the current ones with them.
   */
  Result<void> openSocket(const std::string& endpoint, const CurveClientKeys* curve);
  /** Stops the monitor, then closes the PAIR and the DEALER, in that order. */
  void closeSocket() noexcept;
  /** Sends [empty][payload], then waits for a reply that @p accept takes. */
  template <typename Accept>
  Result<Reply> exchange(const std::string& payload, Accept accept);
  /**
   * Waits until the DEALER is ready for @p events or @p deadline passes.
   * @return true if ready, false at the deadline, or the Error of a refused
   *         CURVE handshake (the socket is then closed, to be reopened).
   */
  Result<bool> waitFor(short events, TimePoint deadline);
  /** Reads the monitor's queued events; @return the Error if the handshake is now refused. */
  std::optional<Error> readHandshakeEvents();
  /** A new request's payload, with a fresh id (into @p id); Invalid if too large. */
  Result<std::string> encodeNew(std::string type, std::string body_json, std::string& id);
  /** Whether @p id is one this client generated before the current call. */
  bool isOwnEarlierId(const std::string& id) const;
  Error noReplyError(std::string_view detail) const;

  std::unique_ptr<zmq::context_t> owned_context_;  ///< set when no context was given
  zmq::context_t* context_ = nullptr;              ///< owned_context_ or the caller's
  std::unique_ptr<zmq::socket_t> socket_;          ///< null until connect() succeeds
  std::unique_ptr<zmq::socket_t> monitor_;  ///< PAIR with socket_'s handshake events; CURVE only
  std::optional<CurveClientKeys> curve_;    ///< the keys connect() was given
  int silent_handshake_failures_ = 0;       ///< handshakes in a row the server closed unexplained
  bool reopen_ = false;  ///< a handshake was refused: the next call opens a new socket
  std::string endpoint_;
  int timeout_ms_ = 0;
  std::string id_prefix_;  ///< random per client, so ids never collide across clients
  uint64_t next_seq_ = 1;  ///< sequence number of the next call()'s id
};

}  // namespace qos::control
