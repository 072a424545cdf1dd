// Topology: longest-prefix match of addresses to networks, and shortest
// paths between networks with deterministic tie-breaking.
#include "manager/topology/topology.h"

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test/fakes/two_lan_example.h"

namespace qos::manager {
namespace {

using Path = std::vector<NetworkIndex>;

IpAddress addr(const std::string& text) {
  auto a = parseIpAddress(text);
  EXPECT_TRUE(a.ok()) << text;
  return a.ok() ? *a : IpAddress{};
}

IpPrefix prefix(const std::string& text) {
  auto p = parseIpPrefix(text);
  EXPECT_TRUE(p.ok()) << text;
  return p.ok() ? *p : IpPrefix{};
}

NetworkConfig net(const std::string& name, const std::vector<std::string>& prefixes = {}) {
  NetworkConfig n;
  n.name = name;
  for (const std::string& p : prefixes) {
    n.prefixes.push_back(prefix(p));
  }
  return n;
}

// A config with networks named n0, n1, ... and the given links; no validation.
ManagerConfig graph(size_t n_networks, const std::vector<std::pair<size_t, size_t>>& links) {
  ManagerConfig cfg;
  for (size_t i = 0; i < n_networks; ++i) {
    cfg.networks.push_back(net("n" + std::to_string(i)));
  }
  for (const auto& [a, b] : links) {
    cfg.links.push_back(LinkConfig{"n" + std::to_string(a), "n" + std::to_string(b)});
  }
  return cfg;
}

Path reversed(Path p) {
  std::reverse(p.begin(), p.end());
  return p;
}

using test_data::kTwoLanExample;

TEST(Topology, LongestPrefixWinsOnAHandMadeConfig) {
  // Overlapping prefixes across networks are refused by validation, so this
  // config is built by hand: it is the case longest-prefix match exists for.
  ManagerConfig cfg;
  cfg.networks.push_back(net("site", {"198.18.0.0/16", "2001:db8::/32"}));
  cfg.networks.push_back(net("lab", {"198.18.1.0/24", "2001:db8:a::/48"}));
  cfg.networks.push_back(net("host", {"198.18.1.7/32", "2001:db8:a::7/128"}));
  cfg.networks.push_back(net("wide", {"198.0.0.0/8"}));
  const Topology topo(cfg);
  ASSERT_EQ(topo.networkCount(), 4u);
  EXPECT_EQ(topo.network(1).name, "lab");

  EXPECT_EQ(topo.networkOf(addr("198.18.1.7")), 2u);
  EXPECT_EQ(topo.networkOf(addr("198.18.1.6")), 1u);
  EXPECT_EQ(topo.networkOf(addr("198.18.1.255")), 1u);
  EXPECT_EQ(topo.networkOf(addr("198.18.2.1")), 0u);
  EXPECT_EQ(topo.networkOf(addr("198.18.255.255")), 0u);
  EXPECT_EQ(topo.networkOf(addr("198.19.0.1")), 3u);
  EXPECT_EQ(topo.networkOf(addr("199.18.1.7")), std::nullopt);
  EXPECT_EQ(topo.networkOf(addr("10.0.0.1")), std::nullopt);

  EXPECT_EQ(topo.networkOf(addr("2001:db8:a::7")), 2u);
  EXPECT_EQ(topo.networkOf(addr("2001:db8:a::8")), 1u);
  EXPECT_EQ(topo.networkOf(addr("2001:db8:a:ffff::1")), 1u);
  EXPECT_EQ(topo.networkOf(addr("2001:db8:b::1")), 0u);
  EXPECT_EQ(topo.networkOf(addr("2001:db9::1")), std::nullopt);
  // An IPv4 address never matches an IPv6 prefix with the same leading bytes.
  EXPECT_EQ(topo.networkOf(addr("::ffff:198.18.1.7")), std::nullopt);
  EXPECT_EQ(topo.networkOf(IpAddress{}), std::nullopt) << "an unset address matches nothing";
}

TEST(Topology, DefaultRoutesAndDuplicatePrefixes) {
  ManagerConfig cfg;
  cfg.networks.push_back(net("internet", {"0.0.0.0/0", "::/0"}));
  cfg.networks.push_back(net("lan", {"198.18.1.0/24"}));
  cfg.networks.push_back(net("lan-again", {"198.18.1.0/24"}));
  const Topology topo(cfg);
  EXPECT_EQ(topo.networkOf(addr("203.0.113.1")), 0u);
  EXPECT_EQ(topo.networkOf(addr("2001:db8::1")), 0u);
  EXPECT_EQ(topo.networkOf(addr("198.18.1.1")), 1u) << "the same prefix twice: the first keeps it";
}

TEST(Topology, TheIssueExample) {
  auto cfg = parseManagerConfig(kTwoLanExample, "two_lan.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  const Topology topo(*cfg);
  EXPECT_EQ(topo.networkOf(addr("198.18.1.10")), 0u);
  EXPECT_EQ(topo.networkOf(addr("2001:db8:a::10")), 0u);
  EXPECT_EQ(topo.networkOf(addr("198.19.1.20")), 2u);
  EXPECT_EQ(topo.networkOf(addr("198.18.2.10")), std::nullopt);
  EXPECT_EQ(topo.networkOf(addr("2001:db8:b::10")), std::nullopt);

  EXPECT_EQ(topo.path(0, 2), (Path{0, 1, 2})) << "lan-a -> wan -> lan-b";
  EXPECT_EQ(topo.path(2, 0), (Path{2, 1, 0}));
  EXPECT_EQ(topo.path(0, 1), (Path{0, 1}));
  EXPECT_EQ(topo.path(1, 2), (Path{1, 2}));
  EXPECT_EQ(topo.path(0, 0), (Path{0}));
  EXPECT_EQ(topo.path(1, 1), (Path{1}));
  EXPECT_EQ(topo.path(2, 2), (Path{2}));
  EXPECT_TRUE(topo.path(0, 3).empty()) << "an index out of range has no path";
  EXPECT_TRUE(topo.path(7, 7).empty());
}

TEST(Topology, IslandsAreUnreachable) {
  // n0 - n1   n2 - n3   n4 alone; plus a link to a network nobody defined.
  ManagerConfig cfg = graph(5, {{0, 1}, {2, 3}});
  cfg.links.push_back(LinkConfig{"n4", "nowhere"});
  cfg.links.push_back(LinkConfig{"n4", "n4"});
  const Topology topo(cfg);
  EXPECT_EQ(topo.path(0, 1), (Path{0, 1}));
  EXPECT_EQ(topo.path(3, 2), (Path{3, 2}));
  EXPECT_TRUE(topo.path(0, 2).empty());
  EXPECT_TRUE(topo.path(3, 1).empty());
  EXPECT_TRUE(topo.path(4, 0).empty());
  EXPECT_TRUE(topo.path(0, 4).empty());
  EXPECT_EQ(topo.path(4, 4), (Path{4})) << "a network with no links still reaches itself";
}

TEST(Topology, AnEmptyConfigHoldsNothing) {
  ManagerConfig cfg;
  const Topology empty(cfg);
  EXPECT_EQ(empty.networkCount(), 0u);
  EXPECT_EQ(empty.networkOf(addr("198.18.1.1")), std::nullopt);
  EXPECT_EQ(empty.networkOf(addr("2001:db8::1")), std::nullopt);
  EXPECT_TRUE(empty.path(0, 0).empty());
  cfg.networks.push_back(NetworkConfig{"unset", {IpPrefix{}}, false, {}});
  const Topology unset(cfg);
  EXPECT_EQ(unset.networkOf(addr("2001:db8::1")), std::nullopt) << "an unset prefix is skipped";
  EXPECT_EQ(unset.path(0, 0), (Path{0}));
}

TEST(Topology, DiamondTiesGoToConfigOrder) {
  //        n1
  //      /    \      Links to n2 are written first: the order of links does
  //   n0        n3   not matter, the order of networks does.
  //      \    /
  //        n2
  const Topology topo(graph(4, {{0, 2}, {2, 3}, {0, 1}, {1, 3}}));
  EXPECT_EQ(topo.path(0, 3), (Path{0, 1, 3}));
  EXPECT_EQ(topo.path(3, 0), (Path{3, 1, 0}));
  EXPECT_EQ(topo.path(1, 2), (Path{1, 0, 2}));
  EXPECT_EQ(topo.path(2, 1), (Path{2, 0, 1}));
  // The same answer every time, from a fresh Topology too.
  const Topology again(graph(4, {{1, 3}, {0, 1}, {2, 3}, {0, 2}}));
  EXPECT_EQ(again.path(0, 3), (Path{0, 1, 3}));
  EXPECT_EQ(again.path(3, 0), (Path{3, 1, 0}));
}

TEST(Topology, ReversePathIsTheSameNetworks) {
  // Two shortest paths between n0 and n5: n0-n1-n4-n5 and n0-n2-n3-n5.  Read
  // from n0 the first is smaller; read from n5 the second would be, but both
  // directions of a flow must cross the same networks.
  const Topology topo(graph(6, {{0, 2}, {0, 1}, {2, 3}, {1, 4}, {3, 5}, {4, 5}}));
  EXPECT_EQ(topo.path(0, 5), (Path{0, 1, 4, 5}));
  EXPECT_EQ(topo.path(5, 0), (Path{5, 4, 1, 0}));
  for (NetworkIndex a = 0; a < 6; ++a) {
    for (NetworkIndex b = 0; b < 6; ++b) {
      EXPECT_EQ(topo.path(b, a), reversed(topo.path(a, b))) << a << " -> " << b;
    }
  }
}

TEST(Topology, PathReferencesStayValid) {
  const Topology topo(graph(50, {}));
  ManagerConfig cfg = graph(50, {});
  for (size_t i = 0; i + 1 < 50; ++i) {
    cfg.links.push_back(LinkConfig{"n" + std::to_string(i), "n" + std::to_string(i + 1)});
  }
  const Topology chain(cfg);
  const Path& first = chain.path(0, 49);
  const Path* address = &first;
  for (NetworkIndex a = 0; a < 50; ++a) {
    for (NetworkIndex b = 0; b < 50; ++b) {
      ASSERT_EQ(chain.path(a, b).size(), (a > b ? a - b : b - a) + 1u);
    }
  }
  EXPECT_EQ(&chain.path(0, 49), address) << "the same vector, not a rebuilt one";
  EXPECT_EQ(first.size(), 50u);
  EXPECT_EQ(first.front(), 0u);
  EXPECT_EQ(first.back(), 49u);
  // A copy on purpose: copies share the path cache and must give the same paths.
  const Topology copy = chain;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_EQ(copy.path(10, 20), chain.path(10, 20));
  EXPECT_TRUE(topo.path(0, 49).empty());
}

TEST(Topology, AThousandNetworkChainAndGridAreFast) {
  const auto start = std::chrono::steady_clock::now();

  constexpr size_t kChain = 1000;
  ManagerConfig chain_cfg;
  for (size_t i = 0; i < kChain; ++i) {
    chain_cfg.networks.push_back(
        net("c" + std::to_string(i),
            {"10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24"}));
    if (i > 0) {
      chain_cfg.links.push_back(LinkConfig{"c" + std::to_string(i - 1), "c" + std::to_string(i)});
    }
  }
  const Topology chain(chain_cfg);
  const Path& long_path = chain.path(0, kChain - 1);
  ASSERT_EQ(long_path.size(), kChain);
  for (size_t i = 0; i < kChain; ++i) {
    ASSERT_EQ(long_path[i], i);
  }
  EXPECT_EQ(chain.path(kChain - 1, 0), reversed(long_path));
  EXPECT_EQ(chain.path(500, 500), (Path{500}));
  EXPECT_EQ(chain.networkOf(addr("10.3.231.9")), 999u);
  EXPECT_EQ(chain.networkOf(addr("10.0.0.1")), 0u);
  EXPECT_EQ(chain.networkOf(addr("10.3.232.1")), std::nullopt);

  // A 32 x 32 grid: network r * 32 + c links to its right and lower neighbors.
  constexpr size_t kSide = 32;
  std::vector<std::pair<size_t, size_t>> links;
  for (size_t r = 0; r < kSide; ++r) {
    for (size_t c = 0; c < kSide; ++c) {
      if (c + 1 < kSide) {
        links.emplace_back(r * kSide + c, r * kSide + c + 1);
      }
      if (r + 1 < kSide) {
        links.emplace_back(r * kSide + c, (r + 1) * kSide + c);
      }
    }
  }
  const Topology grid(graph(kSide * kSide, links));
  for (size_t to = 0; to < kSide * kSide; ++to) {
    const Path& p = grid.path(0, static_cast<NetworkIndex>(to));
    ASSERT_EQ(p.size(), to / kSide + to % kSide + 1) << "Manhattan distance, to " << to;
    for (size_t i = 1; i < p.size(); ++i) {
      const size_t step = p[i] > p[i - 1] ? p[i] - p[i - 1] : p[i - 1] - p[i];
      ASSERT_TRUE(step == 1 || step == kSide) << "neighbors only";
    }
  }
  // Smallest indexes first: along the top row, then down the last column.
  const Path& corner = grid.path(0, kSide * kSide - 1);
  EXPECT_EQ(corner[kSide - 1], kSide - 1);
  EXPECT_EQ(corner.back(), kSide * kSide - 1);
  EXPECT_EQ(grid.path(kSide * kSide - 1, 0), reversed(corner));

  const double elapsed_sec =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(elapsed_sec, 5.0) << "breadth-first search per network is quadratic, not worse";
}

TEST(Topology, ConcurrentPathLookupsAgree) {
  constexpr size_t kSide = 12;
  std::vector<std::pair<size_t, size_t>> links;
  for (size_t r = 0; r < kSide; ++r) {
    for (size_t c = 0; c < kSide; ++c) {
      if (c + 1 < kSide) {
        links.emplace_back(r * kSide + c, r * kSide + c + 1);
      }
      if (r + 1 < kSide) {
        links.emplace_back(r * kSide + c, (r + 1) * kSide + c);
      }
    }
  }
  const ManagerConfig cfg = graph(kSide * kSide, links);
  const Topology reference(cfg);
  const Topology shared(cfg);
  constexpr auto kNetworks = static_cast<NetworkIndex>(kSide * kSide);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (NetworkIndex a = 0; a < kNetworks; ++a) {
        for (NetworkIndex b = 0; b < kNetworks; ++b) {
          // Each thread walks the pairs from a different start, so they race on new entries.
          const NetworkIndex src = (a + static_cast<NetworkIndex>(t) * 37) % kNetworks;
          if (shared.path(src, b) != reference.path(src, b)) {
            ++mismatches[t];
          }
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (int m : mismatches) {
    EXPECT_EQ(m, 0);
  }
}

}  // namespace
}  // namespace qos::manager
