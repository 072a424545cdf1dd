// Rewrites the DSCP of an IP header in place, keeping the two ECN bits.
//
// IPv4: the TOS byte, with the header checksum updated incrementally per
// RFC 1624 (HC' = ~(~HC + ~m + m')), so a 1500-byte packet costs the same
// as a 64-byte one.  IPv6: the six DSCP bits of the traffic class, which
// straddle the first and second bytes; IPv6 has no header checksum.
//
// Callers have already bounds-checked the header (packet_parser.h).
#pragma once

#include <cstdint>

namespace qos::appliance {

/** Sets the DSCP (0..63) of the IPv4 header at @p ip_header; fixes its checksum. */
void setDscpIpv4(uint8_t* ip_header, uint8_t dscp) noexcept;

/** Sets the DSCP (0..63) of the IPv6 header at @p ip_header. */
void setDscpIpv6(uint8_t* ip_header, uint8_t dscp) noexcept;

/** Full RFC 791 header checksum over @p header_len bytes (the checksum field included). */
uint16_t ipv4HeaderChecksum(const uint8_t* ip_header, unsigned header_len) noexcept;

}  // namespace qos::appliance
