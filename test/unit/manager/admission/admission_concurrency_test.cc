// Concurrency tests for the admission engine: many threads admitting,
// releasing, refreshing and reading against a small capacity must never
// over-admit, and the ledger must agree with the grants at the end.
// Meant to run under ThreadSanitizer as well as ASan/UBSan.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "control/common/ip_prefix.h"
#include "manager/admission/admission.h"
#include "manager/config/manager_config.h"
#include "manager/topology/topology.h"

namespace qos::manager {
namespace {

constexpr int kThreads = 16;
constexpr uint64_t kCapacityBps = 1'000'000;  // EF on the lan: 1mbit
constexpr uint64_t kRateBps = 10'000;         // each flow: 10kbit
constexpr uint64_t kMaxFlows = kCapacityBps / kRateBps;
constexpr uint64_t kNowMs = 1'000'000;
constexpr uint8_t kUdp = 17;

IpAddress ip(std::string_view text) {
  const Result<IpAddress> addr = parseIpAddress(text);
  EXPECT_TRUE(addr.ok()) << text;
  return addr.ok() ? *addr : IpAddress{};
}

ManagerConfig smallConfig() {
  ManagerConfig config;
  NetworkConfig lan;
  lan.name = "lan";
  lan.prefixes = {*parseIpPrefix("198.18.0.0/16")};
  lan.class_enabled = true;
  lan.classes = {{"EF", {46, kCapacityBps}}};
  config.networks = {lan};
  ApplicationConfig voip;
  voip.name = "voip";
  voip.default_profile = {"EF", kRateBps, 1500};
  config.applications = {voip};
  return config;
}

AdmissionRequest requestFor(int thread, int i, bool bidirectional = false) {
  AdmissionRequest r;
  r.application = "voip";
  r.flow.src = ip("198.18.1." + std::to_string(thread + 1));
  r.flow.dst = ip("198.18.2." + std::to_string(i % 250 + 1));
  r.flow.src_port = static_cast<uint16_t>(1024 + i);
  r.flow.dst_port = 5004;
  r.flow.protocol = kUdp;
  r.bidirectional = bidirectional;
  return r;
}

ClassUsage efUsage(const AdmissionEngine& engine) {
  const std::vector<ClassUsage> usage = engine.usage();
  EXPECT_EQ(usage.size(), 1u);
  return usage.empty() ? ClassUsage{} : usage.front();
}

class AdmissionConcurrencyTest : public ::testing::Test {
protected:
  AdmissionConcurrencyTest()
      : config_(smallConfig()), topology_(config_), engine_(config_, topology_) {}

  ManagerConfig config_;
  Topology topology_;
  AdmissionEngine engine_;
};

TEST_F(AdmissionConcurrencyTest, AdmitsExactlyWhatFitsWhenNothingIsReleased) {
  constexpr int kRequestsPerThread = 1000;
  std::vector<std::vector<uint64_t>> granted(kThreads);
  std::atomic<int> bad_denials{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequestsPerThread; ++i) {
        const AdmissionResult result = engine_.admit(requestFor(t, i), kNowMs).result;
        if (const auto* g = std::get_if<Grant>(&result)) {
          granted[t].push_back(g->flow_id);
        } else if (std::get<Denial>(result).reason != DenyReason::NoCapacity) {
          bad_denials.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& th : threads) {
    th.join();
  }

  std::set<uint64_t> ids;
  for (const std::vector<uint64_t>& list : granted) {
    ids.insert(list.begin(), list.end());
  }
  EXPECT_EQ(bad_denials.load(), 0);
  EXPECT_EQ(ids.size(), kMaxFlows);
  EXPECT_EQ(*ids.begin(), 1u);
  EXPECT_EQ(*ids.rbegin(), kMaxFlows);  // ids are dense: every id is a grant
  EXPECT_EQ(engine_.flowCount(), kMaxFlows);
  EXPECT_EQ(engine_.nextFlowId(), kMaxFlows + 1);
  const ClassUsage ef = efUsage(engine_);
  EXPECT_EQ(ef.reserved_bps, kCapacityBps);
  EXPECT_EQ(ef.flows, kMaxFlows);
}

TEST_F(AdmissionConcurrencyTest, NeverOverAdmitsWhileFlowsComeAndGo) {
  constexpr int kOpsPerThread = 3000;
  std::vector<std::vector<Grant>> held(kThreads);
  std::atomic<bool> done{false};
  std::atomic<int> violations{0};
  std::atomic<uint64_t> n_granted{0};

  // A reader that checks every snapshot it sees while the writers run.
  std::thread monitor([&] {
    while (!done.load()) {
      const ClassUsage ef = efUsage(engine_);
      if (ef.reserved_bps > kCapacityBps || ef.flows > kMaxFlows) {
        violations.fetch_add(1);
      }
      engine_.flows();
      engine_.expire(kNowMs);  // nothing has lapsed yet; exercises the lease heap
    }
  });

  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t) * 7919 + 1);
      std::vector<Grant>& mine = held[t];
      for (int i = 0; i < kOpsPerThread; ++i) {
        const uint32_t dice = rng() % 10;
        if (dice < 3 && !mine.empty()) {
          const size_t k = rng() % mine.size();
          if (!engine_.release(mine[k].flow_id).has_value()) {
            violations.fetch_add(1);
          }
          mine[k] = mine.back();
          mine.pop_back();
        } else if (dice == 3 && !mine.empty()) {
          if (!engine_.refresh(mine[rng() % mine.size()].flow_id, 0, kNowMs).has_value()) {
            violations.fetch_add(1);
          }
        } else {
          AdmissionResult result = engine_.admit(requestFor(t, i, dice == 4), kNowMs).result;
          if (auto* g = std::get_if<Grant>(&result)) {
            n_granted.fetch_add(1);
            mine.push_back(std::move(*g));
          }
        }
      }
    });
  }
  for (std::thread& th : threads) {
    th.join();
  }
  done.store(true);
  monitor.join();

  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(n_granted.load(), kMaxFlows);  // flows did come and go
  uint64_t n_live = 0;
  uint64_t live_bps = 0;
  for (const std::vector<Grant>& list : held) {
    for (const Grant& g : list) {
      ++n_live;
      live_bps += g.profile.rate_bps * (g.bidirectional ? 2 : 1);
    }
  }
  EXPECT_EQ(engine_.flowCount(), n_live);
  const ClassUsage ef = efUsage(engine_);
  EXPECT_EQ(ef.reserved_bps, live_bps);
  EXPECT_LE(ef.reserved_bps, kCapacityBps);
  EXPECT_EQ(ef.flows, n_live);

  for (const std::vector<Grant>& list : held) {
    for (const Grant& g : list) {
      EXPECT_TRUE(engine_.release(g.flow_id).has_value());
    }
  }
  EXPECT_EQ(efUsage(engine_).reserved_bps, 0u);
  EXPECT_EQ(efUsage(engine_).flows, 0u);
  EXPECT_EQ(engine_.flowCount(), 0u);
}

TEST_F(AdmissionConcurrencyTest, ConcurrentRetriesOfOneRequestReserveOnce) {
  constexpr int kKeys = 50;
  // seen[t][k]: the flow id thread t got for key k.
  std::vector<std::vector<uint64_t>> seen(kThreads, std::vector<uint64_t>(kKeys, 0));
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 4; ++round) {
        for (int k = 0; k < kKeys; ++k) {
          // Every thread walks the keys from a different start, so they collide.
          const int key = (k + t * 3) % kKeys;
          AdmissionRequest r = requestFor(t, key);
          r.client_id = "agent-1";
          r.request_id = "req-" + std::to_string(key);
          const AdmissionResult result = engine_.admit(r, kNowMs).result;
          ASSERT_TRUE(std::holds_alternative<Grant>(result));
          const uint64_t id = std::get<Grant>(result).flow_id;
          if (seen[t][key] == 0) {
            seen[t][key] = id;
          }
          EXPECT_EQ(seen[t][key], id);
        }
      }
    });
  }
  for (std::thread& th : threads) {
    th.join();
  }
  for (int k = 0; k < kKeys; ++k) {
    for (int t = 1; t < kThreads; ++t) {
      EXPECT_EQ(seen[t][k], seen[0][k]) << "key " << k;
    }
  }
  EXPECT_EQ(engine_.flowCount(), static_cast<size_t>(kKeys));
  EXPECT_EQ(efUsage(engine_).reserved_bps, kKeys * kRateBps);
}

}  // namespace
}  // namespace qos::manager
