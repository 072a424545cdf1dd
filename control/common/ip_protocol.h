// IP protocols by the names configs, messages and tables use for them: one
// table for the appliance, the manager and the tools.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace qos {

struct IpProtocolName {
  std::string_view name;
  uint8_t number;  ///< IANA protocol number
  bool has_ports;  ///< its header starts with a source and a destination port
};

inline constexpr std::array<IpProtocolName, 5> kIpProtocolNames = {{
    {"udp", 17, true},
    {"tcp", 6, true},
    {"sctp", 132, true},
    {"icmp", 1, false},
    {"icmpv6", 58, false},
}};

/** The number of a protocol named in kIpProtocolNames; nullopt for any other name. */
constexpr std::optional<uint8_t> ipProtocolNumber(std::string_view name) {
  for (const IpProtocolName& p : kIpProtocolNames) {
    if (p.name == name) {
      return p.number;
    }
  }
  return std::nullopt;
}

/** The name of @p number in kIpProtocolNames; nullptr for any other number. */
constexpr const char* ipProtocolName(uint8_t number) {
  for (const IpProtocolName& p : kIpProtocolNames) {
    if (p.number == number) {
      return p.name.data();  // the literals above are NUL-terminated
    }
  }
  return nullptr;
}

/** Whether @p number is UDP, TCP or SCTP: the protocols whose flows have ports. */
constexpr bool ipProtocolHasPorts(uint8_t number) {
  for (const IpProtocolName& p : kIpProtocolNames) {
    if (p.number == number) {
      return p.has_ports;
    }
  }
  return false;
}

}  // namespace qos
