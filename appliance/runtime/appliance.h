// Appliance: everything qosgate runs, built from a validated config once EAL
// is up: the packet pool, the port pairs, the flow table, the policy
// snapshot, the RCU variable and one Worker per worker lcore.
//
// All methods are called on the control thread (the EAL main lcore), which
// is the only writer of every table the workers read.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "appliance/config/appliance_config.h"
#include "appliance/dataplane/counters.h"
#include "appliance/dataplane/policy_snapshot.h"
#include "appliance/dataplane/worker.h"
#include "appliance/flows/flow_table.h"
#include "appliance/rules/rule_book.h"
#include "control/common/result.h"

namespace qos::appliance {

/** What the PMD itself counts for a port (rte_eth_stats), and its link. */
struct PortHardwareStats {
  uint64_t rx_missed = 0;  ///< dropped by the NIC: RX queue full (imissed)
  uint64_t rx_errors = 0;  ///< erroneous frames received (ierrors)
  uint64_t rx_nombuf = 0;  ///< RX mbuf allocation failures
  uint64_t tx_errors = 0;  ///< failed transmissions (oerrors)
  bool link_up = false;
  uint32_t link_speed_mbps = 0;
};

struct PortInfo {
  uint16_t port_id = 0;
  std::string device;  ///< DPDK device name
  std::string role;    ///< "inside" or "outside"
  uint16_t peer_port_id = 0;
  bool started = false;  ///< rte_eth_dev_start() succeeded (closePorts() stops it)
};

/** What a SIGHUP reload changed. */
struct ReloadSummary {
  uint32_t flows_added = 0;
  uint32_t flows_removed = 0;
  uint32_t flows_changed = 0;
  bool policy_changed = false;
  std::vector<std::string> needs_restart;  ///< keys that only a restart applies
};

class Appliance {
public:
  /** Builds and starts the ports (not the workers).  EAL must be initialized. */
  static Result<std::unique_ptr<Appliance>> create(const ApplianceConfig& config);
  ~Appliance();
  Appliance(const Appliance&) = delete;
  Appliance& operator=(const Appliance&) = delete;

  /** Launches one worker per worker lcore. */
  Result<void> start();
  /** Tells the workers to stop and waits for them.  Idempotent. */
  void stop();
  /** Stops and closes the ports, so every mbuf returns to the pool.  After stop(). */
  void closePorts();

  /**
   * Applies a set of rule changes while workers run, all or nothing: the
   * rule book plans them (rule_book.h), the flow table takes the plan's
   * operations (add, replace, remove; lock-free readers, RCU), and if one
   * fails the ones done are undone and nothing changes.  A rule put again
   * unchanged keeps its table entry, meter state and counters.
   */
  Result<RuleSummary> applyRules(const RuleChanges& changes);
  /** Installs or replaces a file rule while workers run (applyRules() of one rule). */
  Result<void> addFlow(const FlowRule& rule);
  /** Removes a file rule while workers run.  @return false if it was not held. */
  bool removeFlow(const FlowRule& rule);
  /** Every rule the appliance holds, by owner.  Control thread only. */
  const RuleBook& rules() const { return book_; }
  /** Rules @p origin holds (installed or shadowed).  Any thread. */
  uint32_t ruleCount(RuleOrigin origin) const {
    return rule_counts_[static_cast<size_t>(origin)].load(std::memory_order_relaxed);
  }
  /** Whether the control agent is in touch with the manager; set by the agent.  Any thread. */
  void setManagerConnected(bool connected) { manager_connected_.store(connected ? 1 : 0); }
  /** 1 in touch with the manager, 0 not, -1 no [control].  Any thread. */
  int managerConnected() const { return manager_connected_.load(); }
  /**
   * The flow-table entry enforcing @p id, or nullptr if the rule is not
   * installed (unknown, or shadowed by another owner's rule for its 5-tuple).
   * Its counters are written by the workers; read them as relaxed loads.
   */
  const FlowEntry* entryOf(const RuleId& id) const;
  /** Publishes a new class/trust policy; returns once no worker can see the old one. */
  void applyPolicy(const TrafficPolicy& policy);
  /**
   * Applies a re-read config: its flows replace the file's rules (never the
   * manager's), all or nothing, then its policy; reports what needs a
   * restart.  Fails, changing nothing, if the flows cannot all be installed.
   */
  Result<ReloadSummary> reload(const ApplianceConfig& next);
  /** Periodic control-thread work: frees what the RCU grace periods released. */
  void housekeeping();

  const std::vector<PortInfo>& ports() const { return ports_; }
  unsigned workerCount() const { return static_cast<unsigned>(workers_.size()); }
  /** Counters of packets received on @p port_id, summed over workers. */
  PortTotals portTotals(uint16_t port_id) const;
  /** The PMD's own counters and link state.  Any thread. */
  PortHardwareStats hardwareStats(uint16_t port_id) const;
  const FlowTable& flows() const { return *flows_; }
  uint32_t flowCount() const { return flows_->size(); }
  /** Mbufs not back in the pool. */
  unsigned mbufsInUse() const;
  unsigned mbufsTotal() const;
  const ApplianceConfig& config() const { return config_; }

private:
  Appliance() = default;
  Result<void> setUpPorts();
  /** Frees what is left in the hand-off rings, counted as dropped. */
  void dropHandedOff();
  /** A net_pcap port with infinite_rx: whether the pool holds its capture. */
  Result<void> checkInfiniteRx(const PortInfo& port, uint16_t n_queues);

  ApplianceConfig config_;
  std::string name_;  ///< unique per instance: DPDK object names
  rte_mempool* pool_ = nullptr;
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::unique_ptr<FlowTable> flows_;
  std::atomic<const PolicySnapshot*> policy_{nullptr};
  std::atomic<bool> stop_{false};
  std::vector<PortInfo> ports_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<rte_ring*> handoff_;  ///< one per worker, when there are several
  std::vector<unsigned> worker_lcores_;
  bool running_ = false;
  bool ports_open_ = false;
  uint64_t mbufs_for_descriptors_ = 0;  ///< what the ports' descriptors and caches take
  RuleBook book_;
  std::array<std::atomic<uint32_t>, 2> rule_counts_{};  ///< book_'s counts, for other threads
  std::atomic<int> manager_connected_{-1};
};

}  // namespace qos::appliance
