// Counters written by one worker lcore and read by the control thread.
//
// Contract: each counter has exactly one writer (the worker that owns it).
// The writer does a relaxed load and store, which compiles to a plain add on
// x86 and arm64 (no lock prefix); readers do relaxed loads and sum across
// workers when they are read, never when they are written.  A reader may see
// a counter a few packets behind; it never sees a torn value.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "appliance/dataplane/packet_parser.h"

namespace qos::appliance {

class RelaxedCounter {
public:
  /** Called only by the counter's one writer. */
  void add(uint64_t n) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /** Called only by the counter's one writer. */
  void set(uint64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  uint64_t load() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<uint64_t> value_{0};
};

/** Why a packet was dropped.  received = transmitted + sum of all drop reasons. */
enum class DropReason : uint8_t {
  MeterRed,     ///< the flow's meter said red and red's action is drop
  MeterYellow,  ///< the flow's meter said yellow and yellow's action is drop
  ClassPolicy,  ///< a class rule's action is drop
  Unmatched,    ///< no flow, no class rule, and the unmatched policy is drop
  Malformed,    ///< malformed frame and the malformed policy is drop
  TxFull,       ///< rte_eth_tx_burst did not take it
  HandoffFull,  ///< its flow's owner worker had no room in its hand-off ring
  Count,
};

/** How a forwarded or dropped IP packet was classified. */
enum class MatchKind : uint8_t {
  Flow,       ///< an admitted flow (exact 5-tuple, with wildcards)
  Class,      ///< a class rule
  Unmatched,  ///< the trust policy
  Malformed,  ///< a malformed frame with an IP header: the trust policy, without class rules
  Count,
};

enum class Color : uint8_t { Green, Yellow, Red, Count };

inline constexpr size_t kDropReasons = static_cast<size_t>(DropReason::Count);
inline constexpr size_t kMalformedReasons = static_cast<size_t>(MalformedReason::Count);
inline constexpr size_t kMatchKinds = static_cast<size_t>(MatchKind::Count);
inline constexpr size_t kColors = static_cast<size_t>(Color::Count);

/** Per ingress port, per worker. */
struct PortCounters {
  RelaxedCounter rx_pkts;   ///< frames received on the port
  RelaxedCounter rx_bytes;  ///< their bytes (frame length, no FCS)
  RelaxedCounter tx_pkts;   ///< frames sent out of the peer port
  RelaxedCounter tx_bytes;
  RelaxedCounter non_ip_pkts;                               ///< ARP, LLDP, ... passed through
  RelaxedCounter remarked_pkts;                             ///< DSCP rewritten to a new value
  std::array<RelaxedCounter, kDropReasons> drops;           ///< by reason
  std::array<RelaxedCounter, kMalformedReasons> malformed;  ///< by reason, forwarded or dropped
  std::array<RelaxedCounter, kMatchKinds> matched;          ///< IP packets by classification
};

/** Plain totals summed over workers, for printing and metrics. */
struct PortTotals {
  uint64_t rx_pkts = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_pkts = 0;
  uint64_t tx_bytes = 0;
  uint64_t non_ip_pkts = 0;
  uint64_t remarked_pkts = 0;
  std::array<uint64_t, kDropReasons> drops{};
  std::array<uint64_t, kMalformedReasons> malformed{};
  std::array<uint64_t, kMatchKinds> matched{};

  uint64_t droppedTotal() const {
    uint64_t sum = 0;
    for (uint64_t d : drops) {
      sum += d;
    }
    return sum;
  }
  void addFrom(const PortCounters& c) {
    rx_pkts += c.rx_pkts.load();
    rx_bytes += c.rx_bytes.load();
    tx_pkts += c.tx_pkts.load();
    tx_bytes += c.tx_bytes.load();
    non_ip_pkts += c.non_ip_pkts.load();
    remarked_pkts += c.remarked_pkts.load();
    for (size_t i = 0; i < kDropReasons; ++i) {
      drops[i] += c.drops[i].load();
    }
    for (size_t i = 0; i < kMalformedReasons; ++i) {
      malformed[i] += c.malformed[i].load();
    }
    for (size_t i = 0; i < kMatchKinds; ++i) {
      matched[i] += c.matched[i].load();
    }
  }
};

const char* dropReasonName(DropReason reason);
const char* matchKindName(MatchKind kind);
const char* colorName(Color color);

}  // namespace qos::appliance
