// Fuzz target for qosgate's TOML loader: any text is a config or an error
// naming file:line:column, never a crash, a hang or an exception.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "appliance/config/appliance_config.h"

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = qos::appliance::parseApplianceConfig(text, "/etc/qosgate/fuzz.toml");
  if (!config && config.error().message.find("fuzz.toml") == std::string::npos) {
    std::fprintf(stderr, "appliance_config_fuzz: an error that names no file: %s\n",
                 config.error().message.c_str());
    std::abort();
  }
  return 0;
}
