// Rates and sizes as operators write them: "1mbit", "100kbit", "16kB", "1.5MB".
// Converted once, here, into plain integers with their unit in the name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "control/common/result.h"

namespace qos {

/**
 * Parses a rate.  Units: bit, kbit, mbit, gbit (bits per second, SI: k=1000),
 * and Bps/kBps/MBps/GBps for bytes per second.  "mbps" is refused on purpose:
 * tc reads it as bytes, most people as bits.
 * A decimal point is allowed ("1.5mbit").  A bare number is refused: a rate
 * without a unit is the classic off-by-eight.
 * @return the rate in bits per second, or an error saying what is wrong.
 */
Result<uint64_t> parseRateBitsPerSec(std::string_view text);

/**
 * Parses a size.  Units: B, kB, MB, GB (SI, k=1000), KiB, MiB, GiB (binary),
 * and bit, kbit, mbit for sizes given in bits (rounded up to whole bytes).
 * A bare "b" is refused: bits or bytes?
 * @return the size in bytes, or an error saying what is wrong.
 */
Result<uint64_t> parseSizeBytes(std::string_view text);

/** "1mbit", "1500kbit", "64kbit", "800bit": the shortest exact form. */
std::string formatRate(uint64_t bits_per_sec);

/**
 * Parses a duration in whole seconds: one number and one unit, "60s", "5m",
 * "1h", "1d" (a bare number is refused, as a rate without a unit is).
 * @return seconds (> 0), or an Error saying what to write instead
 */
Result<uint32_t> parseDurationSec(std::string_view text);
/** A duration in milliseconds: "500ms", or anything parseDurationSec() takes. */
Result<uint64_t> parseDurationMs(std::string_view text);

}  // namespace qos
