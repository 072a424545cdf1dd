// Marking a socket's packets with a DSCP: IP_TOS for IPv4, IPV6_TCLASS for
// IPv6 (and IP_TOS as well on an IPv6 socket, for the IPv4-mapped packets a
// dual-stack socket sends).  The low two bits of the byte are ECN, owned by
// the kernel and the transport: they are read back and kept.
//
// A TCP socket is paced as well, when given a rate: SO_MAX_PACING_RATE
// makes the kernel's TCP space its segments out at that rate (since Linux
// 4.13 without the fq qdisc), so the flow keeps to its grant at the source
// instead of meeting a policer.
#pragma once

#include <cstdint>

#include "control/common/result.h"

namespace qos::client {

/** What a socket's traffic-class byte was before it was marked, to put it back. */
struct SocketMark {
  int fd = -1;
  int family = 0;              ///< AF_INET or AF_INET6
  uint8_t before = 0;          ///< the TOS / traffic class byte before marking
  uint8_t before_v4 = 0;       ///< an IPv6 socket's IP_TOS before marking
  bool v4_mapped = false;      ///< an IPv6 socket whose IP_TOS was set too
  bool paced = false;          ///< a TCP socket whose SO_MAX_PACING_RATE was set
  uint64_t pacing_before = 0;  ///< its SO_MAX_PACING_RATE before (bytes/s; ~0 = none)
};

/**
 * Sets the DSCP (0..63) of what @p fd sends, keeping its ECN bits, and
 * paces a TCP socket at @p pace_bytes_per_sec (0: not paced; any other
 * socket is not paced).
 * @return what to give restoreSocket() to put the socket back, or an Error:
 *         not a socket, not an IPv4/IPv6 socket, a DSCP over 63
 *         (ErrorCode::Invalid), or the kernel refused (ErrorCode::Internal)
 */
Result<SocketMark> markSocket(int fd, uint8_t dscp, uint64_t pace_bytes_per_sec = 0);

/** Puts the socket's DSCP (and pacing) back as before markSocket(); ECN is kept. */
Result<void> restoreSocket(const SocketMark& mark);

/** @p fd's SO_MAX_PACING_RATE in bytes/s (~0: none). */
Result<uint64_t> socketPacingRate(int fd);

/** The DSCP @p fd sends with now (IP_TOS or IPV6_TCLASS >> 2). */
Result<uint8_t> socketDscp(int fd);

}  // namespace qos::client
