// IPv4 and IPv6 addresses and prefixes as configs write them ("198.18.1.10",
// "2001:db8::/48"), held in one 16-byte form so v4 and v6 share code paths.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "control/common/result.h"

namespace qos {

struct IpAddress {
  uint8_t family = 0;               ///< 4 or 6; 0 for "not set"
  std::array<uint8_t, 16> bytes{};  ///< network byte order; IPv4 uses bytes 0..3, rest zero

  bool operator==(const IpAddress&) const = default;
};

struct IpPrefix {
  IpAddress address;        ///< host bits are zero
  uint8_t length_bits = 0;  ///< 0..32 (IPv4) or 0..128 (IPv6)

  /** True if @p addr is of the same family and inside this prefix. */
  bool contains(const IpAddress& addr) const;
  /** True if the two prefixes share any address. */
  bool overlaps(const IpPrefix& other) const;
  bool operator==(const IpPrefix&) const = default;
};

/** Parses "198.18.1.10" or "2001:db8::1". */
Result<IpAddress> parseIpAddress(std::string_view text);

/**
 * Parses "198.18.1.0/24" or "2001:db8::/48"; a bare address is a host prefix
 * (/32 or /128).  Host bits set below the length are an error: "10.0.0.1/8" is
 * almost always a typo, and silently masking it hides the mistake.
 */
Result<IpPrefix> parseIpPrefix(std::string_view text);

std::string formatIpAddress(const IpAddress& addr);
std::string formatIpPrefix(const IpPrefix& prefix);

}  // namespace qos
