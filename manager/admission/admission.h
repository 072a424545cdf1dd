// Admission: the seed's method, as pure logic with no I/O.
//
//  1. Traffic attributes: the application named in the request, or the first
//     application whose match (protocol, ports) fits the flow; its default
//     profile (class, rate, burst).
//  2. Path: the networks of the source and destination (longest prefix) and
//     the shortest chain of links between them (Topology).
//  3. For every class-enabled network on the path, the class must exist there
//     and its capacity minus what is reserved must hold the rate (a class
//     with no capacity is not admission-controlled).  For every SLA over a
//     network on the path that lists the class, likewise against its rate.
//     All or nothing: a flow holds bandwidth on every network and SLA of its
//     path, or on none.
//  4. If the default does not fit, each alternate in order.
//  5. The DSCP granted is the one the first class-enabled network on the path
//     uses for the granted class (0 if no network on the path is
//     class-enabled).
//  6. Bidirectional: the reverse direction (dst -> src, its own path) must fit
//     too, with the same profile, atomically with the forward one; the grant
//     carries the reverse DSCP for the other host.
//  7. Release frees everything on every network and SLA.  Leases: a grant
//     lives until expires_at_ms unless refreshed; expire() releases the
//     lapsed.  A request with the same (client_id, request_id) as a live grant
//     returns that grant again, never a second reservation.
//
// Thread safety: every public method may be called from any thread; one
// mutex makes each call atomic, so concurrent requests never over-admit.
// Time is an argument (milliseconds since the Unix epoch), never read here.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "control/common/ip_prefix.h"
#include "manager/config/manager_config.h"
#include "manager/topology/topology.h"

namespace qos::manager {

struct FlowSpec {
  IpAddress src;
  IpAddress dst;
  uint16_t src_port = 0;  ///< 0: any
  uint16_t dst_port = 0;  ///< 0: any
  uint8_t protocol = 0;   ///< 6 tcp, 17 udp, 132 sctp
  bool operator==(const FlowSpec&) const = default;
};

struct AdmissionRequest {
  std::string application;  ///< empty: identify by the flow's protocol and ports
  FlowSpec flow;
  bool bidirectional = false;
  uint32_t lease_sec = 0;  ///< 0: the configured default; capped at max_lease_sec
  std::string client_id;   ///< who asks (a host or agent identity)
  std::string request_id;  ///< the client's id for this request: retries reuse it
};

/** srTCM parameters for the appliance, derived from the granted profile. */
struct MeterParams {
  uint64_t cir_bytes_per_sec = 0;  ///< rate / 8, rounded up
  uint64_t cbs_bytes = 0;          ///< the profile's burst
  uint64_t ebs_bytes = 0;          ///< the profile's burst (excess tolerance of one burst)
  bool operator==(const MeterParams&) const = default;
};

struct Grant {
  uint64_t flow_id = 0;
  std::string application;
  size_t profile_index = 0;  ///< 0: default; i: alternates[i - 1]
  Profile profile;           ///< the granted profile
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
};

enum class DenyReason {
  BadRequest,          ///< e.g. lease over the maximum, src and dst of different families
  UnknownApplication,  ///< named application not configured, or no match for the flow
  NoSourceNetwork,     ///< no network holds the source address
  NoDestinationNetwork,
  NoPath,            ///< no chain of links joins the two networks
  ClassUnavailable,  ///< a class-enabled network on the path lacks every profile's class
  NoCapacity,        ///< no profile fits on every network and SLA of the path
};

struct Denial {
  DenyReason reason = DenyReason::NoCapacity;
  std::string message;  ///< for humans: which network or SLA refused which profile
};

using AdmissionResult = std::variant<Grant, Denial>;

/** Reservation of one class on one network or SLA. */
struct ClassUsage {
  std::string owner;  ///< network or SLA name
  bool is_sla = false;
  std::string network;  ///< the network (for an SLA, the one it is over)
  std::string class_name;
  uint8_t dscp = 0;                      ///< networks only
  std::optional<uint64_t> capacity_bps;  ///< none: not admission-controlled
  uint64_t reserved_bps = 0;
  uint64_t flows = 0;
};

const char* denyReasonName(DenyReason reason);

class AdmissionEngine {
public:
  /** @p config and @p topology must outlive the engine (see reconfigure()). */
  AdmissionEngine(const ManagerConfig& config, const Topology& topology);

  /** Admits or denies; on grant the bandwidth is reserved at once. */
  AdmissionResult admit(const AdmissionRequest& request, uint64_t now_ms);
  /** Frees a grant's bandwidth.  @return the grant, or nullopt if there was none. */
  std::optional<Grant> release(uint64_t flow_id);
  /** Extends a lease to now + lease_sec (0: default).  @return the new expiry, if the flow exists.
   */
  std::optional<uint64_t> refresh(uint64_t flow_id, uint32_t lease_sec, uint64_t now_ms);
  /** Releases every grant whose lease has lapsed at @p now_ms; returns them. */
  std::vector<Grant> expire(uint64_t now_ms);
  /**
   * Re-installs a grant loaded from the store at start-up, with its flow id
   * and expiry.  Fails if it no longer fits (the config changed meanwhile).
   */
  Result<void> restore(const Grant& grant);

  /**
   * Switches to a new config and topology (a reload), keeping every live
   * grant with its flow id, expiry, path and DSCP.  All or nothing: fails,
   * changing nothing, if a grant would no longer fit (a network, class or
   * link it uses is gone, or its capacity is now too small) or would get
   * another path or DSCP than the one its hosts and appliances enforce.
   * @p config and @p topology must outlive the engine (or the next call).
   */
  Result<void> reconfigure(const ManagerConfig& config, const Topology& topology);

  std::vector<Grant> flows() const;
  std::optional<Grant> flow(uint64_t flow_id) const;
  std::vector<ClassUsage> usage() const;
  size_t flowCount() const;
  /** The flow id the next grant gets; restore() moves it past every restored id. */
  uint64_t nextFlowId() const;

private:
  // Implementation details are the implementer's (mutex, ledgers, indexes).
  struct State;
  const ManagerConfig* config_;  ///< changed by reconfigure(), under mutex_
  const Topology* topology_;
  mutable std::mutex mutex_;
  std::unique_ptr<State> state_;

public:
  ~AdmissionEngine();
};

}  // namespace qos::manager
