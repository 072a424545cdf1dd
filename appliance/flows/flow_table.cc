#include "appliance/flows/flow_table.h"

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>

#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_memory.h>

namespace qos::appliance {
namespace {

// Flows removed in one go before the defer queue makes the control thread
// wait for a grace period in place (rte_rcu_qsbr_synchronize).
constexpr uint32_t kDeferQueueMin = 4096;
// What a freed entry slot is filled with, apart from the fields set below.
constexpr uint8_t kPoisonByte = 0xDB;
constexpr uint64_t kPoisonWord = 0xDBDBDBDBDBDBDBDBull;

uint32_t hashFlowKey(const void* key, uint32_t key_len, uint32_t init_val) {
  // The table is created with key_len == sizeof(FlowKey) and init_val == 0,
  // so this is flowKeyHash(), which workers call inline.
  static_cast<void>(key_len);
  static_cast<void>(init_val);
  return flowKeyHash(*static_cast<const FlowKey*>(key));
}

/** Fills a freed slot with a pattern no live entry has; see flow_table.h. */
void poison(FlowEntry& entry) {
  std::memset(&entry.meter, kPoisonByte, sizeof(entry.meter));
  for (PacketCounts* c : {&entry.green_counts, &entry.yellow_counts, &entry.red_counts}) {
    c->pkts.set(kPoisonWord);
    c->bytes.set(kPoisonWord);
  }
  entry.last_seen_tsc.set(kPoisonWord);
  entry.profile = 0;  // a valid index, so a stray reader still reads table memory
  entry.dscp = kPoisonedDscp;
  entry.meter_kind = MeterKind::None;  // so a stray reader takes the green path: dscp
  entry.yellow = PacketAction{PacketAction::Kind::Remark, kPoisonedDscp};
  entry.red = PacketAction{PacketAction::Kind::Remark, kPoisonedDscp};
}

}  // namespace

Result<void> configureMeterProfile(const MeterConfig& meter, MeterProfile& profile) {
  if (meter.mode == MeterMode::Srtcm) {
    rte_meter_srtcm_params params{meter.cir_bytes_per_sec, meter.cbs_bytes, meter.ebs_bytes};
    const int rc = rte_meter_srtcm_profile_config(&profile.srtcm, &params);
    if (rc != 0) {
      return makeError("rte_meter refused the srTCM parameters: " + std::string(rte_strerror(-rc)));
    }
    return {};
  }
  rte_meter_trtcm_params params{meter.cir_bytes_per_sec, meter.pir_bytes_per_sec, meter.cbs_bytes,
                                meter.pbs_bytes};
  const int rc = rte_meter_trtcm_profile_config(&profile.trtcm, &params);
  if (rc != 0) {
    return makeError("rte_meter refused the trTCM parameters: " + std::string(rte_strerror(-rc)));
  }
  return {};
}

void configureMeter(const MeterConfig& meter, ProfileIndex index, const MeterProfile& profile,
                    FlowEntry& entry) {
  entry.profile = index;
  entry.yellow = meter.yellow;
  entry.red = meter.red;
  // rte_meter_*_config() only reads the profile, though its parameter is not
  // const; with non-null pointers it cannot fail.
  auto& p = const_cast<MeterProfile&>(profile);
  if (meter.mode == MeterMode::Srtcm) {
    entry.meter_kind = MeterKind::Srtcm;
    rte_meter_srtcm_config(&entry.meter.srtcm, &p.srtcm);
  } else {
    entry.meter_kind = MeterKind::Trtcm;
    rte_meter_trtcm_config(&entry.meter.trtcm, &p.trtcm);
  }
}

Result<std::unique_ptr<FlowTable>> FlowTable::create(const std::string& name, uint32_t capacity,
                                                     int socket_id, rte_rcu_qsbr* qsbr) {
  std::unique_ptr<FlowTable> table(new FlowTable());
  table->capacity_ = capacity;
  table->qsbr_ = qsbr;

  const std::string hash_name = "ft_" + name;
  rte_hash_parameters params{};
  params.name = hash_name.c_str();
  params.entries = capacity;
  params.key_len = sizeof(FlowKey);
  params.hash_func = hashFlowKey;
  params.hash_func_init_val = 0;
  params.socket_id = socket_id;
  // Lock-free readers, one writer.  EXT_TABLE: a full bucket chains into an
  // extension table, so the table really holds `capacity` keys.  LF implies
  // NO_FREE_ON_DEL: we free slots ourselves after the grace period.
  params.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  table->hash_ = rte_hash_create(&params);
  if (table->hash_ == nullptr) {
    // rte_hash reports a failed allocation as ENOENT, which would mislead.
    return makeError("cannot create the flow table's hash for " + std::to_string(capacity) +
                     " flows (out of memory, most likely): give EAL more memory (-m) or lower "
                     "dataplane.max_flows");
  }

  const uint32_t dq_size = std::max(kDeferQueueMin, capacity / 4);
  // Every slot is either free, installed (at most `capacity`) or waiting in
  // the defer queue (at most `dq_size`; beyond that deferFree() waits).
  table->n_entries_ = capacity + dq_size;
  table->entries_ = static_cast<FlowEntry*>(
      rte_zmalloc_socket(("fte_" + name).c_str(), sizeof(FlowEntry) * table->n_entries_,
                         RTE_CACHE_LINE_SIZE, socket_id));
  table->n_profiles_ = std::min(table->n_entries_, kMaxMeterProfiles);
  table->profiles_ = static_cast<MeterProfile*>(
      rte_zmalloc_socket(("ftp_" + name).c_str(), sizeof(MeterProfile) * table->n_profiles_,
                         RTE_CACHE_LINE_SIZE, socket_id));
  if (table->entries_ == nullptr || table->profiles_ == nullptr) {
    return makeError("cannot allocate flow table memory for " + std::to_string(capacity) +
                     " flows (" +
                     std::to_string((sizeof(FlowEntry) * table->n_entries_ +
                                     sizeof(MeterProfile) * table->n_profiles_) >>
                                    20) +
                     " MB); give EAL more memory (-m) or lower dataplane.max_flows");
  }
  // Free lists as stacks, lowest slot on top, so a small table stays compact.
  table->free_entries_.resize(table->n_entries_);
  for (uint32_t i = 0; i < table->n_entries_; ++i) {
    table->free_entries_[i] = table->n_entries_ - 1 - i;
    poison(table->entries_[i]);
  }
  table->free_profiles_.resize(table->n_profiles_);
  for (uint32_t i = 0; i < table->n_profiles_; ++i) {
    table->free_profiles_[i] = static_cast<ProfileIndex>(table->n_profiles_ - 1 - i);
  }
  table->profile_refs_.assign(table->n_profiles_, 0);
  table->profile_keys_.resize(table->n_profiles_);

  const std::string dq_name = "fdq_" + name;
  rte_rcu_qsbr_dq_parameters dq{};
  dq.name = dq_name.c_str();
  dq.flags = RTE_RCU_QSBR_DQ_MT_UNSAFE;  // one writer: the control thread
  dq.size = dq_size;
  dq.esize = sizeof(Deferred);
  dq.trigger_reclaim_limit = 256;
  dq.max_reclaim_size = 1024;
  dq.free_fn = &FlowTable::freeDeferred;
  dq.p = table.get();
  dq.v = qsbr;
  table->defer_queue_ = rte_rcu_qsbr_dq_create(&dq);
  if (table->defer_queue_ == nullptr) {
    return makeError("cannot create the flow table's RCU defer queue: " +
                     std::string(rte_strerror(rte_errno)));
  }
  return table;
}

FlowTable::~FlowTable() {
  if (defer_queue_ != nullptr) {
    // Workers are stopped (offline) by now, so every grace period is over.
    if (rte_rcu_qsbr_dq_delete(defer_queue_) != 0) {
      rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
      rte_rcu_qsbr_dq_delete(defer_queue_);
    }
  }
  rte_hash_free(hash_);  // accepts nullptr
  rte_free(entries_);
  rte_free(profiles_);
}

void FlowTable::freeDeferred(void* table, void* elements, unsigned n) {
  auto* self = static_cast<FlowTable*>(table);
  auto* deferred = static_cast<Deferred*>(elements);
  for (unsigned i = 0; i < n; ++i) {
    if (deferred[i].key_position >= 0) {
      rte_hash_free_key_with_position(self->hash_, deferred[i].key_position);
    }
    self->releaseEntry(deferred[i].entry_index);
  }
}

void FlowTable::deferFree(int32_t key_position, uint32_t entry_index) {
  Deferred d{key_position, entry_index};
  if (rte_rcu_qsbr_dq_enqueue(defer_queue_, &d) != 0) {
    // The queue is full of entries still in their grace period: wait for the
    // workers to pass a quiescent state (microseconds), then free in place.
    rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    freeDeferred(this, &d, 1);
  }
}

void FlowTable::releaseEntry(uint32_t entry_index) {
  FlowEntry& entry = entries_[entry_index];
  if (entry.meter_kind != MeterKind::None) {
    releaseProfile(entry.profile);
  }
  poison(entry);
  free_entries_.push_back(entry_index);
}

bool FlowTable::takeEntry(uint32_t& entry_index) {
  if (free_entries_.empty()) {
    // Every free slot is still in its grace period.
    rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    reclaim();
    if (free_entries_.empty()) {
      return false;
    }
  }
  entry_index = free_entries_.back();
  free_entries_.pop_back();
  std::construct_at(&entries_[entry_index]);
  return true;
}

Result<ProfileIndex> FlowTable::acquireProfile(const MeterConfig& meter) {
  const bool srtcm = meter.mode == MeterMode::Srtcm;
  const ProfileKey key = {static_cast<uint64_t>(meter.mode), meter.cir_bytes_per_sec,
                          srtcm ? 0 : meter.pir_bytes_per_sec, meter.cbs_bytes,
                          srtcm ? meter.ebs_bytes : meter.pbs_bytes};
  if (auto it = profile_index_.find(key); it != profile_index_.end()) {
    ++profile_refs_[it->second];
    return it->second;
  }
  if (free_profiles_.empty()) {
    // Profiles of removed flows may still be in their grace period.
    rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    reclaim();
    if (free_profiles_.empty()) {
      return makeError("too many distinct meter profiles (" + std::to_string(n_profiles_) + ")");
    }
  }
  const ProfileIndex index = free_profiles_.back();
  // No worker reads this slot: no installed entry names it (its count is 0).
  if (auto r = configureMeterProfile(meter, profiles_[index]); !r) {
    return r.error();
  }
  free_profiles_.pop_back();
  profile_refs_[index] = 1;
  profile_keys_[index] = key;
  profile_index_.emplace(key, index);
  return index;
}

void FlowTable::releaseProfile(ProfileIndex index) {
  if (--profile_refs_[index] == 0) {
    profile_index_.erase(profile_keys_[index]);
    free_profiles_.push_back(index);
  }
}

void FlowTable::noteMaskAdded(uint8_t mask) {
  if (mask_rules_[mask]++ == 0) {
    active_masks_.fetch_or(static_cast<uint8_t>(1u << mask), std::memory_order_release);
  }
}

void FlowTable::noteMaskRemoved(uint8_t mask) {
  if (--mask_rules_[mask] == 0) {
    active_masks_.fetch_and(static_cast<uint8_t>(~(1u << mask)), std::memory_order_release);
  }
}

Result<void> FlowTable::add(const FlowRule& rule) {
  const FlowKey key = flowKeyOf(rule);
  void* old = nullptr;
  const bool replacing = rte_hash_lookup_data(hash_, &key, &old) >= 0;
  if (!replacing && size_ >= capacity_) {
    return makeError("flow table full (" + std::to_string(capacity_) + " flows)");
  }
  ProfileIndex profile = 0;
  if (rule.meter) {
    auto p = acquireProfile(*rule.meter);
    if (!p) {
      return p.error();
    }
    profile = *p;
  }
  uint32_t index = 0;
  if (!takeEntry(index)) {
    if (rule.meter) {
      releaseProfile(profile);
    }
    return makeError("no free flow table slot: too many flows waiting for their grace period");
  }
  FlowEntry& entry = entries_[index];
  entry.dscp = rule.dscp;
  if (rule.meter) {
    configureMeter(*rule.meter, profile, profiles_[profile], entry);
  }

  // Mark the mask active before the key is visible, so a worker that finds
  // the key never skips its mask.
  const uint8_t mask = key.wildcard_mask;
  if (!replacing) {
    noteMaskAdded(mask);
  }
  int rc = rte_hash_add_key_data(hash_, &key, &entry);
  if (rc == -ENOSPC) {
    // Slots of removed flows may still be in their grace period.
    rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    reclaim();
    rc = rte_hash_add_key_data(hash_, &key, &entry);
  }
  if (rc != 0) {
    if (!replacing) {
      noteMaskRemoved(mask);
    }
    releaseEntry(index);  // never published: no grace period needed
    return makeError("cannot add flow: " + std::string(rte_strerror(-rc)));
  }
  if (replacing) {
    deferFree(-1, indexOf(old));
  } else {
    ++size_;
  }
  return {};
}

bool FlowTable::remove(const FlowKey& key) {
  void* data = nullptr;
  if (rte_hash_lookup_data(hash_, &key, &data) < 0) {
    return false;
  }
  const int32_t position = rte_hash_del_key(hash_, &key);
  if (position < 0) {
    return false;
  }
  --size_;
  noteMaskRemoved(key.wildcard_mask);
  deferFree(position, indexOf(data));
  return true;
}

unsigned FlowTable::reclaim() {
  unsigned freed = 0;
  unsigned pending = 0;
  unsigned available = 0;
  rte_rcu_qsbr_dq_reclaim(defer_queue_, UINT32_MAX, &freed, &pending, &available);
  return pending;
}

}  // namespace qos::appliance
