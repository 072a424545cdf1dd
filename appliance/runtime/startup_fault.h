// The start-up steps no input can make fail (an allocation of a few kB, the
// launch of a worker on an idle lcore), made to fail on purpose so that a
// test can see qosgate undo everything before them and say what failed:
// QOSGATE_FAIL_STEP=rcu or =launch in qosgate's environment.  Read during
// start-up only, never on the packet path.
#pragma once

#include <cstdlib>
#include <cstring>

namespace qos::appliance {

/** Whether the environment asks start-up @p step ("rcu", "launch") to fail. */
inline bool startupFault(const char* step) {
  const char* want = std::getenv("QOSGATE_FAIL_STEP");
  return want != nullptr && std::strcmp(want, step) == 0;
}

}  // namespace qos::appliance
