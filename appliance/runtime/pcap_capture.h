// What a net_pcap port with infinite_rx will hold: that PMD reads its whole
// capture into mbufs of the pool when its RX queue is set up, so the pool
// must be large enough, and qosgate checks it first to say by how much.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "control/common/result.h"

namespace qos::appliance {

/** The capture a port replays with infinite_rx (from its devargs), or nullopt. */
std::optional<std::string> infiniteRxCapture(uint16_t port_id);

/** The packets in the pcap file at @p path. */
Result<uint64_t> capturePackets(const std::string& path);

}  // namespace qos::appliance
