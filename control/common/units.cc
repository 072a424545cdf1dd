#include "control/common/units.h"

#include <array>
#include <cctype>
#include <limits>

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

}  // namespace qos
