#include "control/common/ip_protocol.h"

#include <gtest/gtest.h>

namespace qos {
namespace {

TEST(IpProtocolTest, NamesAndNumbersBothWays) {
  for (const IpProtocolName& p : kIpProtocolNames) {
    EXPECT_EQ(ipProtocolNumber(p.name), p.number) << p.name;
    EXPECT_EQ(std::string_view(ipProtocolName(p.number)), p.name);
  }
  EXPECT_EQ(ipProtocolNumber("udp"), 17);
  EXPECT_EQ(ipProtocolNumber("icmpv6"), 58);
  EXPECT_EQ(ipProtocolNumber("UDP"), std::nullopt) << "names are lower case";
  EXPECT_EQ(ipProtocolNumber("any"), std::nullopt) << "a wildcard, not a protocol";
  EXPECT_EQ(ipProtocolName(47), nullptr);
}

TEST(IpProtocolTest, OnlyUdpTcpAndSctpHavePorts) {
  for (int n = 0; n < 256; ++n) {
    const bool expected = n == 6 || n == 17 || n == 132;
    EXPECT_EQ(ipProtocolHasPorts(static_cast<uint8_t>(n)), expected) << n;
  }
}

}  // namespace
}  // namespace qos
