// agent_load: what a host's middleware costs.  Used by agent_bench.sh.
//
//   agent_load rtt  --endpoint EP [--key F --manager-key F] [--requests N]
//       N requests, each granted and released at once, one after another
//       (a call's set-up and hang-up): prints the request's and the
//       release's round-trip percentiles.
//   agent_load hold --endpoint EP [--key F --manager-key F] --grants N --seconds S
//       N grants requested and then held for S seconds (the session
//       heartbeats an agent as it asks); prints how many are still held.
//
// Endpoints: the manager (with a host key) or a qos-agent (ipc://).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/client/session.h"
#include "control/common/ip_prefix.h"
#include "control/transport/curve_keys.h"

namespace {

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0
                   : v[std::min(v.size() - 1,
                                static_cast<size_t>(p / 100 * static_cast<double>(v.size())))];
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (argv[i] == name) {
      return argv[i + 1];
    }
  }
  return fallback;
}

qos::control::AdmissionRequest flow(uint32_t i) {
  qos::control::AdmissionRequest r;
  r.application = "voip";
  r.flow.src = *qos::parseIpAddress("198.18.1.10");
  r.flow.dst = *qos::parseIpAddress("198.19.1." + std::to_string(20 + i / 50'000));
  r.flow.protocol = 17;
  r.flow.src_port = static_cast<uint16_t>(10'000 + i % 50'000);
  r.flow.dst_port = 20000;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: agent_load rtt|hold --endpoint EP [...]\n");
    return 2;
  }
  const std::string mode = argv[1];
  qos::client::SessionOptions options;
  options.endpoint = arg(argc, argv, "--endpoint", "");
  const std::string key = arg(argc, argv, "--key", "");
  if (!key.empty()) {
    auto own = qos::control::loadCurveSecretKey(key);
    auto server = qos::control::loadCurvePublicKey(arg(argc, argv, "--manager-key", ""));
    if (!own || !server) {
      std::fprintf(stderr, "agent_load: %s\n",
                   (!own ? own.error().message : server.error().message).c_str());
      return 2;
    }
    options.curve = qos::control::CurveClientKeys{own->public_z85, own->secret_z85, *server};
  }
  auto session = qos::client::Session::open(options);
  if (!session) {
    std::fprintf(stderr, "agent_load: %s\n", session.error().message.c_str());
    return 1;
  }
  if (mode == "rtt") {
    const int n = std::atoi(arg(argc, argv, "--requests", "1000").c_str());
    std::vector<double> request_ms;
    std::vector<double> release_ms;
    for (int i = 0; i < n; ++i) {
      const auto t0 = Clock::now();
      auto outcome = (*session)->request(flow(static_cast<uint32_t>(i)));
      const auto t1 = Clock::now();
      if (!outcome || !std::holds_alternative<std::shared_ptr<qos::client::HeldGrant>>(*outcome)) {
        std::fprintf(stderr, "agent_load: request %d failed\n", i);
        return 1;
      }
      auto held = std::get<std::shared_ptr<qos::client::HeldGrant>>(*outcome);
      static_cast<void>(held->release());
      const auto t2 = Clock::now();
      request_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      release_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
    std::printf(
        "%d requests: request ms p50 %.3f p99 %.3f max %.3f; release ms p50 %.3f p99 %.3f\n", n,
        percentile(request_ms, 50), percentile(request_ms, 99), percentile(request_ms, 100),
        percentile(release_ms, 50), percentile(release_ms, 99));
    return 0;
  }
  const int n = std::atoi(arg(argc, argv, "--grants", "10000").c_str());
  const int seconds = std::atoi(arg(argc, argv, "--seconds", "30").c_str());
  std::vector<std::shared_ptr<qos::client::HeldGrant>> held;
  held.reserve(static_cast<size_t>(n));
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto outcome = (*session)->request(flow(static_cast<uint32_t>(i)));
    if (!outcome || !std::holds_alternative<std::shared_ptr<qos::client::HeldGrant>>(*outcome)) {
      std::fprintf(stderr, "agent_load: grant %d failed\n", i);
      return 1;
    }
    held.push_back(std::get<std::shared_ptr<qos::client::HeldGrant>>(*outcome));
  }
  const double granted_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("granted %d in %.1f s; holding for %d s\n", n, granted_s, seconds);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  size_t still = 0;
  for (const auto& g : held) {
    still += g->state() == qos::client::GrantState::Held ? 1 : 0;
  }
  std::printf("still held after %d s: %zu of %d\n", seconds, still, n);
  std::fflush(stdout);
  return still == static_cast<size_t>(n) ? 0 : 1;
}
