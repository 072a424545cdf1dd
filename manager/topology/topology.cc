#include "manager/topology/topology.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "control/common/assert.h"

namespace qos::manager {
namespace {

// Bit @p bit (0 = most significant) of an address in network byte order.
unsigned addressBit(const std::array<uint8_t, 16>& bytes, unsigned bit) {
  return (bytes[bit / 8] >> (7 - bit % 8)) & 1U;
}

}  // namespace

Topology::Topology(const ManagerConfig& config)
    : networks_(config.networks), v4_trie_(1), v6_trie_(1), cache_(std::make_shared<PathCache>()) {
  QOS_RELEASE_ASSERT(networks_.size() < kNone, "network indexes must fit in NetworkIndex");
  const auto n = static_cast<NetworkIndex>(networks_.size());
  std::map<std::string, NetworkIndex> index_of;
  for (NetworkIndex i = 0; i < n; ++i) {
    index_of.emplace(networks_[i].name, i);
    for (const IpPrefix& prefix : networks_[i].prefixes) {
      addPrefix(prefix, i);
    }
  }
  // A validated config names only known networks and never links a network
  // to itself; a hand-made one may, and such links are left out.
  std::vector<std::vector<NetworkIndex>> neighbors(n);
  for (const LinkConfig& link : config.links) {
    const auto a = index_of.find(link.a);
    const auto b = index_of.find(link.b);
    if (a == index_of.end() || b == index_of.end() || a->second == b->second) {
      continue;
    }
    neighbors[a->second].push_back(b->second);
    neighbors[b->second].push_back(a->second);
  }
  // Visiting neighbors in config order is what makes paths deterministic.
  for (std::vector<NetworkIndex>& list : neighbors) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  computePredecessors(neighbors);
}

void Topology::addPrefix(const IpPrefix& prefix, NetworkIndex network) {
  if (prefix.address.family != 4 && prefix.address.family != 6) {
    return;  // An unset prefix in a hand-made config holds no address.
  }
  std::vector<TrieNode>& trie = prefix.address.family == 4 ? v4_trie_ : v6_trie_;
  uint32_t at = 0;
  for (unsigned bit = 0; bit < prefix.length_bits; ++bit) {
    const unsigned side = addressBit(prefix.address.bytes, bit);
    if (trie[at].child.at(side) == 0) {
      trie[at].child.at(side) = static_cast<uint32_t>(trie.size());
      trie.emplace_back();
    }
    at = trie[at].child.at(side);
  }
  // The same prefix twice (only in a config that was not validated): the
  // network that comes first in the config keeps it.
  if (trie[at].network == kNone) {
    trie[at].network = network;
  }
}

// One breadth-first search per root.  Within a level, nodes are dequeued in
// the lexicographic order of their paths from the root (by induction: a level
// is discovered parent by parent, each parent's neighbors in index order), so
// the first parent to reach a node gives it the smallest shortest path.
void Topology::computePredecessors(const std::vector<std::vector<NetworkIndex>>& neighbors) {
  const size_t n = networks_.size();
  predecessor_.assign(n * n, kNone);
  std::vector<bool> seen(n);
  std::vector<NetworkIndex> queue;
  queue.reserve(n);
  for (size_t root = 0; root < n; ++root) {
    NetworkIndex* parent = &predecessor_[root * n];
    seen.assign(n, false);
    seen[root] = true;
    queue.clear();
    queue.push_back(static_cast<NetworkIndex>(root));
    for (size_t head = 0; head < queue.size(); ++head) {
      const NetworkIndex v = queue[head];
      for (const NetworkIndex w : neighbors[v]) {
        if (!seen[w]) {
          seen[w] = true;
          parent[w] = v;
          queue.push_back(w);
        }
      }
    }
  }
}

std::optional<NetworkIndex> Topology::networkOf(const IpAddress& addr) const {
  if (addr.family != 4 && addr.family != 6) {
    return std::nullopt;
  }
  const std::vector<TrieNode>& trie = addr.family == 4 ? v4_trie_ : v6_trie_;
  const unsigned max_bits = addr.family == 4 ? 32 : 128;
  NetworkIndex best = trie[0].network;
  uint32_t at = 0;
  for (unsigned bit = 0; bit < max_bits; ++bit) {
    at = trie[at].child.at(addressBit(addr.bytes, bit));
    if (at == 0) {
      break;
    }
    if (trie[at].network != kNone) {
      best = trie[at].network;
    }
  }
  if (best == kNone) {
    return std::nullopt;
  }
  return best;
}

// The path of the pair's lower index is read off that index's search tree:
// walking predecessors from the higher end gives higher -> lower directly,
// and the lower -> higher path is its reverse.
std::vector<NetworkIndex> Topology::buildPath(NetworkIndex src, NetworkIndex dst) const {
  const size_t n = networks_.size();
  const NetworkIndex root = std::min(src, dst);
  const NetworkIndex far = std::max(src, dst);
  if (src != dst && predecessor_[root * n + far] == kNone) {
    return {};
  }
  std::vector<NetworkIndex> path;
  for (NetworkIndex v = far; v != root; v = predecessor_[root * n + v]) {
    path.push_back(v);
  }
  path.push_back(root);
  if (src < dst) {
    std::reverse(path.begin(), path.end());
  }
  return path;
}

const std::vector<NetworkIndex>& Topology::path(NetworkIndex src, NetworkIndex dst) const {
  static const std::vector<NetworkIndex> kNoPath;
  const size_t n = networks_.size();
  if (src >= n || dst >= n) {
    return kNoPath;
  }
  const uint64_t key = uint64_t{src} * n + dst;
  {
    std::shared_lock lock(cache_->mutex);
    if (auto it = cache_->paths.find(key); it != cache_->paths.end()) {
      return it->second;
    }
  }
  // Built outside the lock: two threads may build the same path, and the
  // first to insert it wins; both are equal.
  std::vector<NetworkIndex> built = buildPath(src, dst);
  if (built.empty()) {
    return kNoPath;
  }
  std::unique_lock lock(cache_->mutex);
  return cache_->paths.try_emplace(key, std::move(built)).first->second;
}

const NetworkConfig& Topology::network(NetworkIndex i) const {
  QOS_ASSERT(i < networks_.size(), "network indexes come from networkOf() or path()");
  return networks_[i];
}

size_t Topology::networkCount() const { return networks_.size(); }

}  // namespace qos::manager
