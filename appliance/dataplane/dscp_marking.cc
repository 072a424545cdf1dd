#include "appliance/dataplane/dscp_marking.h"

namespace qos::appliance {
namespace {

constexpr uint8_t kDscpMask = 0x3F;
constexpr uint8_t kEcnMask = 0x03;
constexpr unsigned kIpv4ChecksumOffset = 10;

/** Folds the carries of a one's complement sum back into its low 16 bits. */
inline uint16_t foldCarries(uint64_t sum) noexcept {
  // Each pass shortens the sum by about 16 bits, so a 64-bit sum takes at
  // most five passes; the sums made in this file take one or two.
  while ((sum >> 16) != 0) {
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<uint16_t>(sum);
}

}  // namespace

void setDscpIpv4(uint8_t* ip_header, uint8_t dscp) noexcept {
  const uint8_t old_tos = ip_header[1];
  const auto new_tos = static_cast<uint8_t>(((dscp & kDscpMask) << 2) | (old_tos & kEcnMask));
  // The TOS byte is the low half of the header's first 16-bit word.
  const auto old_word = static_cast<uint16_t>((ip_header[0] << 8) | old_tos);
  const auto new_word = static_cast<uint16_t>((ip_header[0] << 8) | new_tos);
  const auto old_checksum = static_cast<uint16_t>((ip_header[kIpv4ChecksumOffset] << 8) |
                                                  ip_header[kIpv4ChecksumOffset + 1]);
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').  Unlike eqn. 2 (HC - ~m - m')
  // it never yields 0xFFFF where a full recompute gives 0x0000.
  const uint64_t sum = static_cast<uint16_t>(~old_checksum) +
                       static_cast<uint64_t>(static_cast<uint16_t>(~old_word)) + new_word;
  const auto new_checksum = static_cast<uint16_t>(~foldCarries(sum));
  ip_header[1] = new_tos;
  ip_header[kIpv4ChecksumOffset] = static_cast<uint8_t>(new_checksum >> 8);
  ip_header[kIpv4ChecksumOffset + 1] = static_cast<uint8_t>(new_checksum);
}

void setDscpIpv6(uint8_t* ip_header, uint8_t dscp) noexcept {
  // Version(4) | traffic class(8) | flow label(20): the DSCP is the top six
  // bits of the traffic class, the low nibble of byte 0 and the top two bits
  // of byte 1.  ECN (byte 1 bits 5..4) and the flow label stay as they are.
  const uint8_t masked_dscp = dscp & kDscpMask;
  ip_header[0] = static_cast<uint8_t>((ip_header[0] & 0xF0) | (masked_dscp >> 2));
  ip_header[1] = static_cast<uint8_t>((ip_header[1] & 0x3F) | ((masked_dscp & 0x03) << 6));
}

uint16_t ipv4HeaderChecksum(const uint8_t* ip_header, unsigned header_len) noexcept {
  uint64_t sum = 0;
  unsigned i = 0;
  for (; i + 1 < header_len; i += 2) {
    sum += static_cast<uint64_t>((ip_header[i] << 8) | ip_header[i + 1]);
  }
  if (i < header_len) {
    // An odd trailing byte counts as the high half of a zero-padded word.
    sum += static_cast<uint64_t>(ip_header[i]) << 8;
  }
  return static_cast<uint16_t>(~foldCarries(sum));
}

}  // namespace qos::appliance
