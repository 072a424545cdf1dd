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
// Marks "not dropped" where a DropReason is kept per packet.
constexpr DropReason kNoDrop = DropReason::Count;
// Marks "handed to its flow's owner worker" where a DropReason is kept per packet.
constexpr DropReason kHandedOff = static_cast<DropReason>(static_cast<uint8_t>(kNoDrop) + 1);

struct Decision {
  uint8_t dscp = kKeepDscp;   ///< DSCP to write, or kKeepDscp
  DropReason drop = kNoDrop;  ///< why the packet is dropped, or kNoDrop
};

inline Decision actionFor(const PacketAction& action, uint8_t flow_dscp, DropReason drop_reason) {
  switch (action.kind) {
    case PacketAction::Kind::Pass:
      return Decision{flow_dscp, kNoDrop};
    case PacketAction::Kind::Remark:
      return Decision{action.dscp, kNoDrop};
    case PacketAction::Kind::Drop:
      return Decision{kKeepDscp, drop_reason};
  }
  return Decision{};
}

using MatchCounts = std::array<uint16_t, kMatchKinds>;

/** A packet of an admitted flow: meter, count, and the action for its color. */
inline Decision decideFlow(FlowEntry& e, const MeterProfile* profiles, uint64_t now_tsc,
                           uint16_t ip_len_bytes) noexcept {
  QOS_ASSERT(e.dscp != kPoisonedDscp, "a flow entry is read after its grace period");
  const Color color = meterPacket(e, profiles, now_tsc, ip_len_bytes);
  e.last_seen_tsc.set(now_tsc);
  if (color == Color::Green) [[likely]] {
    e.green_counts.pkts.add(1);
    e.green_counts.bytes.add(ip_len_bytes);
    return Decision{e.dscp, kNoDrop};
  }
  PacketCounts& counts = e.counts(color);
  counts.pkts.add(1);
  counts.bytes.add(ip_len_bytes);
  if (color == Color::Yellow) {
    return actionFor(e.yellow, e.dscp, DropReason::MeterYellow);
  }
  return actionFor(e.red, e.dscp, DropReason::MeterRed);
}

/** The trust policy's treatment of an IP packet that nothing else decided. */
inline Decision decideUnmatched(const PolicySnapshot& policy) noexcept {
  switch (policy.unmatched) {
    case UnmatchedPolicy::Remark:
      return Decision{policy.default_dscp, kNoDrop};
    case UnmatchedPolicy::Trust:
      break;
    case UnmatchedPolicy::Drop:
      return Decision{kKeepDscp, DropReason::Unmatched};
  }
  return Decision{};
}

/** A packet of no admitted flow: the first class rule that matches, else the trust policy. */
inline Decision decideByPolicy(const PolicySnapshot& policy, const ParsedPacket& p,
                               MatchCounts& n_matched) noexcept {
  for (const ClassMatcher& rule : policy.classes) {
    if (rule.matches(p)) {
      ++n_matched[static_cast<size_t>(MatchKind::Class)];
      return actionFor(rule.action, kKeepDscp, DropReason::ClassPolicy);
    }
  }
  ++n_matched[static_cast<size_t>(MatchKind::Unmatched)];
  return decideUnmatched(policy);
}

/**
 * A malformed frame with an IP header that a downstream device reads: the
 * unmatched policy, so that its sender's DSCP does not pass the trust
 * boundary.  Class rules are not tried: its 5-tuple cannot be trusted.
 */
inline Decision decideMalformedIp(const PolicySnapshot& policy, const ParsedPacket& p,
                                  const rte_mbuf* m, MatchCounts& n_matched) noexcept {
  ++n_matched[static_cast<size_t>(MatchKind::Malformed)];
  const Decision d = decideUnmatched(policy);
  // Its DS field is rewritten in place, so the fixed IP header must be in the
  // first segment; one that is not (only in a frame of several) cannot be
  // re-marked and is dropped.
  if (d.drop == kNoDrop && d.dscp != kKeepDscp && d.dscp != p.dscp &&
      p.l3_offset + fixedIpHeaderBytes(p.key.family) > rte_pktmbuf_data_len(m)) {
    return Decision{kKeepDscp, DropReason::Malformed};
  }
  return d;
}

/** Writes the decision's DSCP into the packet's IP header, if it changes it. */
inline void applyDscp(rte_mbuf* m, const ParsedPacket& p, const Decision& d,
                      uint16_t& n_remarked) noexcept {
  if (d.drop == kNoDrop && d.dscp != kKeepDscp && d.dscp != p.dscp) {
    uint8_t* ip = rte_pktmbuf_mtod_offset(m, uint8_t*, p.l3_offset);
    if (p.key.family == IpFamily::V4) {
      setDscpIpv4(ip, d.dscp);
    } else {
      setDscpIpv6(ip, d.dscp);
    }
    ++n_remarked;
  }
}

inline void idleSleep(uint32_t sleep_us) {
  timespec ts{0, static_cast<long>(sleep_us) * 1000};
  nanosleep(&ts, nullptr);
}

}  // namespace

Worker::Worker(unsigned thread_id, const WorkerShared& shared, std::vector<WorkerQueue> queues)
    : thread_id_(thread_id), shared_(shared), queues_(std::move(queues)) {
  for (const WorkerQueue& q : queues_) {
    handoff_queue_[q.rx_port] = q;  // its own TX queue on that port's peer
  }
}

bool Worker::drainHandoff(const PolicySnapshot& policy, uint64_t now_tsc) noexcept {
  std::array<rte_mbuf*, kBurstSize> pkts;
  const unsigned n = rte_ring_sc_dequeue_burst(
      shared_.handoff[thread_id_], reinterpret_cast<void**>(pkts.data()), kBurstSize, nullptr);
  // Runs of packets from one RX port (the sender set mbuf->port) go as one burst.
  for (unsigned i = 0; i < n;) {
    const uint16_t port = pkts[i]->port;
    unsigned j = i + 1;
    while (j < n && pkts[j]->port == port) {
      ++j;
    }
    processBurst(policy, now_tsc, handoff_queue_[port], &pkts[i], static_cast<uint16_t>(j - i),
                 true);
    i = j;
  }
  return n != 0;
}

[[gnu::cold, gnu::noinline]] ParseStatus Worker::parseSegmented(const rte_mbuf* m,
                                                                ParsedPacket& out) noexcept {
  const uint32_t frame_bytes = rte_pktmbuf_pkt_len(m);
  const uint32_t n = frame_bytes < kGatherBytes ? frame_bytes : kGatherBytes;
  const auto* bytes = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, n, gathered_.data()));
  if (bytes == nullptr) {  // pkt_len says more than the segments hold
    out = ParsedPacket{};
    out.malformed = MalformedReason::HeadersNotContiguous;
    return ParseStatus::Malformed;
  }
  const ParseStatus status = parsePacket(std::span<const uint8_t>(bytes, n), frame_bytes, out);
  // The DS field is rewritten in place: an IP header that is not wholly in
  // the first segment makes the frame malformed (still with its IP header,
  // so the unmatched policy decides whether it may pass unchanged).
  if (status == ParseStatus::Ip &&
      out.l3_offset + fixedIpHeaderBytes(out.key.family) > rte_pktmbuf_data_len(m)) {
    out.malformed = MalformedReason::HeadersNotContiguous;
    return ParseStatus::Malformed;
  }
  return status;
}

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
    if (shared_.n_workers > 1 && drainHandoff(policy, now_tsc)) {
      busy = true;
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
                          rte_mbuf** pkts, uint16_t n_pkts, bool handed_off) noexcept {
  PortCounters& pc = counters_[queue.rx_port];
  // Per-port counts of this burst, added to pc once, before the packets leave.
  MatchCounts n_matched{};
  std::array<uint16_t, kDropReasons> n_drops{};
  uint16_t n_non_ip = 0;
  uint16_t n_remarked = 0;
  std::array<ParsedPacket, kBurstSize>& parsed = parsed_;
  // Why each packet is dropped, or kNoDrop: written once per packet, by
  // stage 1 for the packets that are not IP, by stage 3 for the rest.
  std::array<DropReason, kBurstSize> drop_reason;
  std::array<FlowEntry*, kBurstSize> entry;   // set for the IP packets, in stage 1
  std::array<uint16_t, kBurstSize> ip_index;  // burst positions of the IP packets
  // Burst positions of malformed frames with an IP header (the trust policy's).
  std::array<uint16_t, kBurstSize> malformed_ip_index;
  uint16_t n_malformed_ip = 0;
  std::array<uint32_t, kBurstSize> len;  // frame lengths: after tx_burst the mbufs are not ours
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
    len[i] = rte_pktmbuf_pkt_len(m);
    rx_bytes += len[i];
    const ParseStatus status =
        m->nb_segs == 1 ? parsePacket(std::span<const uint8_t>(rte_pktmbuf_mtod(m, const uint8_t*),
                                                               rte_pktmbuf_data_len(m)),
                                      parsed[i])
                        : parseSegmented(m, parsed[i]);
    switch (status) {
      case ParseStatus::Ip:
        ip_index[n_ip++] = i;
        entry[i] = nullptr;
        break;
      case ParseStatus::NotIp:
        ++n_non_ip;
        drop_reason[i] = kNoDrop;
        break;
      case ParseStatus::Malformed:
        pc.malformed[static_cast<size_t>(parsed[i].malformed)].add(1);
        drop_reason[i] =
            policy.malformed == MalformedPolicy::Drop ? DropReason::Malformed : kNoDrop;
        // A frame a downstream device still reads as IP crosses the trust
        // boundary only as the unmatched policy says (stage 3b).
        if (drop_reason[i] == kNoDrop && parsed[i].ip_header) {
          malformed_ip_index[n_malformed_ip++] = i;
        }
        break;
    }
  }
  if (!handed_off) {  // a handed packet was counted by the worker that received it
    pc.rx_pkts.add(n_pkts);
    pc.rx_bytes.add(rx_bytes);
  }

  const unsigned n_workers = handed_off ? 1 : shared_.n_workers;  // 1: meter all found here
  // Which worker meters each entry found (set in stage 2 when n_workers > 1).
  std::array<uint8_t, kBurstSize> owner;

  // Stage 2: admitted flows, one bulk lookup per wildcard mask in use, most
  // specific first; a packet found under one mask is not looked up again.
  // Each entry found is prefetched: stage 3 reads its one hot line first.
  const FlowTable& flows = *shared_.flows;
  const uint8_t masks = flows.activeMasks();
  if (masks != 0 && n_ip != 0) {
    std::array<uint16_t, kBurstSize> pending = ip_index;
    uint16_t n_pending = n_ip;
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
          masked_[j] = parsed[pending[j]].key;
          applyMask(masked_[j], mask);
          keys[j] = &masked_[j];
        }
      }
      const uint64_t hits = flows.lookupBulk(keys.data(), n_pending, found.data());
      uint16_t still = 0;
      for (uint16_t j = 0; j < n_pending; ++j) {
        if ((hits >> j) & 1u) {
          entry[pending[j]] = found[j];
          // Only an entry this worker meters: its owner writes it on every
          // packet, and a read here would make that line bounce between cores.
          if (n_workers == 1) {
            rte_prefetch0(found[j]);
          } else {
            owner[pending[j]] = static_cast<uint8_t>(flows.ownerOf(found[j], n_workers));
            if (owner[pending[j]] == thread_id_) {
              rte_prefetch0(found[j]);
            }
          }
        } else {
          pending[still++] = pending[j];
        }
      }
      n_pending = still;
    }
  }

  // Stage 3: decide and mark.  A flow another worker owns is handed to it.
  const MeterProfile* profiles = flows.profiles();
  uint16_t n_handed = 0;
  for (uint16_t k = 0; k < n_ip; ++k) {
    const uint16_t i = ip_index[k];
    const ParsedPacket& p = parsed[i];
    Decision d;
    if (FlowEntry* e = entry[i]) {
      if (n_workers > 1 && owner[i] != thread_id_) [[unlikely]] {
        drop_reason[i] = kHandedOff;
        ++n_handed;
        continue;
      }
      ++n_matched[static_cast<size_t>(MatchKind::Flow)];
      d = decideFlow(*e, profiles, now_tsc, p.l3_length);
    } else {
      d = decideByPolicy(policy, p, n_matched);
    }
    applyDscp(pkts[i], p, d, n_remarked);
    drop_reason[i] = d.drop;
  }
  // Stage 3b: malformed frames with an IP header.
  for (uint16_t k = 0; k < n_malformed_ip; ++k) {
    const uint16_t i = malformed_ip_index[k];
    const Decision d = decideMalformedIp(policy, parsed[i], pkts[i], n_matched);
    applyDscp(pkts[i], parsed[i], d, n_remarked);
    drop_reason[i] = d.drop;
  }

  // Stage 4: transmit what passes on the peer port; free and count the rest.
  std::array<rte_mbuf*, kBurstSize> tx;
  uint64_t dropped_bytes = 0;
  std::array<rte_mbuf*, kBurstSize> dropped;
  uint16_t n_tx = 0;
  uint16_t n_dropped = 0;
  uint64_t handed_bytes = 0;
  if (n_handed != 0) [[unlikely]] {
    // To each owner its packets, in one burst; what its ring cannot take is dropped.
    std::array<rte_mbuf*, kBurstSize> to_owner;
    for (unsigned w = 0; w < shared_.n_workers; ++w) {
      uint16_t n_to = 0;
      uint64_t bytes_to = 0;
      std::array<uint16_t, kBurstSize> index_to;
      for (uint16_t i = 0; i < n_pkts; ++i) {
        if (drop_reason[i] == kHandedOff && owner[i] == w) {
          pkts[i]->port = queue.rx_port;
          index_to[n_to] = i;
          to_owner[n_to++] = pkts[i];
        }
      }
      if (n_to == 0) {
        continue;
      }
      const unsigned taken = rte_ring_mp_enqueue_burst(
          shared_.handoff[w], reinterpret_cast<void* const*>(to_owner.data()), n_to, nullptr);
      for (uint16_t k = 0; k < n_to; ++k) {
        const uint16_t i = index_to[k];
        if (k < taken) {
          bytes_to += len[i];
          drop_reason[i] = kNoDrop;
          pkts[i] = nullptr;  // the owner's now
        } else {
          drop_reason[i] = DropReason::HandoffFull;
        }
      }
      handed_bytes += bytes_to;
    }
  }
  for (uint16_t i = 0; i < n_pkts; ++i) {
    if (pkts[i] == nullptr) {
      continue;  // handed to its owner
    }
    if (drop_reason[i] != kNoDrop) {
      ++n_drops[static_cast<size_t>(drop_reason[i])];
      dropped_bytes += len[i];
      dropped[n_dropped++] = pkts[i];
    } else {
      tx[n_tx++] = pkts[i];
    }
  }
  if (n_dropped != 0) {
    rte_pktmbuf_free_bulk(dropped.data(), n_dropped);
  }
  // Counted before the packets leave, so whoever sees them out sees them counted.
  for (size_t kind = 0; kind < kMatchKinds; ++kind) {
    pc.matched[kind].add(n_matched[kind]);
  }
  pc.non_ip_pkts.add(n_non_ip);
  pc.remarked_pkts.add(n_remarked);
  if (n_dropped != 0) {
    for (size_t reason = 0; reason < kDropReasons; ++reason) {
      pc.drops[reason].add(n_drops[reason]);
    }
  }
  if (n_tx == 0) {
    return;
  }
  const uint16_t sent = rte_eth_tx_burst(queue.tx_port, queue.tx_queue, tx.data(), n_tx);
  // What TX refused is still ours to read; what it took is not.
  uint64_t unsent_bytes = 0;
  for (uint16_t i = sent; i < n_tx; ++i) {
    unsent_bytes += rte_pktmbuf_pkt_len(tx[i]);
  }
  pc.tx_pkts.add(sent);
  pc.tx_bytes.add(rx_bytes - dropped_bytes - unsent_bytes - handed_bytes);
  if (sent < n_tx) {
    pc.drops[static_cast<size_t>(DropReason::TxFull)].add(n_tx - sent);
    rte_pktmbuf_free_bulk(&tx[sent], n_tx - sent);
  }
}

}  // namespace qos::appliance
