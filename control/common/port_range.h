// Port ranges as configs write them: 0 (any), 5004, or "16384-32767".
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "control/common/result.h"

namespace qos {

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 65535;
  bool contains(uint16_t port) const { return port >= first && port <= last; }
  bool operator==(const PortRange&) const = default;
};

/** Parses a whole decimal number with nothing around it. */
inline bool parseUnsigned(std::string_view text, unsigned& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

/** "5004" or "1000-2000"; "0" alone means any port. */
inline Result<PortRange> parsePortRange(std::string_view text) {
  const size_t dash = text.find('-');
  unsigned first = 0;
  unsigned last = 0;
  const bool ok = dash == std::string_view::npos
                      ? parseUnsigned(text, first) && (last = first, true)
                      : parseUnsigned(text.substr(0, dash), first) &&
                            parseUnsigned(text.substr(dash + 1), last);
  if (!ok || first > 65535 || last > 65535 || first > last) {
    return makeError("expected a port 0..65535 or a range \"FIRST-LAST\" with FIRST <= LAST");
  }
  if (dash == std::string_view::npos && first == 0) {
    return PortRange{};
  }
  return PortRange{static_cast<uint16_t>(first), static_cast<uint16_t>(last)};
}

}  // namespace qos
