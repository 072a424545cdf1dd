// rte_meter as the pipeline uses it (meterPacket), checked against the
// RFC 2697 and RFC 2698 token bucket arithmetic written out here.
//
// rte_meter credits tokens in whole periods of a few TSC cycles, so its
// buckets may lag the exact arithmetic by up to one period's bytes.  After
// every packet the reference takes the meter's state and time as its own, so
// each step checks one refill and one decision from identical state; a step
// whose decision lies within that rounding of a bucket edge is not judged,
// and the test requires that nearly all steps are.
#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include <rte_cycles.h>

#include "appliance/dataplane/police.h"

namespace qos::test {
namespace {

using appliance::Color;
using appliance::FlowEntry;
using appliance::MeterConfig;
using appliance::MeterMode;
using appliance::MeterProfile;

struct Step {
  uint64_t dt_cycles;
  uint32_t bytes;
};

std::vector<Step> randomSteps(uint32_t seed, size_t n, double mean_gap_sec) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(1.0 / mean_gap_sec);
  std::uniform_int_distribution<uint32_t> size(64, 1500);
  const double hz = static_cast<double>(rte_get_tsc_hz());
  std::vector<Step> steps;
  for (size_t i = 0; i < n; ++i) {
    steps.push_back({static_cast<uint64_t>(gap(rng) * hz), size(rng)});
  }
  return steps;
}

// RFC 2697, color-blind.  Tokens as doubles; the refill overflows C into E.
Color srtcmReference(double& tc, double& te, double cbs, double ebs, double add, double bytes) {
  tc += add;
  if (tc > cbs) {
    te = std::min(ebs, te + (tc - cbs));
    tc = cbs;
  }
  if (tc >= bytes) {
    tc -= bytes;
    return Color::Green;
  }
  if (te >= bytes) {
    te -= bytes;
    return Color::Yellow;
  }
  return Color::Red;
}

// RFC 2698, color-blind.
Color trtcmReference(double& tc, double& tp, double cbs, double pbs, double add_c, double add_p,
                     double bytes) {
  tc = std::min(cbs, tc + add_c);
  tp = std::min(pbs, tp + add_p);
  if (tp < bytes) {
    return Color::Red;
  }
  if (tc < bytes) {
    tp -= bytes;
    return Color::Yellow;
  }
  tp -= bytes;
  tc -= bytes;
  return Color::Green;
}

bool near(double bucket, double bytes, double tolerance) {
  return std::fabs(bucket - bytes) <= tolerance;
}

class MeterVersusRfc : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MeterVersusRfc, Srtcm) {
  MeterConfig cfg;
  cfg.mode = MeterMode::Srtcm;
  cfg.cir_bytes_per_sec = 125'000;  // 1 Mbit/s
  cfg.cbs_bytes = 16'000;
  cfg.ebs_bytes = 8'000;
  MeterProfile profile;
  ASSERT_TRUE(appliance::configureMeterProfile(cfg, profile).ok());
  FlowEntry entry;
  appliance::configureMeter(cfg, 0, profile, entry);
  const double hz = static_cast<double>(rte_get_tsc_hz());
  const double bytes_per_cycle = static_cast<double>(cfg.cir_bytes_per_sec) / hz;
  const double tolerance = static_cast<double>(profile.srtcm.cir_bytes_per_period) + 2;

  uint64_t now = 1'000'000'000;
  entry.meter.srtcm.time = now;
  size_t judged = 0;
  size_t counts[3] = {0, 0, 0};
  // Mean gap 8 ms at a mean of 782 bytes: about 100 kB/s offered against 125 kB/s,
  // with bursts, so all three colors occur.
  const auto steps = randomSteps(GetParam(), 20000, 0.004);
  for (const Step& s : steps) {
    now += s.dt_cycles;
    double tc = static_cast<double>(entry.meter.srtcm.tc);
    double te = static_cast<double>(entry.meter.srtcm.te);
    const double add = static_cast<double>(now - entry.meter.srtcm.time) * bytes_per_cycle;
    // Judge only if neither bucket is within rounding of the packet size, before or after refill.
    double tc_after = std::min<double>(static_cast<double>(cfg.cbs_bytes), tc + add);
    double te_after =
        std::min<double>(static_cast<double>(cfg.ebs_bytes),
                         te + std::max(0.0, tc + add - static_cast<double>(cfg.cbs_bytes)));
    const bool ambiguous = near(tc_after, s.bytes, tolerance) ||
                           near(te_after, s.bytes, tolerance) ||
                           near(tc + add, static_cast<double>(cfg.cbs_bytes), tolerance);
    const Color expected = srtcmReference(tc, te, static_cast<double>(cfg.cbs_bytes),
                                          static_cast<double>(cfg.ebs_bytes), add, s.bytes);
    const Color got = appliance::meterPacket(entry, &profile, now, s.bytes);
    counts[static_cast<size_t>(got)]++;
    if (!ambiguous) {
      ++judged;
      ASSERT_EQ(static_cast<int>(got), static_cast<int>(expected))
          << "step " << judged << ": tc " << tc_after << " te " << te_after << " bytes " << s.bytes;
      EXPECT_NEAR(static_cast<double>(entry.meter.srtcm.tc), tc, 2 * tolerance);
      EXPECT_NEAR(static_cast<double>(entry.meter.srtcm.te), te, 2 * tolerance);
    }
  }
  EXPECT_GT(judged, steps.size() * 9 / 10) << "nearly every step must be judged";
  EXPECT_GT(counts[0], 0u);
  EXPECT_GT(counts[1], 0u);
  EXPECT_GT(counts[2], 0u);
}

TEST_P(MeterVersusRfc, Trtcm) {
  MeterConfig cfg;
  cfg.mode = MeterMode::Trtcm;
  cfg.cir_bytes_per_sec = 62'500;   // 500 kbit/s
  cfg.pir_bytes_per_sec = 125'000;  // 1 Mbit/s
  cfg.cbs_bytes = 8'000;
  cfg.pbs_bytes = 16'000;
  MeterProfile profile;
  ASSERT_TRUE(appliance::configureMeterProfile(cfg, profile).ok());
  FlowEntry entry;
  appliance::configureMeter(cfg, 0, profile, entry);
  const double hz = static_cast<double>(rte_get_tsc_hz());
  const double c_per_cycle = static_cast<double>(cfg.cir_bytes_per_sec) / hz;
  const double p_per_cycle = static_cast<double>(cfg.pir_bytes_per_sec) / hz;
  const double tolerance = static_cast<double>(std::max(profile.trtcm.cir_bytes_per_period,
                                                        profile.trtcm.pir_bytes_per_period)) +
                           2;

  uint64_t now = 1'000'000'000;
  entry.meter.trtcm.time_tc = now;
  entry.meter.trtcm.time_tp = now;
  size_t judged = 0;
  size_t counts[3] = {0, 0, 0};
  const auto steps = randomSteps(GetParam() + 7, 20000, 0.006);
  for (const Step& s : steps) {
    now += s.dt_cycles;
    double tc = static_cast<double>(entry.meter.trtcm.tc);
    double tp = static_cast<double>(entry.meter.trtcm.tp);
    const double add_c = static_cast<double>(now - entry.meter.trtcm.time_tc) * c_per_cycle;
    const double add_p = static_cast<double>(now - entry.meter.trtcm.time_tp) * p_per_cycle;
    const double tc_after = std::min<double>(static_cast<double>(cfg.cbs_bytes), tc + add_c);
    const double tp_after = std::min<double>(static_cast<double>(cfg.pbs_bytes), tp + add_p);
    const bool ambiguous = near(tc_after, s.bytes, tolerance) || near(tp_after, s.bytes, tolerance);
    const Color expected =
        trtcmReference(tc, tp, static_cast<double>(cfg.cbs_bytes),
                       static_cast<double>(cfg.pbs_bytes), add_c, add_p, s.bytes);
    const Color got = appliance::meterPacket(entry, &profile, now, s.bytes);
    counts[static_cast<size_t>(got)]++;
    if (!ambiguous) {
      ++judged;
      ASSERT_EQ(static_cast<int>(got), static_cast<int>(expected))
          << "step " << judged << ": tc " << tc_after << " tp " << tp_after << " bytes " << s.bytes;
    }
  }
  EXPECT_GT(judged, steps.size() * 9 / 10);
  EXPECT_GT(counts[0], 0u);
  EXPECT_GT(counts[1], 0u);
  EXPECT_GT(counts[2], 0u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, MeterVersusRfc, ::testing::Values(1u, 2u, 3u));

// A known sequence, worked by hand from RFC 2697: CIR 1000 B/s, CBS 2000, EBS 1000.
TEST(Meter, SrtcmWorkedExample) {
  MeterConfig cfg;
  cfg.cir_bytes_per_sec = 1000;
  cfg.cbs_bytes = 2000;
  cfg.ebs_bytes = 1000;
  MeterProfile profile;
  ASSERT_TRUE(appliance::configureMeterProfile(cfg, profile).ok());
  FlowEntry entry;
  appliance::configureMeter(cfg, 0, profile, entry);
  const uint64_t hz = rte_get_tsc_hz();
  uint64_t t = 10 * hz;
  entry.meter.srtcm.time = t;
  EXPECT_EQ(appliance::meterPacket(entry, &profile, t, 1500), Color::Green);  // C 2000 -> 500
  EXPECT_EQ(appliance::meterPacket(entry, &profile, t, 800), Color::Yellow);  // E 1000 -> 200
  EXPECT_EQ(appliance::meterPacket(entry, &profile, t, 600), Color::Red);     // C 500, E 200
  EXPECT_EQ(appliance::meterPacket(entry, &profile, t, 500), Color::Green);   // C 500 -> 0
  t += hz;                                                                    // +1000 bytes into C
  EXPECT_EQ(appliance::meterPacket(entry, &profile, t, 1200), Color::Red);    // C 1000, E 200
  EXPECT_EQ(appliance::meterPacket(entry, &profile, t, 1000), Color::Green);  // C 1000 -> 0
  t += 3 * hz;  // C fills to 2000, E +1000 -> 1000
  EXPECT_EQ(appliance::meterPacket(entry, &profile, t, 1000), Color::Green);   // C 1000 left
  EXPECT_EQ(appliance::meterPacket(entry, &profile, t, 1000), Color::Green);   // C 0
  EXPECT_EQ(appliance::meterPacket(entry, &profile, t, 1000), Color::Yellow);  // E 0
  EXPECT_EQ(appliance::meterPacket(entry, &profile, t, 64), Color::Red);
}

TEST(Meter, UnmeteredFlowIsAlwaysGreen) {
  const MeterProfile profile{};
  FlowEntry entry;
  EXPECT_EQ(appliance::meterPacket(entry, &profile, 1, 1'000'000), Color::Green);
}

}  // namespace
}  // namespace qos::test
