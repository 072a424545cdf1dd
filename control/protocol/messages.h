// The control messages: what hosts, appliances, qosctl and qosmgr say to
// each other inside the envelope (envelope.h), each described once
// (fields.h) and written and read from that description by every party.
//
// Units are in the names and values are integers: rates in bits per second
// ("_bps"), sizes in bytes ("_bytes"), times in milliseconds ("_ms"; since
// the Unix epoch where it is a point in time); a request's lease is "lease",
// in seconds, as clients write it.  Addresses are strings ("198.18.1.10",
// "2001:db8::1"), protocols names ("udp") or numbers, DSCPs numbers 0..63,
// reasons and states snake_case names.
//
// Message types and the bodies they carry (request -> reply):
//   provision   AdmissionRequest         -> GrantReply, or a denial (Denial)
//   release     FlowRef                  -> Grant (the released one)
//   refresh     RefreshRequest           -> RefreshReply
//   flows       {}                       -> FlowsReply
//   networks    {}                       -> NetworksReply
//   appliances  {}                       -> AppliancesReply
//   stats       {}                       -> StatsReply
//   ping        {}                       -> PingReply
//   sync        SyncRequest              -> SyncReply        (appliances only)
// message_types.h lists them, with who may send each.
//
// A provision body:
//   {"app":"voip","src":"198.18.1.10","sport":40000,"dst":"198.19.1.20","dport":5004,
//    "proto":"udp","bidir":false,"lease":30,"client":"host-a","request_id":"r-1"}
// app, sport, dport (0: any), bidir (false), lease (0: the configured
// default) and client may be left out or null; src, dst, proto and
// request_id may not.  With CURVE on, the manager takes the client's name
// from its key and ignores "client".
//
// A grant:
//   {"flow_id":7,"app":"voip","profile_index":0,
//    "profile":{"class":"EF","rate_bps":64000,"burst_bytes":1500},
//    "src":"198.18.1.10","sport":40000,"dst":"198.19.1.20","dport":5004,"proto":"udp",
//    "bidir":true,"dscp":46,"reverse_dscp":46,"path":["site-a","wan","site-b"],
//    "reverse_path":["site-b","wan","site-a"],
//    "meter":{"cir_bps":64000,"cbs_bytes":1500,"ebs_bytes":1500},
//    "expires_at_ms":1700000030000,"client":"host-a","request_id":"r-1"}
// reverse_dscp is null when there is none.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/common/ip_prefix.h"
#include "control/protocol/fields.h"

namespace qos::control {

inline constexpr uint64_t kMaxDscp = 63;

// ---------------------------------------------------------------------------
// Admission

/** A flow's 5-tuple; a port of 0 means any. */
struct FlowSpec {
  IpAddress src;
  IpAddress dst;
  uint16_t src_port = 0;  ///< 0: any
  uint16_t dst_port = 0;  ///< 0: any
  uint8_t protocol = 0;   ///< 6 tcp, 17 udp, 132 sctp
  bool operator==(const FlowSpec&) const = default;

  /** src, sport, dst, dport, proto: at the level of the object that holds the flow. */
  template <typename Self, typename Fields>
  static void members(Self& self, Fields& f, ProtocolForm form) {
    f.field("src", self.src, Need::Required);
    f.field("sport", self.src_port);
    f.field("dst", self.dst, Need::Required);
    f.field("dport", self.dst_port);
    f.protocol("proto", self.protocol, form);
  }
};

/** A traffic characterization: what a flow of an application needs. */
struct Profile {
  std::string class_name;
  uint64_t rate_bps = 0;
  uint64_t burst_bytes = 0;
  bool operator==(const Profile&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("class", self.class_name, Need::NonEmpty);
    f.field("rate_bps", self.rate_bps, Need::Required);
    f.field("burst_bytes", self.burst_bytes, Need::Required);
  }
};

/**
 * An srTCM policer (RFC 2697) for a granted flow: committed rate and burst
 * from the granted profile, one more burst of excess.  Packets over it are
 * red and dropped; yellow ones pass.
 */
struct MeterParams {
  uint64_t cir_bps = 0;    ///< the profile's rate
  uint64_t cbs_bytes = 0;  ///< the profile's burst
  uint64_t ebs_bytes = 0;  ///< the profile's burst (excess tolerance of one burst)
  bool operator==(const MeterParams&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("cir_bps", self.cir_bps, Need::Required);
    f.field("cbs_bytes", self.cbs_bytes, Need::Required);
    f.field("ebs_bytes", self.ebs_bytes, Need::Required);
  }
};

/** The body of a "provision" message. */
struct AdmissionRequest {
  std::string application;  ///< empty: identify by the flow's protocol and ports
  FlowSpec flow;
  bool bidirectional = false;
  uint32_t lease_sec = 0;  ///< 0: the configured default; at most the configured maximum
  std::string client_id;   ///< who asks; with CURVE, the manager sets it from the key
  std::string request_id;  ///< the client's id for this request: retries reuse it
  bool operator==(const AdmissionRequest&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("app", self.application);
    FlowSpec::members(self.flow, f, ProtocolForm::PortsByName);
    f.field("bidir", self.bidirectional);
    f.field("lease", self.lease_sec);
    f.field("client", self.client_id);
    f.field("request_id", self.request_id, Need::NonEmpty);
  }
};

struct Grant {
  uint64_t flow_id = 0;
  std::string application;
  uint32_t profile_index = 0;  ///< 0: default; i: alternates[i - 1]
  Profile profile;             ///< the granted profile
  FlowSpec flow;
  bool bidirectional = false;
  uint8_t dscp = 0;                     ///< for the sending host (forward direction)
  std::optional<uint8_t> reverse_dscp;  ///< for the other host, when bidirectional
  std::vector<std::string> path;        ///< network names, source first
  std::vector<std::string> reverse_path;
  MeterParams meter;
  uint64_t expires_at_ms = 0;  ///< epoch milliseconds
  std::string client_id;
  std::string request_id;
  bool operator==(const Grant&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("flow_id", self.flow_id, Need::Required);
    f.field("app", self.application);
    f.field("profile_index", self.profile_index);
    f.object("profile", self.profile);
    FlowSpec::members(self.flow, f, ProtocolForm::AnyNumber);
    f.field("bidir", self.bidirectional);
    f.field("dscp", self.dscp, Need::Required, kMaxDscp);
    f.field("reverse_dscp", self.reverse_dscp, Need::Optional, kMaxDscp);
    f.field("path", self.path, Need::Required);
    f.field("reverse_path", self.reverse_path);
    f.object("meter", self.meter);
    f.field("expires_at_ms", self.expires_at_ms, Need::Required);
    f.field("client", self.client_id);
    f.field("request_id", self.request_id);
  }
};

/** Which appliances on a grant's path enforce it, as of a reply. */
struct Enforcement {
  std::vector<std::string> enforced_by;  ///< appliances that acknowledged every rule of the grant
  std::vector<std::string> pending;      ///< appliances on the path that have not (yet)
  bool operator==(const Enforcement&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("enforced_by", self.enforced_by);
    f.field("pending", self.pending);
  }
};

/** The reply to a provision: the grant, and what the manager knows of it. */
struct GrantReply {
  Grant grant;
  bool retried = false;  ///< the request repeated an earlier one: same grant, nothing new reserved
  Enforcement enforcement;
  /**
   * Said by a local qos-agent, never by the manager: the client must send
   * something (a ping will do) at least this often while it holds grants,
   * or the agent takes it for gone and releases them.
   */
  std::optional<uint32_t> heartbeat_ms;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    Grant::fields(self.grant, f);
    f.field("retried", self.retried);
    Enforcement::fields(self.enforcement, f);
    f.field("heartbeat_ms", self.heartbeat_ms, Need::Optional);
  }
};

enum class DenyReason : uint8_t {
  BadRequest,          ///< e.g. lease over the maximum, src and dst of different families
  UnknownApplication,  ///< named application not configured, or no match for the flow
  NoSourceNetwork,     ///< no network holds the source address
  NoDestinationNetwork,
  NoPath,            ///< no chain of links joins the two networks
  ClassUnavailable,  ///< a class-enabled network on the path lacks every profile's class
  NoCapacity,        ///< no profile fits on every network and SLA of the path
};

inline constexpr std::array<EnumName<DenyReason>, 7> kDenyReasons = {{
    {DenyReason::BadRequest, "bad_request"},
    {DenyReason::UnknownApplication, "unknown_application"},
    {DenyReason::NoSourceNetwork, "no_source_network"},
    {DenyReason::NoDestinationNetwork, "no_destination_network"},
    {DenyReason::NoPath, "no_path"},
    {DenyReason::ClassUnavailable, "class_unavailable"},
    {DenyReason::NoCapacity, "no_capacity"},
}};

/** The wire name of a reason: "bad_request", "no_capacity", ... */
constexpr std::string_view denyReasonName(DenyReason reason) {
  for (const EnumName<DenyReason>& row : kDenyReasons) {
    if (row.value == reason) {
      return row.name;
    }
  }
  return "unknown";
}

/** Why a flow was not admitted; the body of a "denied" reply. */
struct Denial {
  DenyReason reason = DenyReason::NoCapacity;
  std::string message;  ///< for humans: which network or SLA refused which profile
  bool operator==(const Denial&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.enumeration("reason", self.reason, kDenyReasons);
    f.field("message", self.message);
  }
};

/** The body of "release": the flow to release. */
struct FlowRef {
  uint64_t flow_id = 0;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("flow_id", self.flow_id, Need::Required);
  }
};

struct RefreshRequest {
  uint64_t flow_id = 0;
  uint32_t lease_sec = 0;  ///< 0: the configured default

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("flow_id", self.flow_id, Need::Required);
    f.field("lease", self.lease_sec);
  }
};

struct RefreshReply {
  uint64_t flow_id = 0;
  uint64_t expires_at_ms = 0;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("flow_id", self.flow_id, Need::Required);
    f.field("expires_at_ms", self.expires_at_ms, Need::Required);
  }
};

/** What the appliances on a flow's path saw of it, summed over them (counters). */
struct Delivery {
  std::optional<uint64_t>
      delivered_bps;          ///< rate passed (green + yellow), last report; none: unknown
  uint64_t passed_pkts = 0;   ///< green and yellow packets
  uint64_t passed_bytes = 0;  ///< their IP bytes
  uint64_t policed_pkts = 0;  ///< red packets: dropped by the policer
  std::optional<uint64_t> last_seen_ms;  ///< epoch ms of the last packet any appliance saw
  bool operator==(const Delivery&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("delivered_bps", self.delivered_bps);
    f.field("passed_pkts", self.passed_pkts);
    f.field("passed_bytes", self.passed_bytes);
    f.field("policed_pkts", self.policed_pkts);
    f.field("last_seen_ms", self.last_seen_ms);
  }
};

/** One flow of the "flows" listing. */
struct FlowListing {
  Grant grant;
  Enforcement enforcement;
  Delivery delivery;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    Grant::fields(self.grant, f);
    Enforcement::fields(self.enforcement, f);
    f.object("delivery", self.delivery);
  }
};

struct FlowsReply {
  std::vector<FlowListing> flows;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.objects("flows", self.flows);
  }
};

enum class UsageKind : uint8_t { Network, Sla };
inline constexpr std::array<EnumName<UsageKind>, 2> kUsageKinds = {{
    {UsageKind::Network, "network"},
    {UsageKind::Sla, "sla"},
}};

/** Reservation of one class on one network or SLA. */
struct ClassUsage {
  std::string owner;  ///< network or SLA name
  UsageKind kind = UsageKind::Network;
  std::string network;  ///< the network (for an SLA, the one it is over)
  std::string class_name;
  std::optional<uint8_t> dscp;           ///< networks only
  std::optional<uint64_t> capacity_bps;  ///< none: not admission-controlled
  uint64_t reserved_bps = 0;
  std::optional<uint64_t> available_bps;  ///< capacity - reserved; none when no capacity
  uint64_t flows = 0;
  bool operator==(const ClassUsage&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("owner", self.owner, Need::Required);
    f.enumeration("kind", self.kind, kUsageKinds);
    f.field("network", self.network);
    f.field("class", self.class_name, Need::Required);
    f.field("dscp", self.dscp, Need::Optional, kMaxDscp);
    f.field("capacity_bps", self.capacity_bps);
    f.field("reserved_bps", self.reserved_bps);
    f.field("available_bps", self.available_bps);
    f.field("flows", self.flows);
  }
};

struct NetworksReply {
  std::vector<ClassUsage> classes;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.objects("classes", self.classes);
  }
};

struct StatsReply {
  uint64_t flows = 0;
  uint64_t networks = 0;
  uint64_t applications = 0;
  uint64_t appliances = 0;
  std::string version;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("flows", self.flows);
    f.field("networks", self.networks);
    f.field("applications", self.applications);
    f.field("appliances", self.appliances);
    f.field("version", self.version);
  }
};

struct PingReply {
  std::string version;
  std::string peer;  ///< the name the manager knows the sender by ("" without CURVE)
  std::string role;  ///< its role: "host", "appliance", "admin" (everything without CURVE)

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("version", self.version);
    f.field("peer", self.peer);
    f.field("role", self.role);
  }
};

// ---------------------------------------------------------------------------
// Appliances

/** Which way of a grant a rule enforces. */
enum class Direction : uint8_t { Forward, Reverse };
inline constexpr std::array<EnumName<Direction>, 2> kDirections = {{
    {Direction::Forward, "forward"},
    {Direction::Reverse, "reverse"},
}};

/**
 * What one appliance enforces for one direction of a grant: the 5-tuple of
 * that direction, the DSCP to write on it there (the class's DSCP in the
 * network the packets enter at that appliance), and the grant's policer.
 * A rule is identified by (flow_id, dir); it never changes while its grant
 * lives.
 */
struct ApplianceRule {
  uint64_t flow_id = 0;
  Direction dir = Direction::Forward;
  FlowSpec flow;
  uint8_t dscp = 0;
  MeterParams meter;
  bool operator==(const ApplianceRule&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("flow_id", self.flow_id, Need::Required);
    f.enumeration("dir", self.dir, kDirections);
    FlowSpec::members(self.flow, f, ProtocolForm::AnyNumber);
    f.field("dscp", self.dscp, Need::Required, kMaxDscp);
    f.object("meter", self.meter);
  }
};

enum class ChangeOp : uint8_t { Add, Remove };
inline constexpr std::array<EnumName<ChangeOp>, 2> kChangeOps = {{
    {ChangeOp::Add, "add"},
    {ChangeOp::Remove, "remove"},
}};

/**
 * One sequenced change of an appliance's rules.  Both kinds carry the whole
 * rule, so that applying a change is setting a state: replaying a change
 * that is already applied changes nothing.
 */
struct RuleChange {
  uint64_t seq = 0;
  ChangeOp op = ChangeOp::Add;
  ApplianceRule rule;
  bool operator==(const RuleChange&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("seq", self.seq, Need::Required);
    f.enumeration("op", self.op, kChangeOps);
    f.object("rule", self.rule);
  }
};

/** A port pair as the appliance reports it. */
struct PortPairInfo {
  std::string inside;
  std::string outside;
  bool operator==(const PortPairInfo&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("inside", self.inside);
    f.field("outside", self.outside);
  }
};

/** What an appliance counted for one manager rule since the rule was installed there. */
struct RuleCounters {
  uint64_t flow_id = 0;
  Direction dir = Direction::Forward;
  uint64_t green_pkts = 0;
  uint64_t green_bytes = 0;  ///< IP bytes
  uint64_t yellow_pkts = 0;
  uint64_t yellow_bytes = 0;
  uint64_t red_pkts = 0;
  uint64_t red_bytes = 0;
  std::optional<uint64_t> idle_ms;  ///< since its last packet; none: no packet yet
  bool operator==(const RuleCounters&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("flow_id", self.flow_id, Need::Required);
    f.enumeration("dir", self.dir, kDirections);
    f.field("green_pkts", self.green_pkts);
    f.field("green_bytes", self.green_bytes);
    f.field("yellow_pkts", self.yellow_pkts);
    f.field("yellow_bytes", self.yellow_bytes);
    f.field("red_pkts", self.red_pkts);
    f.field("red_bytes", self.red_bytes);
    f.field("idle_ms", self.idle_ms);
  }
};

/** A manager rule an appliance could not install, and why (it acknowledges the rest). */
struct RuleRejection {
  uint64_t flow_id = 0;
  Direction dir = Direction::Forward;
  std::string reason;
  bool operator==(const RuleRejection&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("flow_id", self.flow_id, Need::Required);
    f.enumeration("dir", self.dir, kDirections);
    f.field("reason", self.reason);
  }
};

/**
 * An appliance's "sync": its heartbeat, its acknowledgement and its question
 * in one.  See manager/appliances/appliance_hub.h for the session it drives.
 */
struct SyncRequest {
  std::string name;      ///< its [[appliance]] name; with CURVE it must be its key's name
  std::string instance;  ///< random per qosgate process: a new one means it restarted
  std::string version;   ///< qosgate's version, for `qosctl appliances`
  std::vector<PortPairInfo> pairs;
  std::string epoch;     ///< the manager epoch its manager rules come from; "": none
  uint64_t applied = 0;  ///< every change of that epoch up to this seq is applied
  /** Taking a snapshot: the seq it started at and the last rule it has. */
  bool in_snapshot = false;
  uint64_t snapshot_seq = 0;
  uint64_t snapshot_after_flow = 0;
  Direction snapshot_after_dir = Direction::Forward;
  std::vector<RuleCounters> counters;  ///< rules whose counters changed since the last report
  std::vector<RuleRejection>
      rejected;       ///< rules of the changes it acknowledges that it could not install
  bool more = false;  ///< it has more to report: answer at once, do not hold

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("name", self.name, Need::NonEmpty);
    f.field("instance", self.instance, Need::NonEmpty);
    f.field("version", self.version);
    f.objects("pairs", self.pairs);
    f.field("epoch", self.epoch);
    f.field("applied", self.applied);
    f.field("in_snapshot", self.in_snapshot);
    f.field("snapshot_seq", self.snapshot_seq);
    f.field("snapshot_after_flow", self.snapshot_after_flow);
    f.enumeration("snapshot_after_dir", self.snapshot_after_dir, kDirections, Need::Optional);
    f.objects("counters", self.counters);
    f.objects("rejected", self.rejected);
    f.field("more", self.more);
  }
};

enum class SyncKind : uint8_t {
  Updates,   ///< changes after the appliance's applied seq (maybe none: a heartbeat)
  Snapshot,  ///< a page of the whole rule set; the appliance reconciles after the last
};
inline constexpr std::array<EnumName<SyncKind>, 2> kSyncKinds = {{
    {SyncKind::Updates, "updates"},
    {SyncKind::Snapshot, "snapshot"},
}};

struct SyncReply {
  std::string epoch;          ///< the manager's current epoch
  uint32_t heartbeat_ms = 0;  ///< the longest the manager holds a sync before it answers
  SyncKind kind = SyncKind::Updates;
  // Updates:
  uint64_t to = 0;                  ///< the seq the appliance is at once these are applied
  std::vector<RuleChange> changes;  ///< in seq order, all after its applied seq
  // Snapshot:
  uint64_t snapshot_seq = 0;         ///< the seq to ask updates after once the last page is in
  std::vector<ApplianceRule> rules;  ///< this page, in (flow_id, dir) order
  bool last_page = false;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("epoch", self.epoch, Need::NonEmpty);
    f.field("heartbeat_ms", self.heartbeat_ms, Need::Required);
    f.enumeration("kind", self.kind, kSyncKinds);
    f.field("to", self.to);
    f.objects("changes", self.changes);
    f.field("snapshot_seq", self.snapshot_seq);
    f.objects("rules", self.rules);
    f.field("last_page", self.last_page);
  }
};

enum class ApplianceState : uint8_t {
  Down,     ///< not heard from within its timeout (or never)
  Syncing,  ///< up, taking a snapshot or behind on changes
  Up,       ///< up and every change acknowledged
};
inline constexpr std::array<EnumName<ApplianceState>, 3> kApplianceStates = {{
    {ApplianceState::Down, "down"},
    {ApplianceState::Syncing, "syncing"},
    {ApplianceState::Up, "up"},
}};

/** One appliance of the "appliances" listing. */
struct ApplianceStatus {
  std::string name;
  std::string inside_network;   ///< the network its inside port faces
  std::string outside_network;  ///< the network its outside port faces
  ApplianceState state = ApplianceState::Down;
  std::string address;  ///< where its last sync came from ("" if never)
  std::string version;
  std::optional<uint64_t> last_heartbeat_age_ms;  ///< none: never heard from
  uint64_t rules = 0;                             ///< rules it should enforce now
  uint64_t rules_installed = 0;                   ///< of those, how many it acknowledged
  uint64_t rules_pending = 0;                     ///< rules not acknowledged yet
  uint64_t rules_rejected = 0;                    ///< rules it acknowledged but could not install
  uint64_t seq = 0;                               ///< the manager's latest change for it
  uint64_t seq_acked = 0;                         ///< the latest it acknowledged
  bool operator==(const ApplianceStatus&) const = default;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("name", self.name, Need::Required);
    f.field("inside_network", self.inside_network);
    f.field("outside_network", self.outside_network);
    f.enumeration("state", self.state, kApplianceStates);
    f.field("address", self.address);
    f.field("version", self.version);
    f.field("last_heartbeat_age_ms", self.last_heartbeat_age_ms);
    f.field("rules", self.rules);
    f.field("rules_installed", self.rules_installed);
    f.field("rules_pending", self.rules_pending);
    f.field("rules_rejected", self.rules_rejected);
    f.field("rules_rejected", self.rules_rejected);
    f.field("seq", self.seq);
    f.field("seq_acked", self.seq_acked);
  }
};

struct AppliancesReply {
  std::vector<ApplianceStatus> appliances;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.objects("appliances", self.appliances);
  }
};

}  // namespace qos::control
