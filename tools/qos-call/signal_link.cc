#include "tools/qos-call/signal_link.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <string_view>
#include <utility>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

namespace qos::call {
namespace {

using Clock = std::chrono::steady_clock;

int msLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

bool readable(int fd, int wait_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, wait_ms) > 0;
}

class UdpLink final : public SignalLink {
public:
  UdpLink(int fd, const Endpoint& peer, ForeignMessage on_foreign)
      : fd_(fd), peer_(peer), on_foreign_(std::move(on_foreign)) {}
  void send(const Message& message) override { sendDatagram(fd_, peer_, message); }
  std::optional<Message> receive(int wait_ms) override {
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
    while (true) {
      auto got = receiveDatagram(fd_, msLeft(deadline));
      if (!got) {
        return std::nullopt;
      }
      // Only the peer's: on a listener's shared socket, others may call meanwhile.
      if (got->second.address == peer_.address && got->second.port == peer_.port) {
        return std::move(got->first);
      }
      if (on_foreign_) {
        on_foreign_(got->first, got->second);
      }
    }
  }
  bool reliable() const override { return false; }
  const char* transport() const override { return "udp"; }
  int fd() const override { return fd_; }

private:
  int fd_;
  Endpoint peer_;
  ForeignMessage on_foreign_;
};

class TcpLink final : public SignalLink {
public:
  explicit TcpLink(int fd) : socket_(fd) {}
  void send(const Message& message) override {
    const std::string line = formatMessage(message) + "\n";
    size_t done = 0;
    while (!closed_ && done < line.size()) {
      const ssize_t n = ::send(socket_.fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        closed_ = true;
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  std::optional<Message> receive(int wait_ms) override {
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
    while (true) {
      if (const size_t end = buffer_.find('\n'); end != std::string::npos) {
        const std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        Result<Message> m = parseMessage(line);
        if (m) {
          return std::move(*m);
        }
        std::cerr << "qos-call: ignored a message: " << m.error().message << "\n";
        continue;
      }
      if (buffer_.size() > kMaxLineBytes) {
        std::cerr << "qos-call: the peer sent a line of more than " << kMaxLineBytes
                  << " bytes: hanging up\n";
        closed_ = true;
      }
      if (closed_ || !readable(socket_.fd, msLeft(deadline))) {
        return std::nullopt;
      }
      char chunk[kMaxLineBytes];
      const ssize_t n = recv(socket_.fd, chunk, sizeof chunk, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        continue;
      }
      if (n <= 0) {
        closed_ = true;
        return std::nullopt;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  bool reliable() const override { return true; }
  bool closed() const override { return closed_; }
  const char* transport() const override { return "tcp"; }
  int fd() const override { return socket_.fd; }

private:
  Socket socket_;
  std::string buffer_;
  bool closed_ = false;
};

}  // namespace

Socket::Socket(int family, int type) : fd(socket(family, type | SOCK_CLOEXEC, 0)) {}

Socket::~Socket() {
  if (fd >= 0) {
    close(fd);
  }
}

int familyOf(const IpAddress& address) { return address.family == 6 ? AF_INET6 : AF_INET; }

socklen_t toSockaddr(const Endpoint& endpoint, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (endpoint.address.family == 6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&out);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(endpoint.port);
    std::memcpy(&s->sin6_addr, endpoint.address.bytes.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto* s = reinterpret_cast<sockaddr_in*>(&out);
  s->sin_family = AF_INET;
  s->sin_port = htons(endpoint.port);
  std::memcpy(&s->sin_addr, endpoint.address.bytes.data(), 4);
  return sizeof(sockaddr_in);
}

Endpoint fromSockaddr(const sockaddr_storage& in) {
  Endpoint e;
  if (in.ss_family == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&in);
    e.address.family = 6;
    std::memcpy(e.address.bytes.data(), &s->sin6_addr, 16);
    e.port = ntohs(s->sin6_port);
  } else {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&in);
    e.address.family = 4;
    std::memcpy(e.address.bytes.data(), &s->sin_addr, 4);
    e.port = ntohs(s->sin_port);
  }
  return e;
}

bool bindTo(int fd, const Endpoint& endpoint) {
  sockaddr_storage sa{};
  const socklen_t len = toSockaddr(endpoint, sa);
  return bind(fd, reinterpret_cast<sockaddr*>(&sa), len) == 0;
}

Endpoint localOf(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return fromSockaddr(sa);
}

std::unique_ptr<SignalLink> udpLink(int fd, const Endpoint& peer, ForeignMessage on_foreign) {
  return std::make_unique<UdpLink>(fd, peer, std::move(on_foreign));
}

void sendDatagram(int fd, const Endpoint& to, const Message& message) {
  const std::string line = formatMessage(message);
  sockaddr_storage sa{};
  const socklen_t len = toSockaddr(to, sa);
  sendto(fd, line.data(), line.size(), 0, reinterpret_cast<sockaddr*>(&sa), len);
}

std::unique_ptr<SignalLink> tcpLink(int connected_fd) {
  return std::make_unique<TcpLink>(connected_fd);
}

std::optional<std::pair<Message, Endpoint>> receiveDatagram(int fd, int wait_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
  while (true) {
    if (!readable(fd, msLeft(deadline))) {
      return std::nullopt;
    }
    char buf[kMaxLineBytes];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t n =
        recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) {
      continue;
    }
    Result<Message> m = parseMessage(std::string_view(buf, static_cast<size_t>(n)));
    if (!m) {
      std::cerr << "qos-call: ignored a message: " << m.error().message << "\n";
      continue;
    }
    return std::make_pair(std::move(*m), fromSockaddr(from));
  }
}

std::optional<Message> exchange(SignalLink& link, const Message& message, const std::string& verb) {
  return exchange(link, message, verb, verb);
}

std::optional<Message> exchange(SignalLink& link, const Message& message, const std::string& verb,
                                const std::string& or_verb) {
  const int tries = link.reliable() ? 1 : kTries;
  const int wait_ms = link.reliable() ? kTries * kRetryMs : kRetryMs;
  for (int i = 0; i < tries && !link.closed(); ++i) {
    link.send(message);
    const auto until = Clock::now() + std::chrono::milliseconds(wait_ms);
    while (Clock::now() < until && !link.closed()) {
      auto got = link.receive(msLeft(until));
      if (got && (got->verb == verb || got->verb == or_verb) && got->call_id == message.call_id) {
        return got;
      }
    }
  }
  return std::nullopt;
}

}  // namespace qos::call
