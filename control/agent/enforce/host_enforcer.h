// Host enforcement: every grant qos-agent holds (standing policies and
// local clients' alike) marked, policed or shaped in this host's own
// kernel, so that the flow leaves the host already as the network expects.
//
//   grant held ─► apply():  [HTB class a9e0:N + its FIFO] ─► nftables chain + map element
//   released / lost / expired ─► remove(): the element and chain ─► the class
//
// A grant's changes are all or nothing: what apply() added before a step
// failed is taken back.  The agent owns one nftables table (inet qos_agent)
// and, when it shapes, one HTB tree (root a9e0:) on one interface, and
// touches nothing else: at start it deletes what an earlier run left of
// either (a crash, kill -9) and starts clean; at its end it deletes both.
//
// Kernels differ.  start() finds out what this one offers: nftables with
// interval maps (else it fails), HTB on the egress interface (else it
// polices: limit = "auto"; or fails: limit = "shape"), and says in
// summary() what the host gets.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "control/agent/agent_config.h"
#include "control/agent/enforce/host_kernel.h"
#include "control/agent/enforce/nft_rules.h"
#include "control/common/result.h"
#include "control/protocol/messages.h"

namespace qos::agent {

class HostEnforcer {
public:
  /// The HTB tree's handle (a9e0:): the agent's, whoever else shapes.
  static constexpr uint32_t kHtbRoot = 0xa9e00000u;

  /**
   * Cleans up what an earlier run left, creates the table, and (when it
   * shapes) makes its HTB tree the egress interface's root.
   * @return the enforcer, or an Error saying what this host lacks
   */
  static Result<std::unique_ptr<HostEnforcer>> start(const EnforceConfig& config,
                                                     std::unique_ptr<HostKernel> kernel);
  /** Deletes the table and the HTB tree. */
  ~HostEnforcer();
  HostEnforcer(const HostEnforcer&) = delete;
  HostEnforcer& operator=(const HostEnforcer&) = delete;

  /** What the host gets: "nftables on output: mark and shape on eth0 (htb)". */
  const std::string& summary() const { return summary_; }
  bool shapes() const { return shaping_; }
  bool polices() const { return policing_; }

  /** Enforces @p grant's forward direction (this host sends it).  Idempotent. */
  Result<void> apply(const control::Grant& grant);
  /** Takes back what apply() added for @p flow_id; nothing if it added nothing. */
  void remove(uint64_t flow_id);

  bool enforces(uint64_t flow_id) const { return active_.contains(flow_id); }
  size_t size() const { return active_.size(); }

private:
  explicit HostEnforcer(std::unique_ptr<HostKernel> kernel) : kernel_(std::move(kernel)) {}
  /** A free HTB class minor number, or 0 if all are taken. */
  uint32_t freeClass() const;

  std::unique_ptr<HostKernel> kernel_;
  std::string summary_;
  bool policing_ = false;
  bool shaping_ = false;
  std::string interface_;  ///< where the HTB tree is, when shaping
  std::map<uint64_t, EnforcedFlow> active_;
  std::map<uint32_t, uint64_t> classes_;  ///< HTB class handle -> flow id
};

}  // namespace qos::agent
