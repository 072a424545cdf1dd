#include "appliance/flows/flow_table.h"

#include <cerrno>
#include <string>

#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_memory.h>

namespace qos::appliance {
namespace {

// Flows removed in one go before the defer queue makes the control thread
// wait for a grace period in place (rte_rcu_qsbr_synchronize).
constexpr uint32_t kDeferQueueMin = 4096;

uint32_t hashFlowKey(const void* key, uint32_t key_len, uint32_t init_val) {
  return rte_hash_crc(key, key_len, init_val);
}

}  // namespace

FlowKey flowKeyOf(const FlowRule& rule) {
  FlowKey key;
  key.src_addr = rule.src.bytes;
  key.dst_addr = rule.dst.bytes;
  key.family = rule.src.family == 6 ? IpFamily::V6 : IpFamily::V4;
  key.protocol = rule.protocol;
  key.src_port = rule.src_port;
  key.dst_port = rule.dst_port;
  uint8_t mask = 0;
  if (rule.src_port == 0) {
    mask |= kWildSrcPort;
  }
  if (rule.dst_port == 0) {
    mask |= kWildDstPort;
  }
  if (rule.protocol == kAnyProtocol) {
    mask |= kWildProtocol;
  }
  key.wildcard_mask = mask;
  return key;
}

Result<void> configureMeterProfile(const MeterConfig& meter, FlowEntry& entry) {
  entry.metered = true;
  entry.mode = meter.mode;
  entry.yellow = meter.yellow;
  entry.red = meter.red;
  if (meter.mode == MeterMode::Srtcm) {
    rte_meter_srtcm_params params{meter.cir_bytes_per_sec, meter.cbs_bytes, meter.ebs_bytes};
    int rc = rte_meter_srtcm_profile_config(&entry.profile.srtcm, &params);
    if (rc == 0) {
      rc = rte_meter_srtcm_config(&entry.meter.srtcm, &entry.profile.srtcm);
    }
    if (rc != 0) {
      return makeError("rte_meter refused the srTCM parameters: " + std::string(rte_strerror(-rc)));
    }
    return {};
  }
  rte_meter_trtcm_params params{meter.cir_bytes_per_sec, meter.pir_bytes_per_sec, meter.cbs_bytes,
                                meter.pbs_bytes};
  int rc = rte_meter_trtcm_profile_config(&entry.profile.trtcm, &params);
  if (rc == 0) {
    rc = rte_meter_trtcm_config(&entry.meter.trtcm, &entry.profile.trtcm);
  }
  if (rc != 0) {
    return makeError("rte_meter refused the trTCM parameters: " + std::string(rte_strerror(-rc)));
  }
  return {};
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
    return makeError("cannot create flow table '" + hash_name + "' for " +
                     std::to_string(capacity) + " flows: " + rte_strerror(rte_errno));
  }

  const std::string dq_name = "fdq_" + name;
  rte_rcu_qsbr_dq_parameters dq{};
  dq.name = dq_name.c_str();
  dq.flags = RTE_RCU_QSBR_DQ_MT_UNSAFE;  // one writer: the control thread
  dq.size = std::max(kDeferQueueMin, capacity / 4);
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
  if (hash_ != nullptr) {
    const void* key = nullptr;
    void* data = nullptr;
    uint32_t next = 0;
    while (rte_hash_iterate(hash_, &key, &data, &next) >= 0) {
      delete static_cast<FlowEntry*>(data);
    }
    rte_hash_free(hash_);
  }
}

void FlowTable::freeDeferred(void* table, void* elements, unsigned n) {
  auto* self = static_cast<FlowTable*>(table);
  auto* deferred = static_cast<Deferred*>(elements);
  for (unsigned i = 0; i < n; ++i) {
    if (deferred[i].key_position >= 0) {
      rte_hash_free_key_with_position(self->hash_, deferred[i].key_position);
    }
    delete deferred[i].entry;
  }
}

void FlowTable::deferFree(int32_t key_position, FlowEntry* entry) {
  Deferred d{key_position, 0, entry};
  if (rte_rcu_qsbr_dq_enqueue(defer_queue_, &d) != 0) {
    // The queue is full of entries still in their grace period: wait for the
    // workers to pass a quiescent state (microseconds), then free in place.
    rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    freeDeferred(this, &d, 1);
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
  auto entry = std::make_unique<FlowEntry>();
  entry->key = flowKeyOf(rule);
  entry->dscp = rule.dscp;
  if (rule.meter) {
    if (auto r = configureMeterProfile(*rule.meter, *entry); !r) {
      return r.error();
    }
  }
  void* old = nullptr;
  const bool replacing = rte_hash_lookup_data(hash_, &entry->key, &old) >= 0;
  if (!replacing && size_ >= capacity_) {
    return makeError("flow table full (" + std::to_string(capacity_) + " flows)");
  }
  // Mark the mask active before the key is visible, so a worker that finds
  // the key never skips its mask.
  const uint8_t mask = entry->key.wildcard_mask;
  if (!replacing) {
    noteMaskAdded(mask);
  }
  int rc = rte_hash_add_key_data(hash_, &entry->key, entry.get());
  if (rc == -ENOSPC) {
    // Slots of removed flows may still be in their grace period.
    rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    reclaim();
    rc = rte_hash_add_key_data(hash_, &entry->key, entry.get());
  }
  if (rc != 0) {
    if (!replacing) {
      noteMaskRemoved(mask);
    }
    return makeError("cannot add flow: " + std::string(rte_strerror(-rc)));
  }
  [[maybe_unused]] FlowEntry* owned_by_table = entry.release();  // freed via the defer queue
  if (replacing) {
    deferFree(-1, static_cast<FlowEntry*>(old));
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
  deferFree(position, static_cast<FlowEntry*>(data));
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
