// Worker: one per worker lcore, run to completion.
//
//   for each RX queue it owns:
//     rx_burst ─► parse ─► flow lookup (bulk, per wildcard mask) ─┬─► meter ─► color action
//                                                                 ├─► class rules
//                                                                 └─► trust policy
//            ─► rewrite DSCP ─► tx_burst on the peer port ─► free and count what TX refused
//   rte_rcu_qsbr_quiescent()   (no FlowEntry or PolicySnapshot pointer survives this)
//
// A Worker owns its queues and counters; nothing in it is written by another
// core.  It never allocates, locks, logs or makes a system call per packet.
// Counters are per ingress port and summed by the control thread on read; a
// burst's counts are gathered in locals and added once per burst.  What a
// packet of an admitted flow touches in the flow table: two hash buckets and
// a key slot (rte_hash), then one cache line of its FlowEntry, prefetched as
// soon as the lookup returns (flow_table.h).
//
// Several workers: RSS spreads a port's packets over their queues, and
// nothing keeps all of a rule's packets on one queue (a wildcard rule
// matches many 5-tuples; a UDP flow's later fragments hash on addresses
// only).  A meter written by two cores loses updates, so every flow entry
// has one owner worker (FlowTable::ownerOf), as in VPP's hand-off: a worker
// that finds an entry owned by another hands the packet over that worker's
// ring (multi-producer, single-consumer) instead of metering it; the owner
// takes handed packets after its own RX queues, looks them up again,
// meters, marks and sends them on its TX queue of the peer port.  The
// receiver counts them received; the owner counts them sent or dropped, so
// per port the sums still add up.  A full ring drops (handoff_full).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "appliance/dataplane/counters.h"
#include "appliance/dataplane/policy_snapshot.h"
#include "appliance/flows/flow_table.h"

namespace qos::appliance {

inline constexpr uint16_t kBurstSize = 32;
inline constexpr unsigned kMaxPorts = RTE_MAX_ETHPORTS;

/** One RX queue a worker polls, and where its packets go. */
struct WorkerQueue {
  uint16_t rx_port = 0;  ///< DPDK port id it receives on
  uint16_t rx_queue = 0;
  uint16_t tx_port = 0;   ///< the peer port of the pair
  uint16_t tx_queue = 0;  ///< this worker's TX queue on the peer port
};

/** What all workers share; owned by the runtime, read-only to workers. */
struct WorkerShared {
  FlowTable* flows = nullptr;
  const std::atomic<const PolicySnapshot*>* policy = nullptr;
  rte_rcu_qsbr* qsbr = nullptr;
  const std::atomic<bool>* stop = nullptr;
  uint32_t idle_sleep_us = 0;  ///< 0: pure polling; else sleep this long when idle
  unsigned n_workers = 1;
  /// With several workers: n_workers hand-off rings, one per worker (its input).
  rte_ring* const* handoff = nullptr;
};

class Worker {
public:
  /**
   * @param thread_id this worker's id in the RCU variable (0..n_workers-1)
   * @param shared    tables and flags shared by all workers
   * @param queues    the RX queues it polls; fixed for its lifetime
   */
  Worker(unsigned thread_id, const WorkerShared& shared, std::vector<WorkerQueue> queues);

  /** The lcore main loop.  Runs until *shared.stop is true.  @return 0 */
  int run() noexcept;

  /**
   * Handles one received burst from @p queue: classify, mark, police,
   * transmit; with several workers, packets of flows another worker owns
   * are handed to it.  @p handed_off: the packets were handed to this worker
   * (counted received already; none is handed on).
   */
  void processBurst(const PolicySnapshot& policy, uint64_t now_tsc, const WorkerQueue& queue,
                    rte_mbuf** pkts, uint16_t n_pkts, bool handed_off = false) noexcept;

  /**
   * Takes what other workers handed this one (run() calls it after its RX
   * queues; a benchmark may call it between its own bursts).
   * @return whether there was any
   */
  bool drainHandoff(const PolicySnapshot& policy, uint64_t now_tsc) noexcept;

  /** Counters of packets received on @p port_id.  Read from any thread. */
  const PortCounters& counters(uint16_t port_id) const { return counters_[port_id]; }

  /**
   * Counts a packet handed to this worker that it never took (it stopped
   * first) as dropped, under @p port.  Only while the worker is stopped.
   */
  void countUndelivered(uint16_t port) noexcept {
    counters_[port].drops[static_cast<size_t>(DropReason::HandoffFull)].add(1);
  }

  /** rte_eal_remote_launch() entry: arg is a Worker*. */
  static int launch(void* worker);

  /** Header bytes of a frame in several segments that are gathered to parse it. */
  static constexpr uint32_t kGatherBytes = 512;

private:
  /** Parses a frame in several segments from its first kGatherBytes, gathered. */
  ParseStatus parseSegmented(const rte_mbuf* m, ParsedPacket& out) noexcept;

  unsigned thread_id_;
  WorkerShared shared_;
  std::vector<WorkerQueue> queues_;
  std::array<PortCounters, kMaxPorts> counters_;
  std::array<WorkerQueue, kMaxPorts> handoff_queue_{};  ///< per RX port: where handed packets go
  // Scratch for processBurst(), kept here rather than on its stack so that
  // it is not zeroed on every burst (both types have member initializers)
  // and stays at one address, in L1.  Every element is written before it is read.
  std::array<ParsedPacket, kBurstSize> parsed_;
  std::array<FlowKey, kBurstSize> masked_;      ///< keys with a wildcard mask applied
  std::array<uint8_t, kGatherBytes> gathered_;  ///< parseSegmented()'s copy of the headers
};

}  // namespace qos::appliance
