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
#include "control/protocol/messages.h"
#include "manager/config/manager_config.h"
#include "manager/topology/topology.h"

namespace qos::manager {

using control::AdmissionRequest;
using control::ClassUsage;
using control::Denial;
using control::DenyReason;
using control::FlowSpec;
using control::Grant;
using control::MeterParams;
using control::UsageKind;

using AdmissionResult = std::variant<Grant, Denial>;

/** What admit() did. */
struct Admission {
  AdmissionResult result;
  bool retried = false;  ///< a live grant had this (client, request id): it is returned again
};

class AdmissionEngine {
public:
  /** @p config and @p topology must outlive the engine (see reconfigure()). */
  AdmissionEngine(const ManagerConfig& config, const Topology& topology);

  /**
   * Admits or denies; on grant the bandwidth is reserved at once.  A retry
   * (see the top of this file) returns the live grant with retried set.
   */
  Admission admit(const AdmissionRequest& request, uint64_t now_ms);
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
  /** Numbers new grants from @p next_flow_id at least (ids handed out before a restart). */
  void reserveFlowIds(uint64_t next_flow_id);

private:
  /** admit() for a request that is not a retry; under mutex_. */
  AdmissionResult admitNew(const AdmissionRequest& request, uint64_t now_ms);

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
