#include "appliance/dataplane/policy_snapshot.h"

namespace qos::appliance {
namespace {

void compilePrefix(const std::optional<IpPrefix>& prefix, std::array<uint64_t, 2>& value,
                   std::array<uint64_t, 2>& mask) {
  value = {0, 0};
  mask = {0, 0};
  if (!prefix) {
    return;
  }
  std::array<uint8_t, 16> mask_bytes{};
  for (unsigned bit = 0; bit < prefix->length_bits; ++bit) {
    mask_bytes[bit / 8] |= static_cast<uint8_t>(0x80u >> (bit % 8));
  }
  std::memcpy(mask.data(), mask_bytes.data(), sizeof(mask));
  std::memcpy(value.data(), prefix->address.bytes.data(), sizeof(value));
  value[0] &= mask[0];
  value[1] &= mask[1];
}

}  // namespace

PolicySnapshot PolicySnapshot::build(const TrafficPolicy& policy) {
  PolicySnapshot snap;
  snap.unmatched = policy.unmatched;
  snap.default_dscp = policy.default_dscp;
  snap.malformed = policy.malformed;
  for (const ClassRule& rule : policy.classes) {
    ClassMatcher m;
    const IpPrefix* any = rule.src ? &*rule.src : (rule.dst ? &*rule.dst : nullptr);
    if (any != nullptr) {
      m.family = any->address.family == 6 ? IpFamily::V6 : IpFamily::V4;
    }
    compilePrefix(rule.src, m.src_value, m.src_mask);
    compilePrefix(rule.dst, m.dst_value, m.dst_mask);
    m.protocol = rule.protocol;
    m.src_ports = rule.src_ports;
    m.dst_ports = rule.dst_ports;
    m.dscp_in_mask = rule.dscp_in_mask;
    m.action = rule.action;
    snap.classes.push_back(m);
  }
  return snap;
}

}  // namespace qos::appliance
