#include "control/common/ip_prefix.h"

#include <algorithm>
#include <charconv>

#include <arpa/inet.h>

namespace qos {
namespace {

unsigned maxBits(uint8_t family) { return family == 4 ? 32 : 128; }

bool prefixBitsMatch(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b,
                     unsigned length_bits) {
  const unsigned full_bytes = length_bits / 8;
  for (unsigned i = 0; i < full_bytes; ++i) {
    if (a[i] != b[i]) {
      return false;
    }
  }
  const unsigned rest = length_bits % 8;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (a[full_bytes] & mask) == (b[full_bytes] & mask);
}

}  // namespace

bool IpPrefix::contains(const IpAddress& addr) const {
  return addr.family == address.family && prefixBitsMatch(address.bytes, addr.bytes, length_bits);
}

bool IpPrefix::overlaps(const IpPrefix& other) const {
  if (other.address.family != address.family) {
    return false;
  }
  const unsigned shorter = std::min(length_bits, other.length_bits);
  return prefixBitsMatch(address.bytes, other.address.bytes, shorter);
}

Result<IpAddress> parseIpAddress(std::string_view text) {
  const std::string s(text);
  IpAddress addr;
  if (s.find(':') != std::string::npos) {
    if (inet_pton(AF_INET6, s.c_str(), addr.bytes.data()) != 1) {
      return makeError("invalid IPv6 address '" + s + "'");
    }
    addr.family = 6;
    return addr;
  }
  if (inet_pton(AF_INET, s.c_str(), addr.bytes.data()) != 1) {
    return makeError("invalid IPv4 address '" + s + "'");
  }
  addr.family = 4;
  return addr;
}

Result<IpPrefix> parseIpPrefix(std::string_view text) {
  const size_t slash = text.find('/');
  auto addr = parseIpAddress(text.substr(0, slash));
  if (!addr) {
    return addr.error();
  }
  IpPrefix prefix;
  prefix.address = *addr;
  prefix.length_bits = static_cast<uint8_t>(maxBits(addr->family));
  if (slash != std::string_view::npos) {
    const std::string_view len_text = text.substr(slash + 1);
    unsigned len = 0;
    const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (ec != std::errc() || end != len_text.data() + len_text.size() || len_text.empty() ||
        len > maxBits(addr->family)) {
      return makeError("invalid prefix length in '" + std::string(text) + "': expected 0.." +
                       std::to_string(maxBits(addr->family)));
    }
    prefix.length_bits = static_cast<uint8_t>(len);
  }
  IpAddress masked = prefix.address;
  for (unsigned bit = prefix.length_bits; bit < 128; ++bit) {
    masked.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  if (masked != prefix.address) {
    return makeError("prefix '" + std::string(text) + "' has host bits set below /" +
                     std::to_string(prefix.length_bits) + " (did you mean " +
                     formatIpAddress(masked) + "/" + std::to_string(prefix.length_bits) + "?)");
  }
  return prefix;
}

std::string formatIpAddress(const IpAddress& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.family == 4) {
    // Dotted decimal by hand: inet_ntop goes through sprintf, and qosmgr
    // formats two addresses into every grant it answers.  At most 15
    // characters: std::string holds them without allocating.
    std::string text;
    for (size_t i = 0; i < 4; ++i) {
      if (i != 0) {
        text += '.';
      }
      const unsigned byte = addr.bytes[i];
      if (byte >= 100) {
        text += static_cast<char>('0' + byte / 100);
      }
      if (byte >= 10) {
        text += static_cast<char>('0' + byte / 10 % 10);
      }
      text += static_cast<char>('0' + byte % 10);
    }
    return text;
  }
  if (addr.family == 6) {
    inet_ntop(AF_INET6, addr.bytes.data(), buf, sizeof(buf));
  } else {
    return "-";
  }
  return buf;
}

std::string formatIpPrefix(const IpPrefix& prefix) {
  return formatIpAddress(prefix.address) + "/" + std::to_string(prefix.length_bits);
}

}  // namespace qos
