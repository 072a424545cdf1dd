// The provision requests qosmgr's benchmarks send: the i-th has a 5-tuple of
// its own inside lan-a -> lan-b of the benchmark config
// (tools/bench/qosmgr_bench.sh), and its own request id.
#pragma once

#include <cstdint>
#include <string>

#include "control/common/ip_prefix.h"
#include "control/protocol/messages.h"

namespace qos::bench {

inline control::AdmissionRequest benchProvision(uint64_t i, const std::string& app,
                                                uint32_t lease_sec) {
  control::AdmissionRequest request;
  request.application = app;
  request.flow.src = *parseIpAddress("198.18." + std::to_string(1 + (i >> 24) % 200) + "." +
                                     std::to_string(1 + (i >> 16) % 250));
  request.flow.src_port = static_cast<uint16_t>(1024 + (i & 0xFFFF) % 60000);
  request.flow.dst = *parseIpAddress("198.19.1." + std::to_string(1 + (i >> 8) % 250));
  request.flow.dst_port = 5004;
  request.flow.protocol = 17;
  request.lease_sec = lease_sec;
  request.client_id = "loadgen";
  request.request_id = "load-" + std::to_string(i);
  return request;
}

}  // namespace qos::bench
