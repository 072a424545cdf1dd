// Topology: which network an address belongs to (longest-prefix match over
// every network's prefixes, IPv4 and IPv6) and the path a flow takes between
// two networks (the shortest chain of links, breadth-first; ties broken by
// the order networks appear in the config, so paths are deterministic).
//
// Immutable after construction; safe to share between threads.  The
// breadth-first searches for every pair of networks run once, at construction.
//
// How ties are broken: among the shortest paths between networks a and b
// with a < b (config order), path(a, b) is the one whose list of network
// indexes, read from a, is smallest lexicographically; path(b, a) is exactly
// its reverse, so both directions of a flow cross the same networks.
//
// Memory: the breadth-first searches run at construction and keep one
// predecessor per pair (4 bytes * networks^2).  The path vectors themselves
// are built from it on first use and kept, since all of them at once would
// be cubic in a long chain of networks (a chain of 1000 holds 1.3 GB of
// paths); a shared_mutex guards that cache, so path() stays safe to call
// from any thread and its references stay valid for the Topology's life.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/common/ip_prefix.h"
#include "manager/config/manager_config.h"

namespace qos::manager {

using NetworkIndex = uint32_t;  ///< index into ManagerConfig::networks

class Topology {
public:
  explicit Topology(const ManagerConfig& config);

  /** The network whose longest prefix holds @p addr, if any. */
  std::optional<NetworkIndex> networkOf(const IpAddress& addr) const;

  /**
   * The networks a flow from @p src to @p dst crosses, in order, both ends
   * included; {src} when src == dst; empty when no chain of links joins them
   * (or an index is out of range).  The reference stays valid as long as this
   * Topology or a copy of it lives.
   */
  const std::vector<NetworkIndex>& path(NetworkIndex src, NetworkIndex dst) const;

  /** Network @p i; @p i must be below networkCount(). */
  const NetworkConfig& network(NetworkIndex i) const;
  size_t networkCount() const;

private:
  static constexpr NetworkIndex kNone = ~NetworkIndex{0};

  /** A binary trie node of the longest-prefix table, one bit per level. */
  struct TrieNode {
    std::array<uint32_t, 2> child{};  ///< index in the same trie; 0: none (the root is no child)
    NetworkIndex network = kNone;     ///< the network of the prefix ending here; kNone: none
  };
  /** Paths built so far, keyed by src * networkCount() + dst. */
  struct PathCache {
    std::shared_mutex mutex;
    std::unordered_map<uint64_t, std::vector<NetworkIndex>> paths;  ///< node-based: refs stay valid
  };

  void addPrefix(const IpPrefix& prefix, NetworkIndex network);
  void computePredecessors(const std::vector<std::vector<NetworkIndex>>& neighbors);
  std::vector<NetworkIndex> buildPath(NetworkIndex src, NetworkIndex dst) const;

  std::vector<NetworkConfig> networks_;
  std::vector<TrieNode> v4_trie_;  ///< root at 0
  std::vector<TrieNode> v6_trie_;  ///< root at 0
  /**
   * predecessor_[root * n + v]: v's predecessor on the path from root to v
   * in root's breadth-first tree; kNone when v is root or unreachable.
   */
  std::vector<NetworkIndex> predecessor_;
  std::shared_ptr<PathCache> cache_;  ///< shared by copies, which have the same paths
};

}  // namespace qos::manager
