#include "control/common/units.h"

#include <cstdint>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace qos {
namespace {

uint64_t rateOrDie(std::string_view text) {
  const Result<uint64_t> rate = parseRateBitsPerSec(text);
  EXPECT_TRUE(rate.ok()) << text << ": " << (rate.ok() ? "" : rate.error().message);
  return rate.ok() ? *rate : 0;
}

uint64_t sizeOrDie(std::string_view text) {
  const Result<uint64_t> size = parseSizeBytes(text);
  EXPECT_TRUE(size.ok()) << text << ": " << (size.ok() ? "" : size.error().message);
  return size.ok() ? *size : 0;
}

std::string rateError(std::string_view text) {
  const Result<uint64_t> rate = parseRateBitsPerSec(text);
  EXPECT_FALSE(rate.ok()) << text << " parsed as " << (rate.ok() ? *rate : 0);
  return rate.ok() ? "" : rate.error().message;
}

std::string sizeError(std::string_view text) {
  const Result<uint64_t> size = parseSizeBytes(text);
  EXPECT_FALSE(size.ok()) << text << " parsed as " << (size.ok() ? *size : 0);
  return size.ok() ? "" : size.error().message;
}

TEST(UnitsTest, RatesInBits) {
  EXPECT_EQ(rateOrDie("1mbit"), 1000000u);
  EXPECT_EQ(rateOrDie("100kbit"), 100000u);
  EXPECT_EQ(rateOrDie("1gbit"), 1000000000u);
  EXPECT_EQ(rateOrDie("800bit"), 800u);
  EXPECT_EQ(rateOrDie("10Gbit"), 10000000000u);
  EXPECT_EQ(rateOrDie("25Mbit"), 25000000u);
  EXPECT_EQ(rateOrDie("64Kbit"), 64000u);
  EXPECT_EQ(rateOrDie("1tbit"), 1000000000000u);
  EXPECT_EQ(rateOrDie("0kbit"), 0u);
}

TEST(UnitsTest, RatesInBytesAndAmbiguousUnitsRefused) {
  // tc reads "mbps" as megabytes per second; most people read megabits.  Refuse it.
  EXPECT_NE(rateError("1mbps").find("unknown unit 'mbps'"), std::string::npos);
  EXPECT_NE(rateError("5kbps").find("unknown unit"), std::string::npos);
  EXPECT_NE(rateError("100bps").find("unknown unit"), std::string::npos);
  EXPECT_NE(sizeError("100b").find("unknown unit 'b'"), std::string::npos);
  EXPECT_EQ(rateOrDie("100Bps"), 800u);
  EXPECT_EQ(rateOrDie("1kBps"), 8000u);
  EXPECT_EQ(rateOrDie("1MBps"), 8000000u);
  EXPECT_EQ(rateOrDie("1GBps"), 8000000000u);
}

TEST(UnitsTest, DecimalRates) {
  EXPECT_EQ(rateOrDie("1.5mbit"), 1500000u);
  EXPECT_EQ(rateOrDie("0.5kbit"), 500u);
  EXPECT_EQ(rateOrDie(".5kbit"), 500u);
  EXPECT_EQ(rateOrDie("2.kbit"), 2000u);
  EXPECT_EQ(rateOrDie("2.5gbit"), 2500000000u);
  EXPECT_EQ(rateOrDie("1.000001mbit"), 1000001u);
  EXPECT_EQ(rateOrDie("1.5 mbit"), 1500000u) << "a space before the unit is allowed";
}

TEST(UnitsTest, DecimalRatesAreExact) {
  // These once came out one too high: 0.3 * 1000 in doubles is 300.00000000000006,
  // and rounding up made it 301.
  EXPECT_EQ(rateOrDie("0.3kbit"), 300u);
  EXPECT_EQ(rateOrDie("2.675mbit"), 2675000u);
  EXPECT_EQ(rateOrDie("1.1mbit"), 1100000u);
  EXPECT_EQ(rateOrDie("0.7gbit"), 700000000u);
  EXPECT_EQ(rateOrDie("4.35kBps"), 34800u);
  for (int tenths = 0; tenths < 1000; ++tenths) {
    const std::string text =
        std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "kbit";
    EXPECT_EQ(rateOrDie(text), static_cast<uint64_t>(tenths) * 100) << text;
  }
  // A fraction of a bit per second is rounded up.
  EXPECT_EQ(rateOrDie("0.0001kbit"), 1u);
  EXPECT_EQ(rateOrDie("1.5bit"), 2u);
}

TEST(UnitsTest, Sizes) {
  EXPECT_EQ(sizeOrDie("16kB"), 16000u);
  EXPECT_EQ(sizeOrDie("16KB"), 16000u);
  EXPECT_EQ(sizeOrDie("64KiB"), 65536u);
  EXPECT_EQ(sizeOrDie("1500B"), 1500u);
  EXPECT_EQ(sizeOrDie("1500bytes"), 1500u);
  EXPECT_EQ(sizeOrDie("1.5MB"), 1500000u);
  EXPECT_EQ(sizeOrDie("2MiB"), 2097152u);
  EXPECT_EQ(sizeOrDie("1GiB"), 1073741824u);
  EXPECT_EQ(sizeOrDie("4GB"), 4000000000u);
  EXPECT_EQ(sizeOrDie("0.5KiB"), 512u);
}

TEST(UnitsTest, SizesInBitsRoundUpToBytes) {
  EXPECT_EQ(sizeOrDie("64kbit"), 8000u);
  EXPECT_EQ(sizeOrDie("8bit"), 1u);
  EXPECT_EQ(sizeOrDie("9bit"), 2u);
  EXPECT_EQ(sizeOrDie("1bit"), 1u);
  EXPECT_EQ(sizeOrDie("1mbit"), 125000u);
  EXPECT_EQ(sizeOrDie("0.3kbit"), 38u);   // 37.5 bytes
  EXPECT_EQ(sizeOrDie("2.4kbit"), 300u);  // exactly 300, not 301
}

TEST(UnitsTest, NoUnitIsAnError) {
  EXPECT_NE(rateError("1000000").find("no unit"), std::string::npos);
  EXPECT_NE(rateError("1.5").find("no unit"), std::string::npos);
  EXPECT_NE(sizeError("1500").find("no unit"), std::string::npos);
}

TEST(UnitsTest, UnknownUnitIsAnError) {
  const std::string message = rateError("10furlongs");
  EXPECT_NE(message.find("unknown unit 'furlongs'"), std::string::npos) << message;
  EXPECT_NE(message.find("10furlongs"), std::string::npos) << message;
  rateError("1mbitt");
  rateError("1 mbit/s");
  rateError("1kB");  // a size unit is not a rate
  rateError("1KiB");
  sizeError("1mbps");  // a rate unit is not a size
  sizeError("16kB ");  // trailing space
  sizeError("16KIB");
}

TEST(UnitsTest, EmptyAndGarbageAreErrors) {
  EXPECT_NE(rateError("").find("expected a number and a unit"), std::string::npos);
  EXPECT_NE(sizeError("").find("expected a number and a unit"), std::string::npos);
  for (const char* text : {"mbit", "abc", "-1mbit", "+1mbit", " 1mbit", ".", ".mbit", "1.2.3mbit",
                           "1e6bit", "0x10kbit", "1,5mbit", "\x01", "NaNmbit", "infmbit"}) {
    rateError(text);
    sizeError(text);
  }
}

TEST(UnitsTest, TooLargeIsAnError) {
  EXPECT_EQ(rateOrDie("1000000tbit"), 1000000000000000000u);  // 1e18, the largest allowed
  EXPECT_NE(rateError("1000001tbit").find("too large"), std::string::npos);
  EXPECT_NE(rateError("99999999999999999999999999gbit").find("expected a number"),
            std::string::npos);
  EXPECT_NE(sizeError("1000000000GiB").find("too large"), std::string::npos);
  // Many digits are fine as long as the value is not too large.
  EXPECT_EQ(rateOrDie("0.0000000000000000001tbit"), 1u);
}

TEST(UnitsTest, FormatRate) {
  EXPECT_EQ(formatRate(1000000), "1mbit");
  EXPECT_EQ(formatRate(1500000), "1500kbit");
  EXPECT_EQ(formatRate(64000), "64kbit");
  EXPECT_EQ(formatRate(800), "800bit");
  EXPECT_EQ(formatRate(1000000000), "1gbit");
  EXPECT_EQ(formatRate(2500000000), "2500mbit");
  EXPECT_EQ(formatRate(10000000000), "10gbit");
  EXPECT_EQ(formatRate(1001), "1001bit");
  EXPECT_EQ(formatRate(0), "0bit");
}

TEST(UnitsTest, FormatRateRoundTrips) {
  for (uint64_t rate :
       {uint64_t{0}, uint64_t{1}, uint64_t{999}, uint64_t{1000}, uint64_t{1001},
        uint64_t{123456789}, uint64_t{1000000000000}, uint64_t{1000000000000000000}}) {
    EXPECT_EQ(rateOrDie(formatRate(rate)), rate) << formatRate(rate);
  }
  for (uint64_t rate = 1; rate < 100000000000; rate = rate * 7 + 3) {
    EXPECT_EQ(rateOrDie(formatRate(rate)), rate) << formatRate(rate);
  }
}

}  // namespace
}  // namespace qos
