// ZapHandler: decides which CURVE clients a ZeroMQ server lets in, as the
// ZAP handler (ZeroMQ RFC 27) of one context.
//
//   client DEALER --CURVE handshake--> server ROUTER (curve_server=1, zap_domain)
//                                         | ZAP request: domain, mechanism, client key
//                                         v
//                        inproc://zeromq.zap.01  (this handler, its own thread)
//                                         | 200 + User-Id = peer name, or 400 / 500
//                                         v
//                        handshake completes, or the client gets an ERROR and is dropped
//
// A client is let in (status 200) only if its mechanism is CURVE, its public
// key is one of the configured keys and, when the handler has a domain, the
// server socket's ZMQ_ZAP_DOMAIN is that domain.  Its messages then carry the
// key's peer name as "User-Id" metadata.  Everything else gets 400 (unknown
// key, other mechanism, other domain) or 500 (a malformed request), with a
// status text; nothing a request contains can crash or block the handler.
//
// ORDER MATTERS.  libzmq 4.3.4 lets every CURVE client in when no ZAP handler
// is bound in the context at the moment of the handshake, so start() the
// handler BEFORE any CURVE server socket of that context binds, and destroy
// it only AFTER they are closed: once it is gone, anybody gets in again.  As
// a second line, a server should drop every message whose "User-Id"
// metadata (zmq_msg_gets) is not one of its configured peer names: a client
// let in without a handler has no User-Id, so a missing handler then lets
// nobody in instead of everybody.
//
// Do not set ZMQ_ZAP_DOMAIN on NULL-mechanism sockets of the same context:
// their clients would be sent here too, and refused.
//
// Thread safety: setKeys(), counts() and lastRefusedKey() may be called from
// any thread, concurrently with the handler's own thread.  The handler does
// not log; its caller reads counts() and lastRefusedKey() and decides what to
// say, and how often.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include <zmq.hpp>

#include "control/common/result.h"

namespace qos::control {

class ZapHandler {
public:
  /** The endpoint libzmq sends ZAP requests to (RFC 27); one handler per context. */
  static constexpr std::string_view kEndpoint = "inproc://zeromq.zap.01";

  /** How many handshakes the handler answered, by answer. */
  struct Counts {
    uint64_t accepted = 0;  ///< answered 200
    uint64_t refused = 0;   ///< answered 400 or 500, or dropped as unanswerable
  };

  /**
   * Binds kEndpoint in @p context and starts serving on a thread of its own.
   * @param context the caller's; it must outlive the handler
   * @param keys    client public key (40-character Z85) -> the peer name its
   *                messages carry as "User-Id"
   * @param domain  the only ZAP domain let in; empty lets in every domain
   * @return the running handler, or an Error: a key that is not valid Z85
   *         (ErrorCode::Invalid), or kEndpoint cannot be bound, e.g. because
   *         another handler is bound in this context (ErrorCode::Internal).
   */
  static Result<std::unique_ptr<ZapHandler>> start(zmq::context_t& context,
                                                   std::map<std::string, std::string> keys,
                                                   std::string domain);

  /**
   * Stops the thread and closes the socket.  CURVE servers still open in the
   * context then leave new clients unanswered for a moment, until libzmq has
   * reaped the socket, and let every client in after that: close them first.
   */
  ~ZapHandler();

  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;
  ZapHandler(ZapHandler&&) = delete;
  ZapHandler& operator=(ZapHandler&&) = delete;

  /**
   * Replaces the configured keys (a config reload), from any thread.  The
   * next handshake sees them; connections already let in stay.  Keys that are
   * not valid Z85 public keys match no client.
   */
  void setKeys(std::map<std::string, std::string> keys);

  /** The counts so far, from any thread. */
  Counts counts() const;

  /** The public key (Z85) of the last CURVE client refused; empty if none was. */
  std::string lastRefusedKey() const;

private:
  /** A ZAP answer: status code ("200", "400", "500"), status text, and User-Id. */
  struct Answer {
    std::string_view status_code;
    std::string status_text;
    std::string user_id;
  };

  ZapHandler(zmq::socket_t socket, int wake_fd, std::map<std::string, std::string> keys,
             std::string domain);

  /** The handler thread: serves requests until the destructor wakes it. */
  void run();
  /** Receives one request and answers (or drops) it. */
  void serveOne();
  /** The answer to one request; @p request holds the frames after [routing id][empty]. */
  Answer decide(std::span<const zmq::message_t> request);

  zmq::socket_t socket_;  ///< ROUTER bound on kEndpoint; used only by thread_ once it runs
  const int wake_fd_;     ///< eventfd the destructor writes to stop thread_
  const std::string domain_;

  mutable std::mutex mutex_;
  std::map<std::string, std::string> keys_;  ///< guarded by mutex_
  std::string last_refused_key_;             ///< guarded by mutex_

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;  ///< last member: starts when everything above is ready
};

}  // namespace qos::control
