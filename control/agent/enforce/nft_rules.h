// The nftables commands qos-agent's host enforcement runs, as text for
// libnftables (each buffer one transaction): its own table, and per grant a
// chain that marks, polices and picks the grant's shaping class.
//
//   table inet qos_agent            the output hook: every packet the host sends
//   (or table netdev qos_agent)     one device's egress hook: see NftPlace
//     maps flows4, flows4_dport, flows4_sport, flows4_noport (and flows6...):
//                          src . dst . proto [. sport] [. dport] -> goto flow_ID,
//                          one map per set of ports a grant names (a port 0
//                          is any); hash maps, not interval ones: a lookup
//                          costs a hash, whatever the number of grants
//     chain out            the maps, most specific first: the first grant
//                          found decides (goto: no other is looked at)
//     chain flow_ID        [limit rate over R bytes/second burst B bytes drop]
//                          ip dscp set D          (the kernel keeps ECN and the checksum)
//                          [meta priority set MAJOR:MINOR]   (the grant's HTB class)
//
// Nothing outside the table is touched; deleting it takes every rule back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "control/protocol/messages.h"

namespace qos::agent {

/** The agent's own nftables table (family inet). */
inline constexpr const char* kNftTable = "qos_agent";

/** One grant as the host enforces it. */
struct EnforcedFlow {
  uint64_t flow_id = 0;
  control::FlowSpec flow;  ///< packets this host sends: src is one of its addresses
  uint8_t dscp = 0;
  uint64_t rate_bps = 0;
  uint64_t burst_bytes = 0;
  bool police = false;  ///< drop what exceeds rate and burst
  /// Shaping: the HTB class (major:minor) its packets are queued in.
  std::optional<uint32_t> tc_class;
  bool operator==(const EnforcedFlow&) const = default;
};

/**
 * Where the table hooks in.  The output hook sees every packet the host
 * sends, but a packet dropped there fails the sender's sendmsg() with EPERM
 * (many UDP senders give up on it); a device's egress hook drops as a full
 * queue does, unseen by the sender.  So policing by nftables is done at the
 * egress device, everything else at the output hook.
 */
struct NftPlace {
  std::string egress_device;  ///< "": table inet, output hook; else table netdev, its egress
  bool operator==(const NftPlace&) const = default;
};

/** Creates the table, its maps and its chain at @p place (on an empty kernel). */
std::string nftCreateTable(const NftPlace& place);
/** Deletes the table of either family if it is there (what an earlier run left), and nothing else.
 */
std::string nftDeleteTables();
/** Adds @p flow's chain and map element: one transaction. */
std::string nftAddFlow(const NftPlace& place, const EnforcedFlow& flow);
/** Removes @p flow's map element and chain: one transaction. */
std::string nftRemoveFlow(const NftPlace& place, const EnforcedFlow& flow);
/** "198.18.1.10 . 198.19.1.20 . udp . 5004": @p flow's key in its map (the ports it names). */
std::string nftFlowKey(const control::FlowSpec& flow);
/** "flows4_dport": the map @p flow's key goes in. */
std::string nftMapOf(const control::FlowSpec& flow);
/** "a9e0:12" for a class, "a9e0:" for a qdisc (minor 0), as tc writes them. */
std::string tcHandleText(uint32_t handle);

}  // namespace qos::agent
