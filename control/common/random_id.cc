#include "control/common/random_id.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>

#include <unistd.h>

namespace qos {

std::string randomHexId() {
  uint64_t bits = 0;
  try {
    std::random_device device;
    bits = (static_cast<uint64_t>(device()) << 32) ^ device();
  } catch (const std::exception&) {
    bits = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
           (static_cast<uint64_t>(getpid()) << 40);
  }
  std::array<char, 17> hex{};
  std::snprintf(hex.data(), hex.size(), "%016llx", static_cast<unsigned long long>(bits));
  return std::string(hex.data(), 16);
}

}  // namespace qos
