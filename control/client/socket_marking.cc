#include "control/client/socket_marking.h"

#include <cerrno>
#include <cstring>
#include <string>

#include <netinet/in.h>
#include <sys/socket.h>

namespace qos::client {
namespace {

constexpr uint8_t kEcnMask = 0x03;
constexpr uint8_t kMaxDscp = 63;

Error kernelError(const char* what, int err) {
  return makeError(ErrorCode::Internal, std::string(what) + ": " + std::strerror(err));
}

Result<int> familyOf(int fd) {
  int family = 0;
  socklen_t length = sizeof(family);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &length) != 0) {
    return makeError(ErrorCode::Invalid,
                     "fd " + std::to_string(fd) + " is not a socket: " + std::strerror(errno));
  }
  if (family != AF_INET && family != AF_INET6) {
    return makeError(ErrorCode::Invalid,
                     "fd " + std::to_string(fd) + " is not an IPv4 or IPv6 socket");
  }
  return family;
}

/** The option that holds the traffic-class byte for @p family. */
void optionOf(int family, int& level, int& name) {
  level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
  name = family == AF_INET ? IP_TOS : IPV6_TCLASS;
}

Result<uint8_t> readByte(int fd, int level, int name) {
  int value = 0;
  socklen_t length = sizeof(value);
  if (getsockopt(fd, level, name, &value, &length) != 0) {
    return kernelError(level == IPPROTO_IP ? "getsockopt IP_TOS" : "getsockopt IPV6_TCLASS", errno);
  }
  return static_cast<uint8_t>(value & 0xff);
}

Result<void> writeByte(int fd, int level, int name, uint8_t byte) {
  const int value = byte;
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return kernelError(level == IPPROTO_IP ? "setsockopt IP_TOS" : "setsockopt IPV6_TCLASS", errno);
  }
  return {};
}

bool isTcp(int fd) {
  int protocol = 0;
  socklen_t length = sizeof(protocol);
  return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &length) == 0 &&
         protocol == IPPROTO_TCP;
}

Result<void> writePacing(int fd, uint64_t bytes_per_sec) {
  if (setsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &bytes_per_sec, sizeof(bytes_per_sec)) != 0) {
    return kernelError("setsockopt SO_MAX_PACING_RATE", errno);
  }
  return {};
}

/** @p dscp in the DSCP bits of @p byte, its ECN bits kept. */
uint8_t withDscp(uint8_t byte, uint8_t dscp) {
  return static_cast<uint8_t>((dscp << 2) | (byte & kEcnMask));
}

}  // namespace

Result<SocketMark> markSocket(int fd, uint8_t dscp, uint64_t pace_bytes_per_sec) {
  if (dscp > kMaxDscp) {
    return makeError(ErrorCode::Invalid, "DSCP " + std::to_string(dscp) + " is over 63");
  }
  Result<int> family = familyOf(fd);
  if (!family) {
    return family.error();
  }
  SocketMark mark;
  mark.fd = fd;
  mark.family = *family;
  int level = 0;
  int name = 0;
  optionOf(mark.family, level, name);
  Result<uint8_t> before = readByte(fd, level, name);
  if (!before) {
    return before.error();
  }
  mark.before = *before;
  if (Result<void> r = writeByte(fd, level, name, withDscp(*before, dscp)); !r) {
    return r.error();
  }
  if (mark.family == AF_INET6) {
    // A dual-stack socket sends IPv4-mapped traffic with IP_TOS; an
    // IPV6_V6ONLY socket may refuse the option, which is no error here.
    if (Result<uint8_t> v4 = readByte(fd, IPPROTO_IP, IP_TOS); v4) {
      mark.before_v4 = *v4;
      mark.v4_mapped = writeByte(fd, IPPROTO_IP, IP_TOS, withDscp(*v4, dscp)).ok();
    }
  }
  if (pace_bytes_per_sec != 0 && isTcp(fd)) {
    Result<uint64_t> before_rate = socketPacingRate(fd);
    if (!before_rate) {
      static_cast<void>(restoreSocket(mark));
      return before_rate.error();
    }
    if (Result<void> r = writePacing(fd, pace_bytes_per_sec); !r) {
      static_cast<void>(restoreSocket(mark));
      return r.error();
    }
    mark.paced = true;
    mark.pacing_before = *before_rate;
  }
  return mark;
}

Result<void> restoreSocket(const SocketMark& mark) {
  int level = 0;
  int name = 0;
  optionOf(mark.family, level, name);
  Result<uint8_t> now = readByte(mark.fd, level, name);
  if (!now) {
    return now.error();
  }
  if (Result<void> r = writeByte(mark.fd, level, name, withDscp(*now, mark.before >> 2)); !r) {
    return r;
  }
  if (mark.v4_mapped) {
    if (Result<uint8_t> v4 = readByte(mark.fd, IPPROTO_IP, IP_TOS); v4) {
      static_cast<void>(writeByte(mark.fd, IPPROTO_IP, IP_TOS, withDscp(*v4, mark.before_v4 >> 2)));
    }
  }
  if (mark.paced) {
    return writePacing(mark.fd, mark.pacing_before);
  }
  return {};
}

Result<uint64_t> socketPacingRate(int fd) {
  uint64_t rate = 0;
  socklen_t length = sizeof(rate);
  if (getsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, &length) != 0) {
    return kernelError("getsockopt SO_MAX_PACING_RATE", errno);
  }
  if (length == sizeof(uint32_t)) {  // an older kernel's 32-bit value
    uint32_t narrow = 0;
    std::memcpy(&narrow, &rate, sizeof narrow);
    return narrow == UINT32_MAX ? ~uint64_t{0} : narrow;
  }
  return rate;
}

Result<uint8_t> socketDscp(int fd) {
  Result<int> family = familyOf(fd);
  if (!family) {
    return family.error();
  }
  int level = 0;
  int name = 0;
  optionOf(*family, level, name);
  Result<uint8_t> byte = readByte(fd, level, name);
  if (!byte) {
    return byte.error();
  }
  return static_cast<uint8_t>(*byte >> 2);
}

}  // namespace qos::client
