// Assertions with their reason, as Envoy's: QOS_ASSERT is checked in debug
// builds only, QOS_RELEASE_ASSERT always.  Both print the reason and abort.
#pragma once

#include <cstdio>
#include <cstdlib>

#define QOS_RELEASE_ASSERT(cond, reason)                                                    \
  do {                                                                                      \
    if (!(cond)) [[unlikely]] {                                                             \
      std::fprintf(stderr, "%s:%d: assertion '%s' failed: %s\n", __FILE__, __LINE__, #cond, \
                   reason);                                                                 \
      std::abort();                                                                         \
    }                                                                                       \
  } while (false)

#ifdef NDEBUG
#define QOS_ASSERT(cond, reason) \
  do {                           \
    (void)sizeof(cond);          \
  } while (false)
#else
#define QOS_ASSERT(cond, reason) QOS_RELEASE_ASSERT(cond, reason)
#endif
