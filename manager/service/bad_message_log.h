// BadMessageLog: log lines about what peers did wrong (malformed messages,
// refused keys), at most kBurst per window, so that a peer sending garbage
// cannot flood the log.  What was held back is counted and said once the
// window ends.
#pragma once

#include <cstdint>
#include <string_view>

namespace qos::manager {

class BadMessageLog {
public:
  static constexpr int kBurst = 10;
  static constexpr uint64_t kWindowMs = 10'000;

  /** Logs @p what as a warning unless this window's budget is spent.  @p now_ms: any clock. */
  void warn(std::string_view what, uint64_t now_ms);

private:
  uint64_t window_start_ms_ = 0;
  int budget_ = kBurst;
  uint64_t suppressed_ = 0;
};

}  // namespace qos::manager
