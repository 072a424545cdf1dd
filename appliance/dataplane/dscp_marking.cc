#include "appliance/dataplane/dscp_marking.h"

namespace qos::appliance {

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
  return static_cast<uint16_t>(~dscp_detail::foldCarries(sum));
}

}  // namespace qos::appliance
