#include "control/common/units.h"

#include <array>
#include <cctype>
#include <charconv>
#include <limits>

#include "control/common/port_range.h"

namespace qos {
namespace {

// The result is number * numerator / denominator, rounded up: exact integer
// arithmetic, so "0.3kbit" is 300 and not 301 as a double product would make it.
struct Unit {
  std::string_view name;
  uint64_t numerator;
  uint64_t denominator;
};

// GCC and Clang both have a 128-bit integer; __extension__ keeps -Wpedantic quiet.
__extension__ typedef unsigned __int128 Uint128;  // NOLINT(modernize-use-using)

// A non-negative decimal exactly as written: mantissa / 10^fraction_digits.
struct Decimal {
  uint64_t mantissa = 0;
  int fraction_digits = 0;
};

// Splits "1.5mbit" into 15/10^1 and "mbit".  Returns false if there is no
// number, or more digits than fit in 64 bits.
bool splitNumber(std::string_view text, Decimal& number, std::string_view& unit) {
  size_t i = 0;
  bool any_digit = false;
  bool seen_point = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.' && !seen_point) {
      seen_point = true;
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) {
      break;
    }
    if (number.mantissa > (std::numeric_limits<uint64_t>::max() - 9) / 10) {
      return false;
    }
    number.mantissa = number.mantissa * 10 + static_cast<uint64_t>(c - '0');
    number.fraction_digits += seen_point ? 1 : 0;
    any_digit = true;
  }
  if (!any_digit) {
    return false;
  }
  unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') {
    unit.remove_prefix(1);
  }
  return true;
}

// Larger results are refused: they are typos, and they keep later sums of
// rates far from overflow.
constexpr uint64_t kMaxValue = 1000000000000000000;  // 1e18

template <size_t N>
Result<uint64_t> parseWithUnits(std::string_view text, const std::array<Unit, N>& units,
                                std::string_view what, std::string_view examples) {
  Decimal number;
  std::string_view unit;
  if (!splitNumber(text, number, unit)) {
    return makeError("invalid " + std::string(what) + " '" + std::string(text) +
                     "': expected a number and a unit, e.g. " + std::string(examples));
  }
  if (unit.empty()) {
    return makeError(std::string(what) + " '" + std::string(text) + "' has no unit: write e.g. " +
                     std::string(examples));
  }
  for (const Unit& u : units) {
    if (u.name == unit) {
      // mantissa < 2^64 and numerator < 2^40, so the product fits in 128
      // bits; the mantissa has at most 20 digits, so 8 * 10^20 fits too.
      Uint128 divisor = u.denominator;
      for (int d = 0; d < number.fraction_digits; ++d) {
        divisor *= 10;
      }
      const Uint128 value =
          (static_cast<Uint128>(number.mantissa) * u.numerator + divisor - 1) / divisor;
      if (value > kMaxValue) {
        return makeError(std::string(what) + " '" + std::string(text) + "' is too large");
      }
      return static_cast<uint64_t>(value);
    }
  }
  return makeError("unknown unit '" + std::string(unit) + "' in " + std::string(what) + " '" +
                   std::string(text) + "': use e.g. " + std::string(examples));
}

constexpr std::array<Unit, 12> kRateUnits = {{
    {"bit", 1, 1},
    {"kbit", 1000, 1},
    {"mbit", 1000000, 1},
    {"gbit", 1000000000, 1},
    {"Mbit", 1000000, 1},
    {"Gbit", 1000000000, 1},
    {"Kbit", 1000, 1},
    {"Bps", 8, 1},
    {"kBps", 8000, 1},
    {"MBps", 8000000, 1},
    {"GBps", 8000000000, 1},
    {"tbit", 1000000000000, 1},
}};

constexpr std::array<Unit, 12> kSizeUnits = {{
    {"B", 1, 1},
    {"kB", 1000, 1},
    {"KB", 1000, 1},
    {"MB", 1000000, 1},
    {"GB", 1000000000, 1},
    {"KiB", 1024, 1},
    {"MiB", 1048576, 1},
    {"GiB", 1073741824, 1},
    {"bit", 1, 8},
    {"kbit", 1000, 8},
    {"mbit", 1000000, 8},
    {"bytes", 1, 1},
}};

}  // namespace

Result<uint64_t> parseRateBitsPerSec(std::string_view text) {
  return parseWithUnits(text, kRateUnits, "rate", "\"1mbit\", \"100kbit\", \"1gbit\"");
}

Result<uint64_t> parseSizeBytes(std::string_view text) {
  return parseWithUnits(text, kSizeUnits, "size", "\"16kB\", \"1500B\", \"64KiB\"");
}

std::string formatRate(uint64_t bits_per_sec) {
  if (bits_per_sec != 0 && bits_per_sec % 1000000000 == 0) {
    return std::to_string(bits_per_sec / 1000000000) + "gbit";
  }
  if (bits_per_sec != 0 && bits_per_sec % 1000000 == 0) {
    return std::to_string(bits_per_sec / 1000000) + "mbit";
  }
  if (bits_per_sec != 0 && bits_per_sec % 1000 == 0) {
    return std::to_string(bits_per_sec / 1000) + "kbit";
  }
  return std::to_string(bits_per_sec) + "bit";
}

Result<uint32_t> parseDurationSec(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  const std::string quoted = "'" + std::string(text) + "'";
  if (digits == 0) {
    return makeError("invalid duration " + quoted +
                     ": expected e.g. \"60s\", \"5m\", \"1h\", \"1d\"");
  }
  const std::string_view unit = text.substr(digits);
  uint32_t scale = 0;
  if (unit == "s") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 60 * 60;
  } else if (unit == "d") {
    scale = 24 * 60 * 60;
  } else if (unit.starts_with('.')) {
    return makeError("duration " + quoted +
                     " is not a whole number: write e.g. \"90m\" for \"1.5h\"");
  } else if (unit.empty()) {
    return makeError("duration " + quoted + " has no unit: write e.g. \"60s\", \"5m\", \"1h\"");
  } else {
    return makeError("unknown unit '" + std::string(unit) + "' in duration " + quoted +
                     ": expected s, m, h or d (whole seconds)");
  }
  uint64_t count = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, count);
  if (ec != std::errc() || end != text.data() + digits ||
      count > std::numeric_limits<uint32_t>::max() / scale) {
    return makeError("duration " + quoted + " is too long");
  }
  if (count == 0) {
    return makeError("duration " + quoted + " must be > 0");
  }
  return static_cast<uint32_t>(count * scale);
}

Result<uint64_t> parseDurationMs(std::string_view text) {
  if (text.ends_with("ms")) {
    const std::string_view digits = text.substr(0, text.size() - 2);
    unsigned ms = 0;
    if (digits.empty() || !parseUnsigned(digits, ms)) {
      return makeError("invalid duration '" + std::string(text) + "': expected e.g. \"500ms\"");
    }
    if (ms == 0) {
      return makeError("duration '" + std::string(text) + "' must be > 0");
    }
    return uint64_t{ms};
  }
  Result<uint32_t> seconds = parseDurationSec(text);
  if (!seconds) {
    return seconds.error();
  }
  return uint64_t{*seconds} * 1000;
}

}  // namespace qos
