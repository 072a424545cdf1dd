// The two clocks the control plane reads, in milliseconds: steady (for
// timeouts and leases measured here) and system (epoch, as on the wire).
#pragma once

#include <chrono>
#include <cstdint>

namespace qos {

inline uint64_t steadyClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

inline uint64_t systemClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace qos
