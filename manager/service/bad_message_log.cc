#include "manager/service/bad_message_log.h"

#include <string>

#include "control/common/log.h"

namespace qos::manager {

void BadMessageLog::warn(std::string_view what, uint64_t now_ms) {
  if (now_ms - window_start_ms_ >= kWindowMs) {
    if (suppressed_ != 0) {
      log::warning(std::to_string(suppressed_) + " more bad message(s) not logged");
    }
    window_start_ms_ = now_ms;
    budget_ = kBurst;
    suppressed_ = 0;
  }
  if (budget_ > 0) {
    --budget_;
    log::warning(what);
  } else {
    ++suppressed_;
  }
}

}  // namespace qos::manager
