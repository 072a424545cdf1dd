// A whole Appliance on two net_ring ports, for in-process tests: the test
// puts frames on the RX ring of one port and takes what the appliance sent
// from the TX ring of the other, byte for byte.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "appliance/config/appliance_config.h"
#include "appliance/runtime/appliance.h"

namespace qos::test {

enum class Side { Inside, Outside };

/** The pool test frames come from; zero cache so in-use counts are exact. */
inline rte_mempool* testPool() {
  static rte_mempool* pool = rte_pktmbuf_pool_create(
      "test_frames", 16383, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
  return pool;
}

/**
 * A rule for buildFrame(FrameSpec{})'s flow with @p dst_port: 198.18.1.10 ->
 * 198.19.1.20 UDP, DSCP 46, with an srTCM meter no test traffic exceeds.
 */
inline appliance::FlowRule voiceRule(uint16_t dst_port = 5004) {
  appliance::FlowRule rule;
  rule.src = *parseIpAddress("198.18.1.10");
  rule.dst = *parseIpAddress("198.19.1.20");
  rule.protocol = 17;
  rule.dst_port = dst_port;
  rule.dscp = 46;
  appliance::MeterConfig meter;
  meter.cir_bytes_per_sec = 1'000'000'000;
  meter.cbs_bytes = 1'000'000;
  meter.ebs_bytes = 1'000'000;
  rule.meter = meter;
  return rule;
}

class RingAppliance {
public:
  /**
   * @param name       unique per test (DPDK object names)
   * @param toml_body  config without [eal] and [[pair]]: policy, flows, classes
   * @param n_queues   RX and TX queues per port: one per worker (EAL's worker lcores)
   */
  static std::unique_ptr<RingAppliance> create(const std::string& name,
                                               const std::string& toml_body,
                                               unsigned n_queues = 1) {
    std::unique_ptr<RingAppliance> h(new RingAppliance());
    for (int side = 0; side < 2; ++side) {
      const std::string base = name + (side == 0 ? "_in" : "_out");
      for (unsigned q = 0; q < n_queues; ++q) {
        const std::string suffix = q == 0 ? "" : std::to_string(q);
        h->rx_[side].push_back(rte_ring_create((base + "_rx" + suffix).c_str(), 4096,
                                               static_cast<int>(rte_socket_id()), 0));
        h->tx_[side].push_back(rte_ring_create((base + "_tx" + suffix).c_str(), 4096,
                                               static_cast<int>(rte_socket_id()), 0));
        EXPECT_NE(h->rx_[side].back(), nullptr);
        EXPECT_NE(h->tx_[side].back(), nullptr);
      }
      const int port = rte_eth_from_rings(base.c_str(), h->rx_[side].data(), n_queues,
                                          h->tx_[side].data(), n_queues, rte_socket_id());
      EXPECT_GE(port, 0) << "rte_eth_from_rings failed";
      char dev_name[RTE_ETH_NAME_MAX_LEN] = {};
      rte_eth_dev_get_name_by_port(static_cast<uint16_t>(port), dev_name);
      h->device_[side] = dev_name;
    }
    const std::string text =
        "[[pair]]\ninside = \"" + h->device_[0] + "\"\noutside = \"" + h->device_[1] +
        "\"\n[dataplane]\nmax_flows = 4096\n" +
        "rx_descriptors = 256\ntx_descriptors = 256\nmbufs = " + (n_queues > 1 ? "16383" : "4095") +
        "\n" + (n_queues > 1 ? "idle_sleep_us = 20\n" : "") + toml_body;
    auto config = appliance::parseApplianceConfig(text, name + ".toml");
    if (!config) {
      ADD_FAILURE() << config.error().message;
      return nullptr;
    }
    auto app = appliance::Appliance::create(*config);
    if (!app) {
      ADD_FAILURE() << app.error().message;
      return nullptr;
    }
    h->app_ = std::move(*app);
    auto started = h->app_->start();
    EXPECT_TRUE(started.ok()) << started.error().message;
    return h;
  }

  ~RingAppliance() {
    if (app_) {
      app_->stop();
      app_->closePorts();
    }
    for (int side = 0; side < 2; ++side) {
      for (rte_ring* ring : rx_[side]) {
        drain(ring);
      }
      for (rte_ring* ring : tx_[side]) {
        drain(ring);
      }
    }
    if (app_) {
      EXPECT_EQ(app_->mbufsInUse(), 0u) << "the appliance's own pool leaked";
      app_.reset();
    }
    for (int side = 0; side < 2; ++side) {
      for (rte_ring* ring : rx_[side]) {
        rte_ring_free(ring);
      }
      for (rte_ring* ring : tx_[side]) {
        rte_ring_free(ring);
      }
    }
    EXPECT_EQ(rte_mempool_in_use_count(testPool()), 0u) << "test frames leaked";
  }

  appliance::Appliance& app() { return *app_; }
  uint16_t portId(Side side) const {
    uint16_t id = 0;
    rte_eth_dev_get_port_by_name(device_[index(side)].c_str(), &id);
    return id;
  }
  appliance::PortTotals totals(Side side) const { return app_->portTotals(portId(side)); }

  /** Puts frames on the RX ring of @p side (of its queue @p queue).  @return how many were queued.
   */
  size_t send(Side side, const std::vector<std::vector<uint8_t>>& frames, unsigned queue = 0) {
    size_t queued = 0;
    for (const auto& f : frames) {
      rte_mbuf* m = rte_pktmbuf_alloc(testPool());
      if (m == nullptr) {
        ADD_FAILURE() << "test pool exhausted";
        break;
      }
      auto* data =
          reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())));
      std::copy(f.begin(), f.end(), data);
      while (rte_ring_enqueue(rx_[index(side)][queue % rx_[index(side)].size()], m) != 0) {
        std::this_thread::yield();  // the worker drains it
      }
      ++queued;
    }
    sent_[index(side)] += queued;
    return queued;
  }

  /**
   * Puts one frame on the RX ring of @p side as a chain of mbuf segments of
   * @p segment_bytes each (the last takes what is left), as scattered RX
   * delivers a jumbo frame.
   */
  void sendSegmented(Side side, const std::vector<uint8_t>& frame, size_t segment_bytes) {
    rte_mbuf* head = nullptr;
    for (size_t at = 0; at < frame.size(); at += segment_bytes) {
      const size_t n = std::min(segment_bytes, frame.size() - at);
      rte_mbuf* seg = rte_pktmbuf_alloc(testPool());
      ASSERT_NE(seg, nullptr) << "test pool exhausted";
      auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(seg, static_cast<uint16_t>(n)));
      ASSERT_NE(data, nullptr) << "segment_bytes larger than an mbuf";
      std::copy(frame.begin() + static_cast<std::ptrdiff_t>(at),
                frame.begin() + static_cast<std::ptrdiff_t>(at + n), data);
      if (head == nullptr) {
        head = seg;
      } else {
        ASSERT_EQ(rte_pktmbuf_chain(head, seg), 0);
      }
    }
    while (rte_ring_enqueue(rx_[index(side)][0], head) != 0) {
      std::this_thread::yield();
    }
    ++sent_[index(side)];
  }

  /**
   * Waits until the appliance has handled everything sent on @p side (every
   * frame transmitted or dropped), then returns what left the other side.
   */
  std::vector<std::vector<uint8_t>> receive(
      Side side, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto t = totals(side);
      if (t.rx_pkts >= sent_[index(side)] && t.tx_pkts + t.droppedTotal() == t.rx_pkts) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return takeOutput(side == Side::Inside ? Side::Outside : Side::Inside);
  }

  /** Everything the appliance transmitted on @p side so far. */
  std::vector<std::vector<uint8_t>> takeOutput(Side side) {
    std::vector<std::vector<uint8_t>> out;
    void* obj = nullptr;
    for (rte_ring* ring : tx_[index(side)]) {
      while (rte_ring_dequeue(ring, &obj) == 0) {
        auto* m = static_cast<rte_mbuf*>(obj);
        std::vector<uint8_t>& frame = out.emplace_back(rte_pktmbuf_pkt_len(m));
        const void* data = rte_pktmbuf_read(m, 0, rte_pktmbuf_pkt_len(m), frame.data());
        if (data != frame.data()) {  // contiguous: read returned a pointer into the mbuf
          std::memcpy(frame.data(), data, frame.size());
        }
        rte_pktmbuf_free(m);
      }
    }
    return out;
  }

private:
  RingAppliance() = default;
  static int index(Side side) { return side == Side::Inside ? 0 : 1; }
  static void drain(rte_ring* ring) {
    void* obj = nullptr;
    while (ring != nullptr && rte_ring_dequeue(ring, &obj) == 0) {
      rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
    }
  }

  std::vector<rte_ring*> rx_[2];  ///< per side, one ring per queue
  std::vector<rte_ring*> tx_[2];
  std::string device_[2];
  uint64_t sent_[2] = {0, 0};
  std::unique_ptr<appliance::Appliance> app_;
};

}  // namespace qos::test
