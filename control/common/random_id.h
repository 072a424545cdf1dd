// Ids that only have to differ from each other, never be secret: a client's
// request-id prefix, a manager's epoch, a qosgate process's instance.
#pragma once

#include <string>

namespace qos {

/**
 * 64 random bits as 16 hex digits.  std::random_device may throw when the
 * system has no entropy source; then the clock and pid have to do.
 */
std::string randomHexId();

}  // namespace qos
