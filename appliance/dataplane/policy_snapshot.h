// PolicySnapshot: the class rules and trust policy, immutable once published.
//
// Contract: the control thread builds a snapshot, fully validated, and
// publishes it with one atomic pointer store (PolicyPublisher in
// appliance/runtime/).  Workers load the pointer once per loop iteration and
// use it until their next rte_rcu_qsbr_quiescent() call.  The old snapshot is
// freed by the control thread after rte_rcu_qsbr_synchronize(), never by a
// worker, so no worker reads freed memory.  Nothing here is ever written
// after publication.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "appliance/config/appliance_config.h"
#include "appliance/dataplane/packet_parser.h"

namespace qos::appliance {

/** A class rule in the form the data plane matches fast. */
struct ClassMatcher {
  IpFamily family = IpFamily::None;     ///< None: either family
  std::array<uint64_t, 2> src_value{};  ///< prefix bits, masked, as two words
  std::array<uint64_t, 2> src_mask{};
  std::array<uint64_t, 2> dst_value{};
  std::array<uint64_t, 2> dst_mask{};
  uint8_t protocol = kAnyProtocol;
  PortRange src_ports;
  PortRange dst_ports;
  uint64_t dscp_in_mask = ~0ULL;
  PacketAction action;

  bool matches(const ParsedPacket& p) const noexcept {
    if (family != IpFamily::None && family != p.key.family) {
      return false;
    }
    if (protocol != kAnyProtocol && protocol != p.key.protocol) {
      return false;
    }
    if ((dscp_in_mask & (1ULL << p.dscp)) == 0) {
      return false;
    }
    if (!src_ports.contains(p.key.src_port) || !dst_ports.contains(p.key.dst_port)) {
      return false;
    }
    std::array<uint64_t, 2> src;
    std::array<uint64_t, 2> dst;
    std::memcpy(src.data(), p.key.src_addr.data(), sizeof(src));
    std::memcpy(dst.data(), p.key.dst_addr.data(), sizeof(dst));
    return ((src[0] & src_mask[0]) == src_value[0]) && ((src[1] & src_mask[1]) == src_value[1]) &&
           ((dst[0] & dst_mask[0]) == dst_value[0]) && ((dst[1] & dst_mask[1]) == dst_value[1]);
  }
};

struct PolicySnapshot {
  UnmatchedPolicy unmatched = UnmatchedPolicy::Remark;
  uint8_t default_dscp = 0;
  MalformedPolicy malformed = MalformedPolicy::Forward;
  std::vector<ClassMatcher> classes;  ///< first match wins

  /** Compiles a validated policy.  Control thread only. */
  static PolicySnapshot build(const TrafficPolicy& policy);
};

}  // namespace qos::appliance
