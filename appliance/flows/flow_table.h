// FlowTable: the admitted flows, looked up by every worker on every packet and
// changed by the control thread while the workers run.
//
// Concurrency contract (read before changing anything here):
//  - Writers: only the control thread (the EAL main lcore) calls add(),
//    remove(), reclaim() and forEach().  There is exactly one writer.
//  - Readers: worker lcores call lookupBulk() and use the FlowEntry pointers
//    it returns until their next rte_rcu_qsbr_quiescent() call, never later.
//  - The rte_hash is created with RW_CONCURRENCY_LF: lookups take no lock and
//    are never blocked by a writer.  A removed key's slot and its FlowEntry
//    are not freed at once: they go on an RCU defer queue and are freed only
//    after every worker has reported a quiescent state (rte_rcu_qsbr), so no
//    worker can read freed memory.  A replaced rule's old entry goes the same
//    way.  reclaim() frees what is due; the control thread calls it often.
//  - FlowEntry fields above `meter` are immutable after add().  The meter
//    state and per-color counters are written by the worker that receives the
//    flow.  With several workers, RSS must keep each flow on one queue (it
//    does for a 5-tuple hash); the table does not arbitrate between workers.
//  - Not guaranteed: a packet in flight during add() or remove() may see the
//    old or the new state; a rule replaced by add() starts with a full bucket.
//
// Wildcards: a rule may leave the source port, the destination port or the
// protocol as "any".  Each combination is a mask; keys carry their mask id, so
// one hash holds them all, and a lookup probes the masks in use from the most
// specific to the least (tuple space search, as Open vSwitch's classifier).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <rte_hash.h>
#include <rte_meter.h>
#include <rte_rcu_qsbr.h>

#include "appliance/config/appliance_config.h"
#include "appliance/dataplane/counters.h"
#include "appliance/dataplane/flow_key.h"
#include "control/common/result.h"

namespace qos::appliance {

/** Bits of FlowKey::wildcard_mask: the fields a rule ignores. */
inline constexpr uint8_t kWildSrcPort = 1u << 0;
inline constexpr uint8_t kWildDstPort = 1u << 1;
inline constexpr uint8_t kWildProtocol = 1u << 2;
inline constexpr unsigned kMaskCount = 8;
/** Masks in probe order: most specific first. */
inline constexpr std::array<uint8_t, kMaskCount> kMaskProbeOrder = {0, 1, 2, 4, 3, 5, 6, 7};

/** Applies a wildcard mask to a packet's key: clears the fields the mask ignores. */
inline void applyMask(FlowKey& key, uint8_t mask) noexcept {
  key.wildcard_mask = mask;
  if ((mask & kWildSrcPort) != 0) {
    key.src_port = 0;
  }
  if ((mask & kWildDstPort) != 0) {
    key.dst_port = 0;
  }
  if ((mask & kWildProtocol) != 0) {
    key.protocol = 0;
  }
}

/** An admitted flow, as the data plane sees it.  Three cache lines. */
struct alignas(64) FlowEntry {
  // Immutable after add() -------------------------------------------------
  uint8_t dscp = 0;      ///< DSCP for green packets
  bool metered = false;  ///< false: every packet is green
  MeterMode mode = MeterMode::Srtcm;
  PacketAction yellow;  ///< what yellow packets get
  PacketAction red;     ///< what red packets get
  union {
    rte_meter_srtcm_profile srtcm;
    rte_meter_trtcm_profile trtcm;
  } profile{};
  // Written only by the worker that receives the flow ----------------------
  alignas(64) union {
    rte_meter_srtcm srtcm;
    rte_meter_trtcm trtcm;
  } meter{};
  std::array<RelaxedCounter, kColors> pkts;   ///< packets by color
  std::array<RelaxedCounter, kColors> bytes;  ///< IP bytes by color
  RelaxedCounter last_seen_tsc;               ///< TSC of the last packet
  FlowKey key;                                ///< the key it is stored under
};

/** Builds the table key of a rule (with its wildcard mask). */
FlowKey flowKeyOf(const FlowRule& rule);

class FlowTable {
public:
  /**
   * Creates an empty table.
   * @param name      unique among DPDK objects (used for the rte_hash name)
   * @param capacity  flows it can hold
   * @param socket_id NUMA socket for the table memory
   * @param qsbr      the RCU variable every worker reports its quiescent states to
   */
  static Result<std::unique_ptr<FlowTable>> create(const std::string& name, uint32_t capacity,
                                                   int socket_id, rte_rcu_qsbr* qsbr);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // Control thread only ----------------------------------------------------

  /** Installs a rule, or replaces the one with the same key.  Active at once. */
  Result<void> add(const FlowRule& rule);
  /** Removes the rule with this key.  @return false if there was none. */
  bool remove(const FlowKey& key);
  /** Frees removed entries whose grace period is over.  @return how many are still pending. */
  unsigned reclaim();
  /** Rules installed now. */
  uint32_t size() const { return size_.load(std::memory_order_relaxed); }
  uint32_t capacity() const { return capacity_; }
  /** Calls f(const FlowEntry&) for every installed flow. */
  template <typename F>
  void forEach(F&& f) const {
    const void* key = nullptr;
    void* data = nullptr;
    uint32_t next = 0;
    while (rte_hash_iterate(hash_, &key, &data, &next) >= 0) {
      f(*static_cast<const FlowEntry*>(data));
    }
  }

  // Worker lcores ----------------------------------------------------------

  /** Bit m set: some installed rule uses wildcard mask m. */
  uint8_t activeMasks() const noexcept { return active_masks_.load(std::memory_order_acquire); }

  /**
   * Looks up to RTE_HASH_LOOKUP_BULK_MAX keys at once.
   * @param keys     keys to look up (already masked)
   * @param entries  out: entries[i] is valid where bit i of the result is set
   * @return a bit mask of the keys found
   */
  uint64_t lookupBulk(const void** keys, uint32_t n_keys, FlowEntry** entries) const noexcept {
    uint64_t hits = 0;
    rte_hash_lookup_bulk_data(hash_, keys, n_keys, &hits, reinterpret_cast<void**>(entries));
    return hits;
  }

private:
  struct Deferred {
    int32_t key_position;  ///< slot to free in the hash, or -1 for a replaced entry
    uint32_t reserved;
    FlowEntry* entry;
  };

  FlowTable() = default;
  static void freeDeferred(void* table, void* elements, unsigned n);
  void deferFree(int32_t key_position, FlowEntry* entry);
  void noteMaskAdded(uint8_t mask);
  void noteMaskRemoved(uint8_t mask);

  rte_hash* hash_ = nullptr;
  rte_rcu_qsbr* qsbr_ = nullptr;
  rte_rcu_qsbr_dq* defer_queue_ = nullptr;
  uint32_t capacity_ = 0;
  std::atomic<uint32_t> size_{0};  // written by the control thread, read by metrics
  std::array<uint32_t, kMaskCount> mask_rules_{};
  std::atomic<uint8_t> active_masks_{0};
};

/**
 * Meter profile for a rule, as rte_meter wants it.  Fails if rte_meter
 * refuses the parameters (the config loader already checked the obvious).
 */
Result<void> configureMeterProfile(const MeterConfig& meter, FlowEntry& entry);

}  // namespace qos::appliance
