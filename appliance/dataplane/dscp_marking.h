// Rewrites the DSCP of an IP header in place, keeping the two ECN bits.
//
// IPv4: the TOS byte, with the header checksum updated incrementally per
// RFC 1624 (HC' = ~(~HC + ~m + m')), so a 1500-byte packet costs the same
// as a 64-byte one.  IPv6: the six DSCP bits of the traffic class, which
// straddle the first and second bytes; IPv6 has no header checksum.
//
// Callers have already bounds-checked the header (packet_parser.h).  The
// setters are inline: the worker calls one for nearly every packet.
#pragma once

#include <cstdint>

namespace qos::appliance {

namespace dscp_detail {

inline constexpr uint8_t kDscpMask = 0x3F;
inline constexpr uint8_t kEcnMask = 0x03;
inline constexpr unsigned kIpv4ChecksumOffset = 10;

/** Folds the carries of a one's complement sum back into its low 16 bits. */
inline uint16_t foldCarries(uint64_t sum) noexcept {
  // Each pass shortens the sum by about 16 bits, so a 64-bit sum takes at
  // most five passes; the sums made in this file take one or two.
  while ((sum >> 16) != 0) {
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<uint16_t>(sum);
}

}  // namespace dscp_detail

/** Sets the DSCP (0..63) of the IPv4 header at @p ip_header; fixes its checksum. */
inline void setDscpIpv4(uint8_t* ip_header, uint8_t dscp) noexcept {
  using namespace dscp_detail;
  const uint8_t old_tos = ip_header[1];
  const auto new_tos = static_cast<uint8_t>(((dscp & kDscpMask) << 2) | (old_tos & kEcnMask));
  // Only the TOS byte, the low half of the header's first 16-bit word,
  // changes: m = old_tos, m' = new_tos in that word's low half.
  const auto old_checksum = static_cast<uint16_t>((ip_header[kIpv4ChecksumOffset] << 8) |
                                                  ip_header[kIpv4ChecksumOffset + 1]);
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').  Unlike eqn. 2 (HC - ~m - m')
  // it never yields 0xFFFF where a full recompute gives 0x0000.  The high
  // halves of ~m and m' (~version/IHL and version/IHL) sum to 0xFF00.
  const uint32_t sum =
      static_cast<uint16_t>(~old_checksum) + 0xFF00u + static_cast<uint8_t>(~old_tos) + new_tos;
  const auto new_checksum = static_cast<uint16_t>(~foldCarries(sum));
  ip_header[1] = new_tos;
  ip_header[kIpv4ChecksumOffset] = static_cast<uint8_t>(new_checksum >> 8);
  ip_header[kIpv4ChecksumOffset + 1] = static_cast<uint8_t>(new_checksum);
}

/** Sets the DSCP (0..63) of the IPv6 header at @p ip_header. */
inline void setDscpIpv6(uint8_t* ip_header, uint8_t dscp) noexcept {
  using namespace dscp_detail;
  // Version(4) | traffic class(8) | flow label(20): the DSCP is the top six
  // bits of the traffic class, the low nibble of byte 0 and the top two bits
  // of byte 1.  ECN (byte 1 bits 5..4) and the flow label stay as they are.
  const uint8_t masked_dscp = dscp & kDscpMask;
  ip_header[0] = static_cast<uint8_t>((ip_header[0] & 0xF0) | (masked_dscp >> 2));
  ip_header[1] = static_cast<uint8_t>((ip_header[1] & 0x3F) | ((masked_dscp & 0x03) << 6));
}

/** Full RFC 791 header checksum over @p header_len bytes (the checksum field included). */
uint16_t ipv4HeaderChecksum(const uint8_t* ip_header, unsigned header_len) noexcept;

}  // namespace qos::appliance
