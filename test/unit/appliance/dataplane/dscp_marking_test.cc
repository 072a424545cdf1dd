#include "appliance/dataplane/dscp_marking.h"

#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace qos::appliance {
namespace {

// A checksum written independently of the code under test: RFC 1071, a
// 32-bit accumulator, carries folded at the end.
uint16_t referenceChecksum(const std::vector<uint8_t>& header) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < header.size(); i += 2) {
    if (i == 10) {
      continue;  // the checksum field itself counts as zero
    }
    sum += static_cast<uint32_t>(header[i] << 8 | header[i + 1]);
  }
  while (sum > 0xFFFF) {
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}

uint16_t storedChecksum(const std::vector<uint8_t>& header) {
  return static_cast<uint16_t>(header[10] << 8 | header[11]);
}

void storeChecksum(std::vector<uint8_t>& header, uint16_t checksum) {
  header[10] = static_cast<uint8_t>(checksum >> 8);
  header[11] = static_cast<uint8_t>(checksum);
}

/** A random IPv4 header with IHL 5..15, random options bytes and a valid checksum. */
std::vector<uint8_t> randomIpv4Header(std::mt19937& rng) {
  const unsigned ihl = 5 + rng() % 11;
  std::vector<uint8_t> header(size_t{ihl} * 4);
  for (uint8_t& byte : header) {
    byte = static_cast<uint8_t>(rng());
  }
  header[0] = static_cast<uint8_t>(0x40 | ihl);
  storeChecksum(header, referenceChecksum(header));
  return header;
}

TEST(DscpMarkingTest, ChecksumMatchesReference) {
  std::mt19937 rng(7);
  for (int i = 0; i < 1000; ++i) {
    std::vector<uint8_t> header = randomIpv4Header(rng);
    EXPECT_EQ(ipv4HeaderChecksum(header.data(), static_cast<unsigned>(header.size())), 0)
        << "a header with a valid checksum sums to zero";
    const uint16_t expected = storedChecksum(header);
    storeChecksum(header, 0);
    EXPECT_EQ(ipv4HeaderChecksum(header.data(), static_cast<unsigned>(header.size())), expected);
  }
}

TEST(DscpMarkingTest, ChecksumKnownVector) {
  // The example header of RFC 1071 / Wikipedia's "IPv4 header checksum": 0xb861.
  const std::array<uint8_t, 20> header = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40,
                                          0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
                                          0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(ipv4HeaderChecksum(header.data(), 20), 0xb861);
  // An odd length pads the last byte as the high half of a word.
  const std::array<uint8_t, 3> odd = {0x12, 0x34, 0x56};
  EXPECT_EQ(ipv4HeaderChecksum(odd.data(), 3), static_cast<uint16_t>(~(0x1234 + 0x5600)));
}

TEST(DscpMarkingTest, Ipv4RandomHeaders) {
  std::mt19937 rng(42);
  for (int i = 0; i < 10000; ++i) {
    const std::vector<uint8_t> before = randomIpv4Header(rng);
    std::vector<uint8_t> after = before;
    const auto dscp = static_cast<uint8_t>(rng() % 64);
    setDscpIpv4(after.data(), dscp);

    ASSERT_EQ(after[1] >> 2, dscp) << "header " << i;
    ASSERT_EQ(after[1] & 0x03, before[1] & 0x03) << "ECN kept, header " << i;
    ASSERT_EQ(storedChecksum(after), referenceChecksum(after)) << "header " << i;
    ASSERT_EQ(ipv4HeaderChecksum(after.data(), static_cast<unsigned>(after.size())), 0);
    for (size_t b = 0; b < before.size(); ++b) {
      if (b != 1 && b != 10 && b != 11) {
        ASSERT_EQ(after[b], before[b]) << "byte " << b << " of header " << i;
      }
    }
  }
}

TEST(DscpMarkingTest, Ipv4SameDscpChangesNothing) {
  std::mt19937 rng(3);
  for (int i = 0; i < 100; ++i) {
    const std::vector<uint8_t> before = randomIpv4Header(rng);
    std::vector<uint8_t> after = before;
    setDscpIpv4(after.data(), static_cast<uint8_t>(before[1] >> 2));
    EXPECT_EQ(after, before);
  }
}

// Finds an identification value that makes the header's correct checksum
// 0x0000 (its other words sum to 0xFFFF), so the corner cases of RFC 1624
// section 3 can be hit on purpose.
void makeChecksumZero(std::vector<uint8_t>& header) {
  for (uint32_t id = 0; id <= 0xFFFF; ++id) {
    header[4] = static_cast<uint8_t>(id >> 8);
    header[5] = static_cast<uint8_t>(id);
    if (referenceChecksum(header) == 0) {
      storeChecksum(header, 0);
      return;
    }
  }
  FAIL() << "no identification gives checksum 0";
}

TEST(DscpMarkingTest, Ipv4ResultIsZeroNotFfff) {
  // After the rewrite the correct checksum is 0x0000.  RFC 1624 eqn. 2 would
  // give 0xFFFF here; a receiver accepts both, but a full recompute (and a
  // byte-exact comparison in a test or capture) says 0x0000.
  std::vector<uint8_t> header = {0x45, 0x00, 0x05, 0xdc, 0, 0, 0x40, 0x00, 0x40, 0x06,
                                 0,    0,    10,   0,    0, 1, 10,   0,    0,    2};
  header[1] = 46 << 2;
  makeChecksumZero(header);
  ASSERT_EQ(storedChecksum(header), 0x0000);
  header[1] = 0;  // start from DSCP 0 and a correct checksum
  storeChecksum(header, referenceChecksum(header));
  ASSERT_NE(storedChecksum(header), 0x0000);

  setDscpIpv4(header.data(), 46);
  EXPECT_EQ(header[1], 46 << 2);
  EXPECT_EQ(storedChecksum(header), 0x0000);
  EXPECT_EQ(ipv4HeaderChecksum(header.data(), 20), 0);
}

TEST(DscpMarkingTest, Ipv4StartingFromZeroChecksum) {
  std::vector<uint8_t> header = {
      0x46, 0x01, 0x00, 0x40, 0,   0, 0x00, 0x00, 0x01, 0x11, 0, 0,
      192,  0,    2,    1,    192, 0, 2,    2,    0x94, 0x04, 0, 0};  // router alert option
  makeChecksumZero(header);
  for (uint8_t dscp = 0; dscp < 64; ++dscp) {
    std::vector<uint8_t> copy = header;
    setDscpIpv4(copy.data(), dscp);
    EXPECT_EQ(storedChecksum(copy), referenceChecksum(copy)) << int{dscp};
    EXPECT_EQ(copy[1], (dscp << 2) | 0x01) << int{dscp};
  }
  // 0xFFFF is the other one's complement zero; some stacks send it.  The
  // update must still give a checksum that verifies.
  storeChecksum(header, 0xFFFF);
  ASSERT_EQ(ipv4HeaderChecksum(header.data(), 24), 0);
  for (uint8_t dscp = 0; dscp < 64; ++dscp) {
    std::vector<uint8_t> copy = header;
    setDscpIpv4(copy.data(), dscp);
    EXPECT_EQ(ipv4HeaderChecksum(copy.data(), 24), 0) << int{dscp};
  }
}

TEST(DscpMarkingTest, Ipv4AllDscpAndEcn) {
  std::vector<uint8_t> header = {0x45, 0, 0x00, 0x54, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01,
                                 0,    0, 172,  16,   10,   99,   172,  16,   10,   12};
  for (unsigned ecn = 0; ecn < 4; ++ecn) {
    for (unsigned old_dscp = 0; old_dscp < 64; old_dscp += 9) {
      header[1] = static_cast<uint8_t>(old_dscp << 2 | ecn);
      storeChecksum(header, referenceChecksum(header));
      for (uint8_t dscp = 0; dscp < 64; ++dscp) {
        std::vector<uint8_t> copy = header;
        setDscpIpv4(copy.data(), dscp);
        EXPECT_EQ(copy[1], dscp << 2 | ecn);
        EXPECT_EQ(storedChecksum(copy), referenceChecksum(copy));
      }
    }
  }
}

std::array<uint8_t, 40> ipv6Header(uint8_t traffic_class, uint32_t flow_label) {
  std::array<uint8_t, 40> header{};
  header[0] = static_cast<uint8_t>(0x60 | traffic_class >> 4);
  header[1] = static_cast<uint8_t>((traffic_class & 0x0F) << 4 | (flow_label >> 16 & 0x0F));
  header[2] = static_cast<uint8_t>(flow_label >> 8);
  header[3] = static_cast<uint8_t>(flow_label);
  for (size_t i = 4; i < header.size(); ++i) {
    header[i] = static_cast<uint8_t>(i * 37 + 5);
  }
  return header;
}

uint8_t trafficClass(const std::array<uint8_t, 40>& header) {
  return static_cast<uint8_t>((header[0] & 0x0F) << 4 | header[1] >> 4);
}

uint32_t flowLabel(const std::array<uint8_t, 40>& header) {
  return static_cast<uint32_t>((header[1] & 0x0F) << 16 | header[2] << 8 | header[3]);
}

TEST(DscpMarkingTest, Ipv6AllDscpAndEcn) {
  for (uint32_t flow_label : {0x00000u, 0xFFFFFu, 0xA5A5Au, 0x5A5A5u}) {
    for (unsigned old_dscp : {0u, 63u, 21u, 42u}) {
      for (unsigned ecn = 0; ecn < 4; ++ecn) {
        const auto before = ipv6Header(static_cast<uint8_t>(old_dscp << 2 | ecn), flow_label);
        for (uint8_t dscp = 0; dscp < 64; ++dscp) {
          auto after = before;
          setDscpIpv6(after.data(), dscp);
          ASSERT_EQ(after[0] >> 4, 6) << "version kept";
          ASSERT_EQ(trafficClass(after), dscp << 2 | ecn);
          ASSERT_EQ(flowLabel(after), flow_label);
          for (size_t b = 2; b < after.size(); ++b) {
            ASSERT_EQ(after[b], before[b]) << "byte " << b;
          }
        }
      }
    }
  }
}

TEST(DscpMarkingTest, OutOfRangeDscpNeverTouchesOtherBits) {
  // The API takes 0..63; the upper two bits of a larger value are dropped
  // rather than spilling into the version nibble or the ECN bits.
  auto v6 = ipv6Header(0x02, 0x12345);
  setDscpIpv6(v6.data(), 0xFF);
  EXPECT_EQ(v6[0] >> 4, 6);
  EXPECT_EQ(trafficClass(v6), 0xFE);
  EXPECT_EQ(flowLabel(v6), 0x12345u);

  std::vector<uint8_t> v4 = {0x45, 0x01, 0x00, 0x1c, 0, 0, 0,  0, 0x40, 0x11,
                             0,    0,    10,   0,    0, 1, 10, 0, 0,    2};
  storeChecksum(v4, referenceChecksum(v4));
  setDscpIpv4(v4.data(), 0xC0 | 10);
  EXPECT_EQ(v4[1], 10 << 2 | 0x01);
  EXPECT_EQ(storedChecksum(v4), referenceChecksum(v4));
}

}  // namespace
}  // namespace qos::appliance
