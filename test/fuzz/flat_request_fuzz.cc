// Differential fuzz target: the fast reader of provision and release
// requests (decodeFlatRequest, simdjson) against the general one
// (decodeRequest, nlohmann).  Whatever the fast path takes, the general path
// must take and read identically; any disagreement aborts.  One FlatRequest
// is reused across inputs, as the server reuses its own.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "test/fakes/flat_agreement.h"

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static qos::control::FlatRequest flat;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const qos::test::FlatAgreement result = qos::test::compareFlatWithGeneral(text, flat);
  if (result.disagreement) {
    std::fprintf(stderr, "flat_request_fuzz: the two paths disagree: %s\n",
                 result.disagreement->c_str());
    std::abort();
  }
  return 0;
}
