#include "control/agent/enforce/nft_rules.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <initializer_list>
#include <string_view>

#include "control/common/ip_prefix.h"
#include "control/common/ip_protocol.h"

namespace qos::agent {
namespace {

std::string table(const NftPlace& place) {
  return std::string(place.egress_device.empty() ? "inet " : "netdev ") + kNftTable;
}

std::string chainName(uint64_t flow_id) { return "flow_" + std::to_string(flow_id); }

void append(std::string& out, std::initializer_list<std::string_view> parts) {
  for (const std::string_view part : parts) {
    out.append(part);
  }
}

/** The maps, most specific first: which of a flow's ports its key holds. */
struct MapKind {
  const char* suffix;  ///< of the map's name
  bool sport;          ///< the key holds the source port
  bool dport;          ///< the key holds the destination port
};
constexpr std::array<MapKind, 4> kMapKinds = {{
    {"", true, true},
    {"_dport", false, true},
    {"_sport", true, false},
    {"_noport", false, false},
}};

const MapKind& kindOf(const control::FlowSpec& flow) {
  return kMapKinds[(flow.src_port == 0 ? 1 : 0) + (flow.dst_port == 0 ? 2 : 0)];
}

std::string mapName(int family, const MapKind& kind) {
  return std::string(family == 6 ? "flows6" : "flows4") + kind.suffix;
}

}  // namespace

std::string nftCreateTable(const NftPlace& place) {
  const std::string t = table(place);
  const std::string hook = place.egress_device.empty() ? "type filter hook output priority mangle"
                                                       : "type filter hook egress device \"" +
                                                             place.egress_device + "\" priority 0";
  std::string maps;
  std::string rules;
  for (const int family : {4, 6}) {
    const std::string addr = family == 6 ? "ipv6_addr" : "ipv4_addr";
    const std::string ip = family == 6 ? "ip6" : "ip";
    for (const MapKind& kind : kMapKinds) {
      const std::string name = mapName(family, kind);
      append(maps, {"add map ", t, " ", name, " { type ", addr, " . ", addr, " . inet_proto"});
      std::string key;
      append(key, {ip, " saddr . ", ip, " daddr . meta l4proto"});
      if (kind.sport) {
        maps += " . inet_service";
        key += " . th sport";
      }
      if (kind.dport) {
        maps += " . inet_service";
        key += " . th dport";
      }
      maps += " : verdict; }\n";
      append(rules, {"add rule ", t, " out ", key, " vmap @", name, "\n"});
    }
  }
  return "add table " + t + "\n" + maps + "add chain " + t + " out { " + hook +
         "; policy accept; }\n" + rules;
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
  std::string key = formatIpAddress(flow.src) + " . " + formatIpAddress(flow.dst) + " . " +
                    (proto != nullptr ? std::string(proto) : std::to_string(flow.protocol));
  if (flow.src_port != 0) {
    key += " . " + std::to_string(flow.src_port);
  }
  if (flow.dst_port != 0) {
    key += " . " + std::to_string(flow.dst_port);
  }
  return key;
}

std::string nftMapOf(const control::FlowSpec& flow) {
  return mapName(flow.src.family, kindOf(flow));
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
  out += "add element " + t + " " + nftMapOf(f.flow) + " { " + nftFlowKey(f.flow) + " : goto " +
         chain + " }\n";
  return out;
}

std::string nftRemoveFlow(const NftPlace& place, const EnforcedFlow& f) {
  const std::string t = table(place);
  const std::string chain = chainName(f.flow_id);
  return "delete element " + t + " " + nftMapOf(f.flow) + " { " + nftFlowKey(f.flow) + " }\n" +
         "flush chain " + t + " " + chain + "\n" + "delete chain " + t + " " + chain + "\n";
}

}  // namespace qos::agent
