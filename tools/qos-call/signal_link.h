// qos-call's sockets, and the call set-up carried over one of two
// transports, as SIP is: UDP (one message per datagram; a lost one is sent
// again) or TCP (one line per message on a connection).  Media is UDP
// either way.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <sys/socket.h>

#include "tools/qos-call/signaling.h"

namespace qos::call {

/** A socket that closes itself. */
struct Socket {
  int fd = -1;
  Socket(int family, int type);
  explicit Socket(int adopted) : fd(adopted) {}
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
};

int familyOf(const IpAddress& address);
socklen_t toSockaddr(const Endpoint& endpoint, sockaddr_storage& out);
Endpoint fromSockaddr(const sockaddr_storage& in);
bool bindTo(int fd, const Endpoint& endpoint);
Endpoint localOf(int fd);

/** The longest message line read; a longer one is refused, never buffered. */
inline constexpr size_t kMaxLineBytes = 600;
/** A UDP message is sent up to kTries times, kRetryMs apart, until answered. */
inline constexpr int kTries = 5;
inline constexpr int kRetryMs = 400;

/** The call set-up with one peer. */
class SignalLink {
public:
  virtual ~SignalLink() = default;
  virtual void send(const Message& message) = 0;
  /**
   * The next message within @p wait_ms (0: only one already there); a
   * malformed one is said on stderr and skipped.  nullopt on time-out, or
   * when the peer has gone (closed()).
   */
  virtual std::optional<Message> receive(int wait_ms) = 0;
  /** Whether a message sent is delivered (TCP) or may be lost (UDP). */
  virtual bool reliable() const = 0;
  /** A TCP peer closed the connection. */
  virtual bool closed() const { return false; }
  virtual const char* transport() const = 0;
  /** For poll(): readable when a message may be there. */
  virtual int fd() const = 0;
};

/** What a link does with a message from someone other than its peer. */
using ForeignMessage = std::function<void(const Message&, const Endpoint& from)>;

/**
 * Over UDP, with @p peer, on a socket that may be shared (not owned);
 * messages from others go to @p on_foreign, if any, and are not returned.
 */
std::unique_ptr<SignalLink> udpLink(int fd, const Endpoint& peer, ForeignMessage on_foreign = {});
/** Sends @p message to @p to over UDP on @p fd. */
void sendDatagram(int fd, const Endpoint& to, const Message& message);
/** Over a TCP connection, which the link owns and closes. */
std::unique_ptr<SignalLink> tcpLink(int connected_fd);

/**
 * Sends @p message until a reply of @p verb for the same call comes (over
 * TCP once, and waits as long as all the UDP tries would).
 */
std::optional<Message> exchange(SignalLink& link, const Message& message, const std::string& verb);
/** The same, also taking a reply of @p or_verb (a refusal, such as BUSY). */
std::optional<Message> exchange(SignalLink& link, const Message& message, const std::string& verb,
                                const std::string& or_verb);

/** Reads one datagram's message on @p fd within @p wait_ms, and who sent it. */
std::optional<std::pair<Message, Endpoint>> receiveDatagram(int fd, int wait_ms);

}  // namespace qos::call
