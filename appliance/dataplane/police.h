// Policing: one rte_meter check per packet and the action for its color.
//
// Called only on the worker lcore that receives the flow (see flow_table.h).
#pragma once

#include <cstdint>

#include <rte_meter.h>

#include "appliance/dataplane/counters.h"
#include "appliance/flows/flow_table.h"

namespace qos::appliance {

/**
 * Meters one packet of a flow, color-blind.
 * @param entry          the flow; its meter state is updated
 * @param profiles       the flow table's profile table (FlowTable::profiles())
 * @param now_tsc        the TSC of this burst
 * @param ip_len_bytes   the IP packet's length: rte_meter rates count IP bytes
 * @return the packet's color
 */
inline Color meterPacket(FlowEntry& entry, const MeterProfile* profiles, uint64_t now_tsc,
                         uint32_t ip_len_bytes) noexcept {
  static_assert(RTE_COLOR_GREEN == 0 && RTE_COLOR_YELLOW == 1 && RTE_COLOR_RED == 2,
                "Color mirrors rte_color");
  // rte_meter takes the profile by a non-const pointer but only reads it.
  auto& profile = const_cast<MeterProfile&>(profiles[entry.profile]);
  switch (entry.meter_kind) {
    case MeterKind::None:
      return Color::Green;
    case MeterKind::Srtcm:
      return static_cast<Color>(rte_meter_srtcm_color_blind_check(
          &entry.meter.srtcm, &profile.srtcm, now_tsc, ip_len_bytes));
    case MeterKind::Trtcm:
      break;
  }
  return static_cast<Color>(
      rte_meter_trtcm_color_blind_check(&entry.meter.trtcm, &profile.trtcm, now_tsc, ip_len_bytes));
}

}  // namespace qos::appliance
