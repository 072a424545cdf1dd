// FlowKey: the exact-match key of the flow table, IPv4 and IPv6 alike.
//
// A fixed 48-byte POD so that rte_hash can hash and compare it as bytes: every
// byte, padding included, is written by whoever builds a key.  IPv4 addresses
// sit in the first four bytes of the 16-byte fields, the rest stays zero.
// 48 bytes rather than the 40 the fields need: rte_hash has a vector compare
// for 48-byte keys (rte_hash_k48_cmp_eq) and falls back to memcmp() for 40,
// and its key slot (8-byte data pointer + key, rounded up to 16) is then
// exactly one 64-byte cache line.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "appliance/config/appliance_config.h"

namespace qos::appliance {

enum class IpFamily : uint8_t { None = 0, V4 = 4, V6 = 6 };

struct alignas(8) FlowKey {            // the hash reads it 8 bytes at a time
  std::array<uint8_t, 16> src_addr{};  ///< network byte order; IPv4 uses bytes 0..3
  std::array<uint8_t, 16> dst_addr{};  ///< network byte order; IPv4 uses bytes 0..3
  uint16_t src_port = 0;               ///< host byte order; 0 when the packet has no ports
  uint16_t dst_port = 0;               ///< host byte order; 0 when the packet has no ports
  uint8_t protocol = 0;                ///< IANA protocol number of the L4 header
  IpFamily family = IpFamily::None;    ///< 4 or 6
  uint8_t wildcard_mask = 0;           ///< which fields a rule ignores (FlowTable's WildcardBits)
  uint8_t reserved = 0;                ///< always zero
  uint64_t padding = 0;                ///< always zero: pads the key to 48 bytes (see above)

  bool operator==(const FlowKey& other) const {
    return std::memcmp(this, &other, sizeof(FlowKey)) == 0;
  }
};
static_assert(sizeof(FlowKey) == 48, "rte_hash compares keys as 48 raw bytes");
static_assert(alignof(FlowKey) == 8, "the key hash loads 8-byte words");

/** Bits of FlowKey::wildcard_mask: the fields a rule ignores. */
inline constexpr uint8_t kWildSrcPort = 1u << 0;
inline constexpr uint8_t kWildDstPort = 1u << 1;
inline constexpr uint8_t kWildProtocol = 1u << 2;
inline constexpr unsigned kMaskCount = 8;
/** Masks in probe order: most specific first. */
inline constexpr std::array<uint8_t, kMaskCount> kMaskProbeOrder = {0, 1, 2, 4, 3, 5, 6, 7};

/** Applies a wildcard mask to a packet's key: clears the fields the mask ignores. */
inline void applyMask(FlowKey& key, uint8_t mask) noexcept {
  key.wildcard_mask = mask;
  if ((mask & kWildSrcPort) != 0) {
    key.src_port = 0;
  }
  if ((mask & kWildDstPort) != 0) {
    key.dst_port = 0;
  }
  if ((mask & kWildProtocol) != 0) {
    key.protocol = 0;
  }
}

/** The table key of a rule: its 5-tuple, with a wildcard mask for each field it leaves "any". */
inline FlowKey flowKeyOf(const FlowRule& rule) {
  FlowKey key;
  key.src_addr = rule.src.bytes;
  key.dst_addr = rule.dst.bytes;
  key.family = rule.src.family == 6 ? IpFamily::V6 : IpFamily::V4;
  key.protocol = rule.protocol;
  key.src_port = rule.src_port;
  key.dst_port = rule.dst_port;
  uint8_t mask = 0;
  if (rule.src_port == 0) {
    mask |= kWildSrcPort;
  }
  if (rule.dst_port == 0) {
    mask |= kWildDstPort;
  }
  if (rule.protocol == kAnyProtocol) {
    mask |= kWildProtocol;
  }
  key.wildcard_mask = mask;
  return key;
}

}  // namespace qos::appliance
