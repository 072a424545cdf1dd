#include "appliance/dataplane/worker.h"

#include <time.h>

#include <rte_cycles.h>
#include <rte_prefetch.h>

#include "appliance/dataplane/dscp_marking.h"
#include "appliance/dataplane/police.h"
#include "control/common/assert.h"

namespace qos::appliance {
namespace {

constexpr uint16_t kPrefetchOffset = 4;
// Empty polls in a row before an idle worker may sleep (when configured to).
constexpr uint32_t kIdlePollsBeforeSleep = 1024;
// Marks "leave the DSCP as it is".
constexpr uint8_t kKeepDscp = 0xFF;

struct Decision {
  uint8_t dscp = kKeepDscp;  ///< DSCP to write, or kKeepDscp
  bool drop = false;
  DropReason reason = DropReason::Count;
};

inline Decision actionFor(const PacketAction& action, uint8_t flow_dscp, DropReason drop_reason) {
  switch (action.kind) {
    case PacketAction::Kind::Pass:
      return Decision{flow_dscp, false, DropReason::Count};
    case PacketAction::Kind::Remark:
      return Decision{action.dscp, false, DropReason::Count};
    case PacketAction::Kind::Drop:
      return Decision{kKeepDscp, true, drop_reason};
  }
  return Decision{};
}

inline void idleSleep(uint32_t sleep_us) {
  timespec ts{0, static_cast<long>(sleep_us) * 1000};
  nanosleep(&ts, nullptr);
}

}  // namespace

Worker::Worker(unsigned thread_id, const WorkerShared& shared, std::vector<WorkerQueue> queues)
    : thread_id_(thread_id), shared_(shared), queues_(std::move(queues)) {}

int Worker::launch(void* worker) { return static_cast<Worker*>(worker)->run(); }

int Worker::run() noexcept {
  rte_rcu_qsbr_thread_online(shared_.qsbr, thread_id_);
  uint32_t idle_polls = 0;
  while (!shared_.stop->load(std::memory_order_relaxed)) {
    const PolicySnapshot& policy = *shared_.policy->load(std::memory_order_acquire);
    const uint64_t now_tsc = rte_rdtsc();
    bool busy = false;
    for (const WorkerQueue& q : queues_) {
      std::array<rte_mbuf*, kBurstSize> pkts;
      const uint16_t n = rte_eth_rx_burst(q.rx_port, q.rx_queue, pkts.data(), kBurstSize);
      QOS_ASSERT(n <= kBurstSize, "rx_burst never returns more than asked");
      if (n != 0) {
        processBurst(policy, now_tsc, q, pkts.data(), n);
        busy = true;
      }
    }
    rte_rcu_qsbr_quiescent(shared_.qsbr, thread_id_);  // no table pointer survives this line
    if (busy) {
      idle_polls = 0;
    } else if (shared_.idle_sleep_us != 0 && ++idle_polls >= kIdlePollsBeforeSleep) {
      // Only when there is nothing to do: tests and demos share two cores.
      rte_rcu_qsbr_thread_offline(shared_.qsbr, thread_id_);
      idleSleep(shared_.idle_sleep_us);
      rte_rcu_qsbr_thread_online(shared_.qsbr, thread_id_);
    }
  }
  rte_rcu_qsbr_thread_offline(shared_.qsbr, thread_id_);
  return 0;
}

void Worker::processBurst(const PolicySnapshot& policy, uint64_t now_tsc, const WorkerQueue& queue,
                          rte_mbuf** pkts, uint16_t n_pkts) noexcept {
  PortCounters& pc = counters_[queue.rx_port];
  std::array<ParsedPacket, kBurstSize> parsed;
  std::array<Decision, kBurstSize> decision;
  std::array<FlowEntry*, kBurstSize> entry{};
  std::array<uint16_t, kBurstSize> ip_index;  // burst positions of the IP packets
  uint16_t n_ip = 0;
  uint64_t rx_bytes = 0;

  for (uint16_t i = 0; i < n_pkts && i < kPrefetchOffset; ++i) {
    rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
  }
  // Stage 1: parse.
  for (uint16_t i = 0; i < n_pkts; ++i) {
    if (i + kPrefetchOffset < n_pkts) {
      rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetchOffset], void*));
    }
    rte_mbuf* m = pkts[i];
    rx_bytes += rte_pktmbuf_pkt_len(m);
    decision[i] = Decision{};
    const std::span<const uint8_t> frame(rte_pktmbuf_mtod(m, const uint8_t*),
                                         rte_pktmbuf_data_len(m));
    switch (parsePacket(frame, parsed[i])) {
      case ParseStatus::Ip:
        ip_index[n_ip++] = i;
        break;
      case ParseStatus::NotIp:
        pc.non_ip_pkts.add(1);
        break;
      case ParseStatus::Malformed:
        pc.malformed[static_cast<size_t>(parsed[i].malformed)].add(1);
        if (policy.malformed == MalformedPolicy::Drop) {
          decision[i] = Decision{kKeepDscp, true, DropReason::Malformed};
        }
        break;
    }
  }
  pc.rx_pkts.add(n_pkts);
  pc.rx_bytes.add(rx_bytes);

  // Stage 2: admitted flows, one bulk lookup per wildcard mask in use, most
  // specific first; a packet found under one mask is not looked up again.
  const uint8_t masks = shared_.flows->activeMasks();
  if (masks != 0 && n_ip != 0) {
    std::array<uint16_t, kBurstSize> pending = ip_index;
    uint16_t n_pending = n_ip;
    std::array<FlowKey, kBurstSize> masked;
    std::array<const void*, kBurstSize> keys;
    std::array<FlowEntry*, kBurstSize> found;
    for (const uint8_t mask : kMaskProbeOrder) {
      if ((masks & (1u << mask)) == 0 || n_pending == 0) {
        continue;
      }
      for (uint16_t j = 0; j < n_pending; ++j) {
        if (mask == 0) {
          keys[j] = &parsed[pending[j]].key;  // the parser leaves wildcard_mask at 0
        } else {
          masked[j] = parsed[pending[j]].key;
          applyMask(masked[j], mask);
          keys[j] = &masked[j];
        }
      }
      const uint64_t hits = shared_.flows->lookupBulk(keys.data(), n_pending, found.data());
      uint16_t still = 0;
      for (uint16_t j = 0; j < n_pending; ++j) {
        if ((hits >> j) & 1u) {
          entry[pending[j]] = found[j];
        } else {
          pending[still++] = pending[j];
        }
      }
      n_pending = still;
    }
  }

  // Stage 3: decide and mark.
  for (uint16_t k = 0; k < n_ip; ++k) {
    const uint16_t i = ip_index[k];
    const ParsedPacket& p = parsed[i];
    Decision d;
    if (FlowEntry* e = entry[i]) {
      pc.matched[static_cast<size_t>(MatchKind::Flow)].add(1);
      const Color color = meterPacket(*e, now_tsc, p.l3_length);
      e->pkts[static_cast<size_t>(color)].add(1);
      e->bytes[static_cast<size_t>(color)].add(p.l3_length);
      e->last_seen_tsc.set(now_tsc);
      switch (color) {
        case Color::Green:
          d = Decision{e->dscp, false, DropReason::Count};
          break;
        case Color::Yellow:
          d = actionFor(e->yellow, e->dscp, DropReason::MeterYellow);
          break;
        default:
          d = actionFor(e->red, e->dscp, DropReason::MeterRed);
          break;
      }
    } else {
      const ClassMatcher* match = nullptr;
      for (const ClassMatcher& rule : policy.classes) {
        if (rule.matches(p)) {
          match = &rule;
          break;
        }
      }
      if (match != nullptr) {
        pc.matched[static_cast<size_t>(MatchKind::Class)].add(1);
        d = actionFor(match->action, kKeepDscp, DropReason::ClassPolicy);
      } else {
        pc.matched[static_cast<size_t>(MatchKind::Unmatched)].add(1);
        switch (policy.unmatched) {
          case UnmatchedPolicy::Remark:
            d = Decision{policy.default_dscp, false, DropReason::Count};
            break;
          case UnmatchedPolicy::Trust:
            break;
          case UnmatchedPolicy::Drop:
            d = Decision{kKeepDscp, true, DropReason::Unmatched};
            break;
        }
      }
    }
    if (!d.drop && d.dscp != kKeepDscp && d.dscp != p.dscp) {
      uint8_t* ip = rte_pktmbuf_mtod_offset(pkts[i], uint8_t*, p.l3_offset);
      if (p.key.family == IpFamily::V4) {
        setDscpIpv4(ip, d.dscp);
      } else {
        setDscpIpv6(ip, d.dscp);
      }
      pc.remarked_pkts.add(1);
    }
    decision[i] = d;
  }

  // Stage 4: transmit what passes on the peer port; free and count the rest.
  std::array<rte_mbuf*, kBurstSize> tx;
  std::array<uint32_t, kBurstSize> tx_len;  // read now: after tx_burst the mbufs are not ours
  std::array<rte_mbuf*, kBurstSize> dropped;
  uint16_t n_tx = 0;
  uint16_t n_dropped = 0;
  for (uint16_t i = 0; i < n_pkts; ++i) {
    if (decision[i].drop) {
      pc.drops[static_cast<size_t>(decision[i].reason)].add(1);
      dropped[n_dropped++] = pkts[i];
    } else {
      tx_len[n_tx] = rte_pktmbuf_pkt_len(pkts[i]);
      tx[n_tx++] = pkts[i];
    }
  }
  if (n_dropped != 0) {
    rte_pktmbuf_free_bulk(dropped.data(), n_dropped);
  }
  if (n_tx == 0) {
    return;
  }
  const uint16_t sent = rte_eth_tx_burst(queue.tx_port, queue.tx_queue, tx.data(), n_tx);
  uint64_t tx_bytes = 0;
  for (uint16_t i = 0; i < sent; ++i) {
    tx_bytes += tx_len[i];
  }
  pc.tx_pkts.add(sent);
  pc.tx_bytes.add(tx_bytes);
  if (sent < n_tx) {
    pc.drops[static_cast<size_t>(DropReason::TxFull)].add(n_tx - sent);
    rte_pktmbuf_free_bulk(&tx[sent], n_tx - sent);
  }
}

}  // namespace qos::appliance
