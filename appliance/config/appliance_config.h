// The appliance's configuration: the logical model of qosgate.toml, fully
// validated.  Everything here is in plain units (bytes, bits per second,
// DSCP numbers); translation into DPDK parameters happens once, when rules
// are installed (appliance/flows/).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/common/ip_prefix.h"
#include "control/common/port_range.h"
#include "control/common/result.h"

namespace qos::appliance {

/** What happens to a packet of a given color, or matched by a class rule. */
struct PacketAction {
  enum class Kind : uint8_t {
    Pass,    ///< forward: a flow's packet keeps the flow's DSCP; a class rule's keeps its own
    Remark,  ///< forward with DSCP `dscp`
    Drop,    ///< drop and count
  };
  Kind kind = Kind::Pass;
  uint8_t dscp = 0;  ///< 0..63, for Remark

  bool operator==(const PacketAction&) const = default;
};

enum class MeterMode : uint8_t {
  Srtcm,  ///< single rate three color marker, RFC 2697: cir, cbs, ebs
  Trtcm,  ///< two rate three color marker, RFC 2698: cir, pir, cbs, pbs
};

/** A color-blind policer. */
struct MeterConfig {
  MeterMode mode = MeterMode::Srtcm;
  uint64_t cir_bytes_per_sec = 0;  ///< committed information rate
  uint64_t cbs_bytes = 0;          ///< committed burst size
  uint64_t ebs_bytes = 0;          ///< excess burst size (srTCM)
  uint64_t pir_bytes_per_sec = 0;  ///< peak information rate (trTCM)
  uint64_t pbs_bytes = 0;          ///< peak burst size (trTCM)
  PacketAction yellow{PacketAction::Kind::Pass, 0};
  PacketAction red{PacketAction::Kind::Drop, 0};

  bool operator==(const MeterConfig&) const = default;
};

/** Protocol selector of a rule; 0 means any. */
inline constexpr uint8_t kAnyProtocol = 0;

/** An admitted flow: an exact 5-tuple, except that a port or the protocol may be "any". */
struct FlowRule {
  IpAddress src;  ///< same family as dst
  IpAddress dst;
  uint8_t protocol = kAnyProtocol;   ///< 6 tcp, 17 udp, 132 sctp, 0 any
  uint16_t src_port = 0;             ///< 0 = any
  uint16_t dst_port = 0;             ///< 0 = any
  uint8_t dscp = 0;                  ///< DSCP written on green packets
  std::optional<MeterConfig> meter;  ///< no meter: every packet is green

  bool operator==(const FlowRule&) const = default;
};

using qos::PortRange;

/** A class policy: wildcard match over traffic that has no per-flow grant. */
struct ClassRule {
  std::string name;
  std::optional<IpPrefix> src;  ///< missing: any source
  std::optional<IpPrefix> dst;  ///< missing: any destination
  uint8_t protocol = kAnyProtocol;
  PortRange src_ports;
  PortRange dst_ports;
  uint64_t dscp_in_mask = ~0ULL;  ///< bit N set: matches incoming DSCP N
  PacketAction action;            ///< Pass here means "trust the host's DSCP"

  bool operator==(const ClassRule&) const = default;
};

enum class UnmatchedPolicy : uint8_t {
  Remark,  ///< re-mark to default_dscp: the trust boundary
  Trust,   ///< keep what the host wrote
  Drop,
};

enum class MalformedPolicy : uint8_t {
  Forward,  ///< pass untouched (a bump in the wire should not be a new failure point)
  Drop,
};

struct PortPair {
  std::string inside;  ///< DPDK device name, e.g. "net_af_packet0"
  std::string outside;
};

struct TrafficPolicy {
  UnmatchedPolicy unmatched = UnmatchedPolicy::Remark;
  uint8_t default_dscp = 0;
  MalformedPolicy malformed = MalformedPolicy::Forward;
  std::vector<ClassRule> classes;  ///< first match wins

  bool operator==(const TrafficPolicy&) const = default;
};

struct DataplaneConfig {
  uint32_t max_flows = 1u << 20;   ///< flow table capacity
  uint32_t mbufs = 16383;          ///< mbufs in the packet pool (2^n - 1 is best)
  uint16_t rx_descriptors = 1024;  ///< per RX queue
  uint16_t tx_descriptors = 1024;  ///< per TX queue
  uint32_t idle_sleep_us = 0;      ///< 0: poll without pause; else sleep when idle (shared hosts)
};

struct MetricsConfig {
  std::string listen;  ///< "127.0.0.1:9400"; empty: no metrics endpoint
};

/** The link to the manager ([control]); absent: the appliance runs from its file alone. */
struct ControlConfig {
  std::string manager;  ///< the manager's ZeroMQ endpoint, "tcp://HOST:PORT"
  std::string name;     ///< this appliance's [[appliance]] name at the manager
  /** This appliance's CURVE secret key file (resolved); empty: no CURVE, local manager only. */
  std::string secret_key_path;
  /** The manager's public key: its Z85 text, or a file holding it (resolved). */
  std::string manager_public_key;
};

struct ApplianceConfig {
  std::string source_path;  ///< the file it came from, for reloads and messages
  std::vector<std::string> eal_args;
  /// EAL runs with --in-memory (--no-shconf with --no-huge) unless the args
  /// choose otherwise: no hugepage files or shared config are left behind,
  /// even after kill -9, and no DPDK secondary process (dpdk-pdump,
  /// dpdk-proc-info) can attach.
  bool eal_in_memory = true;
  std::vector<PortPair> pairs;
  TrafficPolicy policy;
  std::vector<FlowRule> flows;
  DataplaneConfig dataplane;
  MetricsConfig metrics;
  std::optional<ControlConfig> control;
};

/** Loads and validates a config file.  Errors are "FILE:LINE:COLUMN: key: message". */
Result<ApplianceConfig> loadApplianceConfig(const std::string& path);

/** Same, from text (tests); @p source_name is used as the file name in errors. */
Result<ApplianceConfig> parseApplianceConfig(std::string_view text, const std::string& source_name);

/** "udp", "tcp", "sctp", "icmp", "any" or a number 0..255 -> protocol number. */
Result<uint8_t> parseProtocol(std::string_view text);

/** "pass", "drop", "remark:N" -> PacketAction. */
Result<PacketAction> parsePacketAction(std::string_view text);

}  // namespace qos::appliance
