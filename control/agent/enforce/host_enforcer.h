// Host enforcement: every grant qos-agent holds (standing policies and
// local clients' alike) marked, and policed or shaped, in this host's own
// kernel, so that the flow leaves the host already as the network expects.
//
//   grant held ─► apply():  [HTB class a9e0:N + its FIFO] ─► nftables chain + map element
//   released / lost / expired ─► remove(): the element and chain ─► the class
//
// How the rate is held to:
//   HTB tree on the egress interface (the agent's root a9e0: in place of the
//   kernel's default qdisc), a class per grant at the grant's rate with its
//   burst, chosen by nftables' meta priority (no tc classifier):
//     shape   the class queues 100 ms of the rate: the excess waits, then drops
//     police  the class queues 2 frames: the excess beyond the burst drops
//   no tree (the root qdisc is someone else's; no HTB): nftables limit at the
//   interface's egress hook, which drops as a full queue does (at the output
//   hook a drop fails the sender's sendmsg() with EPERM).
//
// A grant's changes are all or nothing: what apply() added before a step
// failed is taken back.  The agent owns one nftables table (qos_agent) and
// at most one HTB tree, and touches nothing else: at start it deletes what
// an earlier run left of either (a crash, kill -9) and starts clean; at its
// end it deletes both.  start() finds out what this kernel offers and says
// in summary() what the host gets; limit = "shape" without HTB is an error.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
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

  /** What the host gets, in a line for the log and --status. */
  const std::string& summary() const { return summary_; }
  /** Whether grants get an HTB class (shaped, or policed by a 2-frame queue). */
  bool hasTree() const { return tree_; }
  /** Whether grants are policed by nftables (no tree). */
  bool nftPolices() const { return nft_police_; }
  const NftPlace& place() const { return place_; }

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
  NftPlace place_;             ///< where the table hooks in
  bool tree_ = false;          ///< the HTB tree is on interface_
  bool queue_police_ = false;  ///< with the tree: police (2 frames queued), else shape
  bool nft_police_ = false;    ///< no tree: nftables limit at interface's egress
  std::string interface_;      ///< where the HTB tree is
  std::map<uint64_t, EnforcedFlow> active_;
  std::map<uint32_t, uint64_t> classes_;  ///< HTB class handle -> flow id
};

}  // namespace qos::agent
