#include "control/common/ip_prefix.h"

#include <array>
#include <cstdint>
#include <random>
#include <string>

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace qos {
namespace {

IpAddress v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddress address;
  address.family = 4;
  address.bytes[0] = a;
  address.bytes[1] = b;
  address.bytes[2] = c;
  address.bytes[3] = d;
  return address;
}

std::string libcText(const IpAddress& address) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  inet_ntop(address.family == 4 ? AF_INET : AF_INET6, address.bytes.data(), text.data(),
            text.size());
  return text.data();
}

// formatIpAddress() writes IPv4 by hand: it must say what inet_ntop says.
TEST(FormatIpAddress, Ipv4AsInetNtopWritesIt) {
  for (const IpAddress& address : {v4(0, 0, 0, 0), v4(255, 255, 255, 255), v4(198, 18, 1, 10),
                                   v4(10, 0, 100, 9), v4(1, 22, 203, 0)}) {
    EXPECT_EQ(formatIpAddress(address), libcText(address));
  }
  std::mt19937 random(7);  // NOLINT(cert-msc32-c,cert-msc51-cpp): reproducible on purpose
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 100'000; ++i) {
    const IpAddress address =
        v4(static_cast<uint8_t>(byte(random)), static_cast<uint8_t>(byte(random)),
           static_cast<uint8_t>(byte(random)), static_cast<uint8_t>(byte(random)));
    const std::string text = formatIpAddress(address);
    ASSERT_EQ(text, libcText(address));
    ASSERT_EQ(*parseIpAddress(text), address) << text;
  }
}

TEST(FormatIpAddress, Ipv6AndUnset) {
  const IpAddress v6 = *parseIpAddress("2001:db8:a::1");
  EXPECT_EQ(formatIpAddress(v6), "2001:db8:a::1");
  EXPECT_EQ(formatIpAddress(IpAddress{}), "-");
}

}  // namespace
}  // namespace qos
