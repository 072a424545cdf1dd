// FlowTable: the admitted flows, looked up by every worker on every packet and
// changed by the control thread while the workers run.
//
// Memory layout (why it is shaped like this: one packet, as few cache lines):
//  - Entries live in one array of FlowEntry, allocated from DPDK memory once,
//    at create(): capacity slots for the installed flows plus as many again
//    as the RCU defer queue holds, for entries still in their grace period.
//    The rte_hash's data pointer points into that array.  A free list of
//    slots, kept by the control thread alone, replaces new/delete per flow.
//  - A FlowEntry's first cache line holds everything a green packet reads
//    and writes (DSCP, meter kind, actions, profile index, meter state, green
//    counters, last-seen time); yellow and red counters are on the second.
//  - Meter profiles (rte_meter_*_profile, immutable once made) live in a
//    second fixed array, shared: flows with equal meter parameters share one
//    profile, so a few distinct profiles stay in L1/L2 however many flows
//    use them.  Each profile is reference-counted by the control thread.
//    At most min(entry slots, 65536) distinct profiles; add() fails beyond.
//  - Cost: 128 bytes per entry slot, 64 per profile slot, all allocated up
//    front: about 170 MB for 1M flows, on top of the rte_hash's own ~90 MB.
//  - The 48-byte keys are hashed inline by the worker (flowKeyHash, CRC32C,
//    the same function the rte_hash was created with), and rte_hash compares
//    them with its 48-byte vector compare.
//
// Concurrency contract (read before changing anything here):
//  - Writers: only the control thread (the EAL main lcore) calls add(),
//    remove(), reclaim() and forEach().  There is exactly one writer.  The
//    free lists, the profile reference counts and the profile index are its
//    own and are never read by a worker.
//  - Readers: worker lcores call lookupBulk() and use the FlowEntry pointers
//    it returns, and the profiles those entries name, until their next
//    rte_rcu_qsbr_quiescent() call, never later.
//  - The rte_hash is created with RW_CONCURRENCY_LF: lookups take no lock and
//    are never blocked by a writer.  A new entry (and its profile) is fully
//    written before rte_hash_add_key_data() publishes it (a release store).
//  - A removed key's hash slot and its FlowEntry slot are not freed at once:
//    they go on an RCU defer queue and are freed only after every worker has
//    reported a quiescent state (rte_rcu_qsbr), so no worker can read a slot
//    after it is reused.  A replaced rule's old entry goes the same way.
//    reclaim() frees what is due; the control thread calls it often.  When a
//    slot is freed, in the defer queue's callback, the entry's reference to
//    its profile is dropped; a profile slot whose count reaches 0 goes back
//    on the profile free list, so it too is rewritten only after the grace
//    period of the last entry that named it.
//  - Freed entry slots are poisoned (0xDB, unmetered, dscp kPoisonedDscp)
//    before they go on the free list.  A worker that read one anyway, after
//    its grace period, would find an impossible DSCP (0xDB; on the wire its
//    low six bits, 27): debug builds assert on it in the worker, and the
//    pipeline churn test looks for DSCP 27 in its output.  (Entries are DPDK
//    memory, so ASan cannot see such a read.)
//  - FlowEntry fields other than the meter state and the counters are
//    immutable after add().  The meter state and per-color counters are
//    written by the worker that receives the flow.  With several workers, RSS
//    must keep each flow on one queue (it does for a 5-tuple hash); the table
//    does not arbitrate between workers.
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
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_meter.h>
#include <rte_rcu_qsbr.h>

#include "appliance/config/appliance_config.h"
#include "appliance/dataplane/counters.h"
#include "appliance/dataplane/flow_key.h"
#include "control/common/result.h"

namespace qos::appliance {

/**
 * The flow table's hash of a key: CRC32C over its six 8-byte words, seed 0.
 * The rte_hash is created with this very function, so a worker may hash keys
 * itself and look them up with rte_hash_lookup_with_hash_bulk_data().
 * CRC32C is linear: keys that differ in a few bits only (sequential test
 * addresses) can share buckets, which rte_hash's 8-slot buckets, second
 * candidate bucket and extension table absorb.
 */
inline uint32_t flowKeyHash(const FlowKey& key) noexcept {
  static_assert(sizeof(FlowKey) == 6 * sizeof(uint64_t), "six words, written out below");
  std::array<uint64_t, 6> words;
  std::memcpy(words.data(), &key, sizeof(FlowKey));
  // Written out: a loop of six is not unrolled at -O2, and then each word
  // pays for rte_hash_crc_8byte()'s check of which CRC instruction to use.
  uint32_t hash = rte_hash_crc_8byte(words[0], 0);
  hash = rte_hash_crc_8byte(words[1], hash);
  hash = rte_hash_crc_8byte(words[2], hash);
  hash = rte_hash_crc_8byte(words[3], hash);
  hash = rte_hash_crc_8byte(words[4], hash);
  return rte_hash_crc_8byte(words[5], hash);
}

/** How a flow is metered. */
enum class MeterKind : uint8_t {
  None,   ///< not metered: every packet is green
  Srtcm,  ///< RFC 2697
  Trtcm,  ///< RFC 2698
};

/** An immutable meter profile, shared by every flow with the same parameters.  One cache line. */
union alignas(64) MeterProfile {
  rte_meter_srtcm_profile srtcm;
  rte_meter_trtcm_profile trtcm;
};

/** Index of a profile in a FlowTable's profile table. */
using ProfileIndex = uint16_t;
/** At most this many distinct meter profiles: ProfileIndex has 16 bits. */
inline constexpr uint32_t kMaxMeterProfiles = 65536;

/** The DSCP a poisoned (freed) entry carries: impossible, DSCP has six bits. */
inline constexpr uint8_t kPoisonedDscp = 0xDB;

/** Packets and their IP bytes. */
struct PacketCounts {
  RelaxedCounter pkts;
  RelaxedCounter bytes;  ///< IP bytes (IPv4 total length; IPv6 40 + payload)
};

/** An admitted flow, as the data plane sees it.  Two cache lines; a green packet touches one. */
struct alignas(64) FlowEntry {
  // First line: everything a green packet reads or writes. -----------------
  // Written only by the worker that receives the flow.
  union {
    rte_meter_srtcm srtcm;
    rte_meter_trtcm trtcm;
  } meter{};                     ///< token buckets, per meter_kind
  PacketCounts green_counts;     ///< green packets
  RelaxedCounter last_seen_tsc;  ///< TSC of the last packet
  // Immutable after add().
  ProfileIndex profile = 0;  ///< the table's meter profile, when metered
  uint8_t dscp = 0;          ///< DSCP for green packets
  MeterKind meter_kind = MeterKind::None;
  PacketAction yellow;  ///< what yellow packets get
  PacketAction red;     ///< what red packets get
  // Second line: colors a policed flow sees less often. ---------------------
  alignas(64) PacketCounts yellow_counts;  ///< yellow packets
  PacketCounts red_counts;                 ///< red packets

  /** Counters of one color. */
  PacketCounts& counts(Color color) noexcept {
    return color == Color::Green    ? green_counts
           : color == Color::Yellow ? yellow_counts
                                    : red_counts;
  }
  const PacketCounts& counts(Color color) const noexcept {
    return const_cast<FlowEntry*>(this)->counts(color);
  }
};
static_assert(offsetof(FlowEntry, red) + sizeof(PacketAction) <= 64,
              "everything a green packet touches is in the first cache line");
static_assert(offsetof(FlowEntry, yellow_counts) == 64 && sizeof(FlowEntry) == 128,
              "the cold counters fill the second line");
static_assert(std::is_trivially_destructible_v<FlowEntry>, "slots are reused without destruction");

/**
 * Meter profile for a rule's meter, as rte_meter wants it.  Fails if rte_meter
 * refuses the parameters (the config loader already checked the obvious).
 */
Result<void> configureMeterProfile(const MeterConfig& meter, MeterProfile& profile);

/**
 * Sets up an entry's meter: kind, actions, profile index and full buckets.
 * @param profile the profile @p index names (configureMeterProfile() made it)
 */
void configureMeter(const MeterConfig& meter, ProfileIndex index, const MeterProfile& profile,
                    FlowEntry& entry);

class FlowTable {
public:
  /**
   * Creates an empty table.  All of its memory (hash, entries, profiles) is
   * allocated here, once.
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
  /**
   * Which of @p n_workers workers meters and counts @p entry: slots are
   * spread over the workers, so every packet of a rule, whichever queue
   * it came in on, is metered by one worker (worker.h: hand-off).  A worker
   * asks for every packet it finds an entry for: a multiply and a shift
   * (Fibonacci hashing of the slot, scaled to n_workers), never a division.
   */
  unsigned ownerOf(const FlowEntry* entry, unsigned n_workers) const noexcept {
    const auto slot = static_cast<uint32_t>(entry - entries_);
    const uint32_t hashed = slot * 2654435761u;  // mod 2^32: a bijection of the slots
    return static_cast<unsigned>((uint64_t{hashed} * n_workers) >> 32);
  }

  /** The entry installed under @p key, or nullptr.  Its counters are the workers' to write. */
  const FlowEntry* find(const FlowKey& key) const {
    void* data = nullptr;
    return rte_hash_lookup_data(hash_, &key, &data) >= 0 ? static_cast<const FlowEntry*>(data)
                                                         : nullptr;
  }
  /** Rules installed now. */
  uint32_t size() const { return size_.load(std::memory_order_relaxed); }
  uint32_t capacity() const { return capacity_; }
  /** Distinct meter profiles in use now (by installed or not yet reclaimed entries). */
  uint32_t profileCount() const { return static_cast<uint32_t>(profile_index_.size()); }
  /** Calls f(entry), or f(key, entry) if f takes both, for every installed flow. */
  template <typename F>
  void forEach(F&& f) const {
    const void* key = nullptr;
    void* data = nullptr;
    uint32_t next = 0;
    while (rte_hash_iterate(hash_, &key, &data, &next) >= 0) {
      const auto& entry = *static_cast<const FlowEntry*>(data);
      if constexpr (std::is_invocable_v<F, const FlowKey&, const FlowEntry&>) {
        f(*static_cast<const FlowKey*>(key), entry);
      } else {
        f(entry);
      }
    }
  }

  // Worker lcores ----------------------------------------------------------

  /** Bit m set: some installed rule uses wildcard mask m. */
  uint8_t activeMasks() const noexcept { return active_masks_.load(std::memory_order_acquire); }

  /** The profile table: entry.profile indexes it.  Fixed for the table's lifetime. */
  const MeterProfile* profiles() const noexcept { return profiles_; }

  /**
   * Looks up to RTE_HASH_LOOKUP_BULK_MAX keys at once, hashing them here.
   * @param keys     keys to look up (already masked), each a const FlowKey*
   * @param entries  out: entries[i] is valid where bit i of the result is set
   * @return a bit mask of the keys found
   */
  uint64_t lookupBulk(const void** keys, uint32_t n_keys, FlowEntry** entries) const noexcept {
    std::array<hash_sig_t, RTE_HASH_LOOKUP_BULK_MAX> hashes;
    for (uint32_t i = 0; i < n_keys; ++i) {
      hashes[i] = flowKeyHash(*static_cast<const FlowKey*>(keys[i]));
    }
    uint64_t hits = 0;
    rte_hash_lookup_with_hash_bulk_data(hash_, keys, hashes.data(), n_keys, &hits,
                                        reinterpret_cast<void**>(entries));
    return hits;
  }

private:
  struct Deferred {
    int32_t key_position;  ///< slot to free in the hash, or -1 for a replaced entry
    uint32_t entry_index;  ///< slot to free in entries_
  };
  /** What makes two meter profiles the same: mode, rates and burst sizes. */
  using ProfileKey = std::array<uint64_t, 5>;

  FlowTable() = default;
  static void freeDeferred(void* table, void* elements, unsigned n);
  void deferFree(int32_t key_position, uint32_t entry_index);
  void releaseEntry(uint32_t entry_index);
  bool takeEntry(uint32_t& entry_index);
  Result<ProfileIndex> acquireProfile(const MeterConfig& meter);
  void releaseProfile(ProfileIndex index);
  void noteMaskAdded(uint8_t mask);
  void noteMaskRemoved(uint8_t mask);
  uint32_t indexOf(const void* entry) const {
    return static_cast<uint32_t>(static_cast<const FlowEntry*>(entry) - entries_);
  }

  rte_hash* hash_ = nullptr;
  rte_rcu_qsbr* qsbr_ = nullptr;
  rte_rcu_qsbr_dq* defer_queue_ = nullptr;
  uint32_t capacity_ = 0;
  std::atomic<uint32_t> size_{0};  // written by the control thread, read by metrics
  std::array<uint32_t, kMaskCount> mask_rules_{};
  std::atomic<uint8_t> active_masks_{0};

  FlowEntry* entries_ = nullptr;        ///< n_entries_ slots, DPDK memory (rte_free)
  uint32_t n_entries_ = 0;              ///< capacity_ + the defer queue's size
  std::vector<uint32_t> free_entries_;  ///< free slots of entries_ (a stack)

  MeterProfile* profiles_ = nullptr;                  ///< n_profiles_ slots, DPDK memory
  uint32_t n_profiles_ = 0;                           ///< min(n_entries_, kMaxMeterProfiles)
  std::vector<ProfileIndex> free_profiles_;           ///< free slots of profiles_ (a stack)
  std::vector<uint32_t> profile_refs_;                ///< entries naming each profile
  std::vector<ProfileKey> profile_keys_;              ///< parameters of each profile in use
  std::map<ProfileKey, ProfileIndex> profile_index_;  ///< profiles in use, by parameters
};

}  // namespace qos::appliance
