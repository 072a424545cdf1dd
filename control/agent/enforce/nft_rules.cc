#include "control/agent/enforce/nft_rules.h"

#include <algorithm>
#include <cstdio>

#include "control/common/ip_prefix.h"
#include "control/common/ip_protocol.h"

namespace qos::agent {
namespace {

std::string table(const NftPlace& place) {
  return std::string(place.egress_device.empty() ? "inet " : "netdev ") + kNftTable;
}

std::string chainName(uint64_t flow_id) { return "flow_" + std::to_string(flow_id); }

const char* mapName(const control::FlowSpec& flow) {
  return flow.src.family == 6 ? "flows6" : "flows4";
}

std::string portText(uint16_t port) { return port == 0 ? "0-65535" : std::to_string(port); }

}  // namespace

std::string nftCreateTable(const NftPlace& place) {
  const std::string t = table(place);
  const std::string hook = place.egress_device.empty() ? "type filter hook output priority mangle"
                                                       : "type filter hook egress device \"" +
                                                             place.egress_device + "\" priority 0";
  return "add table " + t + "\n" + "add map " + t +
         " flows4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service . inet_service : "
         "verdict; flags interval; }\n" +
         "add map " + t +
         " flows6 { type ipv6_addr . ipv6_addr . inet_proto . inet_service . inet_service : "
         "verdict; flags interval; }\n" +
         "add chain " + t + " out { " + hook + "; policy accept; }\n" + "add rule " + t +
         " out ip saddr . ip daddr . meta l4proto . th sport . th dport vmap @flows4\n" +
         "add rule " + t +
         " out ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport vmap @flows6\n";
}

std::string nftDeleteTables() {
  // "add" first: deleting a table that is not there is an error, adding one
  // that is there is not.
  std::string out;
  for (const char* family : {"inet ", "netdev "}) {
    const std::string t = family + std::string(kNftTable);
    out.append("add table ").append(t).append("\ndelete table ").append(t).append("\n");
  }
  return out;
}

std::string tcHandleText(uint32_t handle) {
  char text[16];
  if ((handle & 0xFFFF) == 0) {
    std::snprintf(text, sizeof text, "%x:", handle >> 16);  // a qdisc's, as tc writes it
  } else {
    std::snprintf(text, sizeof text, "%x:%x", handle >> 16, handle & 0xFFFF);
  }
  return text;
}

std::string nftFlowKey(const control::FlowSpec& flow) {
  const char* proto = ipProtocolName(flow.protocol);
  return formatIpAddress(flow.src) + " . " + formatIpAddress(flow.dst) + " . " +
         (proto != nullptr ? std::string(proto) : std::to_string(flow.protocol)) + " . " +
         portText(flow.src_port) + " . " + portText(flow.dst_port);
}

std::string nftAddFlow(const NftPlace& place, const EnforcedFlow& f) {
  const std::string t = table(place);
  const std::string chain = chainName(f.flow_id);
  std::string out = "add chain " + t + " " + chain + "\n";
  if (f.police) {
    // The meter's bucket: rate in bytes per second (at least 1), depth the grant's burst.
    const uint64_t bytes_per_sec = std::max<uint64_t>(f.rate_bps / 8, 1);
    const uint64_t burst = std::max<uint64_t>(f.burst_bytes, 1);
    out += "add rule " + t + " " + chain + " limit rate over " + std::to_string(bytes_per_sec) +
           " bytes/second burst " + std::to_string(burst) + " bytes drop\n";
  }
  out += "add rule " + t + " " + chain + (f.flow.src.family == 6 ? " ip6" : " ip") + " dscp set " +
         std::to_string(f.dscp) + "\n";
  if (f.tc_class) {
    out += "add rule " + t + " " + chain + " meta priority set " + tcHandleText(*f.tc_class) + "\n";
  }
  out += "add element " + t + " " + mapName(f.flow) + " { " + nftFlowKey(f.flow) + " : jump " +
         chain + " }\n";
  return out;
}

std::string nftRemoveFlow(const NftPlace& place, const EnforcedFlow& f) {
  const std::string t = table(place);
  const std::string chain = chainName(f.flow_id);
  return "delete element " + t + " " + mapName(f.flow) + " { " + nftFlowKey(f.flow) + " }\n" +
         "flush chain " + t + " " + chain + "\n" + "delete chain " + t + " " + chain + "\n";
}

}  // namespace qos::agent
