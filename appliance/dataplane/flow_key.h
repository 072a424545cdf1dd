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

}  // namespace qos::appliance
