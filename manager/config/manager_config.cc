#include "manager/config/manager_config.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "control/common/ip_protocol.h"
#include "control/common/units.h"
#include "control/config/endpoint.h"
#include "control/config/toml_support.h"
#include "control/transport/curve_keys.h"

namespace qos::manager {
namespace {

using config::ConfigReader;
using config::Need;
using config::Section;

constexpr int64_t kMaxDscp = 63;
constexpr uint32_t kSecondsPerMinute = 60;
constexpr uint32_t kSecondsPerHour = 60 * kSecondsPerMinute;
constexpr uint32_t kSecondsPerDay = 24 * kSecondsPerHour;
constexpr std::string_view kNameRule = "names are letters, digits, '-' and '_'";

// Names of networks, SLAs, applications and classes show up in metrics
// labels, log lines and qosctl tables, so they keep to a plain alphabet.
bool isPlainName(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

std::string formatDuration(uint32_t seconds) {
  if (seconds % kSecondsPerDay == 0) {
    return std::to_string(seconds / kSecondsPerDay) + "d";
  }
  if (seconds % kSecondsPerHour == 0) {
    return std::to_string(seconds / kSecondsPerHour) + "h";
  }
  if (seconds % kSecondsPerMinute == 0) {
    return std::to_string(seconds / kSecondsPerMinute) + "m";
  }
  return std::to_string(seconds) + "s";
}

// A duration string; nullopt if the key is missing or wrong (the error is recorded).
std::optional<uint32_t> readDuration(Section& s, std::string_view key) {
  const toml::node* n = s.node(key);
  if (n == nullptr) {
    return std::nullopt;
  }
  const auto* str = n->as_string();
  if (str == nullptr) {
    s.failAt(key, n->is_number() ? "a duration needs a unit: write e.g. \"60s\", \"5m\", \"1h\""
                                 : "expected a duration string such as \"60s\"");
    return std::nullopt;
  }
  auto seconds = parseDurationSec(str->get());
  if (!seconds) {
    s.failAt(key, seconds.error().message);
    return std::nullopt;
  }
  return *seconds;
}

// A duration in milliseconds within [min_ms, max_ms]; "0" turns it off when
// @p zero_is_off.  nullopt if the key is missing or wrong (the error is recorded).
std::optional<uint64_t> readDurationMs(Section& s, std::string_view key, uint64_t min_ms,
                                       uint64_t max_ms, bool zero_is_off = false) {
  const toml::node* n = s.node(key);
  if (n == nullptr) {
    return std::nullopt;
  }
  const auto* str = n->as_string();
  if (str == nullptr) {
    s.failAt(key, "expected a duration string such as \"1s\" or \"500ms\"");
    return std::nullopt;
  }
  if (zero_is_off && (str->get() == "0" || str->get() == "off")) {
    return 0;
  }
  auto ms = parseDurationMs(str->get());
  if (!ms) {
    s.failAt(key, ms.error().message);
    return std::nullopt;
  }
  if (*ms < min_ms || *ms > max_ms) {
    s.failAt(key, "must be between " + std::to_string(min_ms) + "ms and " +
                      std::to_string(max_ms / 1000) + "s");
    return std::nullopt;
  }
  return *ms;
}

using config::checkZmqEndpoint;

// The Prometheus endpoint: "HOST:PORT", as the exposer takes it.
std::optional<std::string> checkHostPort(std::string_view listen) {
  const size_t colon = listen.rfind(':');
  unsigned port = 0;
  if (colon == std::string_view::npos || colon == 0 ||
      !parseUnsigned(listen.substr(colon + 1), port) || port > 65535) {
    return "'" + std::string(listen) + "': expected HOST:PORT, e.g. \"127.0.0.1:9471\"";
  }
  return std::nullopt;
}

// Finds overlapping prefixes as they are added, in config order, with a
// binary trie per address family: a prefix overlaps an earlier one if that
// one sits on its path from the root (contains it) or below it (is inside it).
class OverlapFinder {
public:
  /**
   * Adds @p prefix under @p id unless it overlaps a prefix added before.
   * @return the id of an earlier prefix it overlaps, or nullopt once added.
   */
  std::optional<size_t> add(const IpPrefix& prefix, size_t id) {
    std::vector<Node>& nodes = prefix.address.family == 4 ? v4_ : v6_;
    if (nodes.empty()) {
      nodes.emplace_back();
    }
    size_t at = 0;
    for (unsigned bit = 0; bit < prefix.length_bits; ++bit) {
      if (nodes[at].owner) {
        return nodes[at].owner;
      }
      const unsigned side = (prefix.address.bytes[bit / 8] >> (7 - bit % 8)) & 1U;
      if (nodes[at].child[side] == 0) {
        nodes[at].child[side] = nodes.size();
        nodes.emplace_back();
      }
      at = nodes[at].child[side];
    }
    // Every node below was made on the way to some prefix, so any path down
    // ends at an owner.
    for (size_t below = at; true;) {
      if (nodes[below].owner) {
        return nodes[below].owner;
      }
      const std::array<size_t, 2>& child = nodes[below].child;
      if (child[0] == 0 && child[1] == 0) {
        break;
      }
      below = child[0] != 0 ? child[0] : child[1];
    }
    nodes[at].owner = id;
    return std::nullopt;
  }

private:
  struct Node {
    std::array<size_t, 2> child{};  ///< index into the same vector; 0: none (the root is no child)
    std::optional<size_t> owner;    ///< id of the prefix that ends here
  };
  std::vector<Node> v4_;
  std::vector<Node> v6_;
};

// Where a prefix came from, to name it in an overlap error.
struct PrefixOrigin {
  size_t network = 0;
  size_t index = 0;
};

// The classes of a `classes = { NAME = { ... }, ... }` table in the order
// they are written (toml++ keeps keys sorted), so errors come in file order.
std::vector<std::pair<const toml::key*, const toml::node*>> classEntries(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> entries;
  for (const auto& [key, value] : t) {
    entries.emplace_back(&key, &value);
  }
  std::stable_sort(entries.begin(), entries.end(), [](const auto& x, const auto& y) {
    const toml::source_position& a = x.first->source().begin;
    const toml::source_position& b = y.first->source().begin;
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  return entries;
}

// One class entry's table, with its name checked; nullopt after an error.
std::optional<Section> classSection(ConfigReader& reader, const std::string& table_path,
                                    const toml::key& key, const toml::node& value,
                                    std::string_view example) {
  const std::string path = table_path + "." + std::string(key.str());
  if (!isPlainName(key.str())) {
    reader.fail(key.source(), path, "invalid class name: " + std::string(kNameRule));
    return std::nullopt;
  }
  const auto* t = value.as_table();
  if (t == nullptr) {
    reader.fail(value.source(), path, "expected a table such as " + std::string(example));
    return std::nullopt;
  }
  return Section(reader, *t, path);
}

// Reads `name`, checks its alphabet and that it is not taken; nullopt after an error.
std::optional<std::string> readName(Section& s, std::map<std::string, size_t>& taken, size_t index,
                                    std::string_view kind) {
  auto name = s.getString("name", Need::Required);
  if (!name) {
    return std::nullopt;
  }
  if (!isPlainName(*name)) {
    s.failAt("name", "invalid name '" + *name + "': " + std::string(kNameRule));
    return std::nullopt;
  }
  const auto [it, inserted] = taken.emplace(*name, index);
  if (!inserted) {
    s.failAt("name", "'" + *name + "' is already the name of " + std::string(kind) + "[" +
                         std::to_string(it->second) + "]");
    return std::nullopt;
  }
  return name;
}

class Loader {
public:
  Loader(const toml::table& root, const std::string& path) : top_(reader_, root, "") {
    cfg_.source_path = path;
  }

  Result<ManagerConfig> run() {
    if (auto manager = top_.getTable("manager")) {
      readManager(*manager);
    }
    if (auto metrics = top_.getTable("metrics")) {
      readMetrics(*metrics);
    }
    std::vector<Section> networks = top_.getTableArray("network");
    for (size_t i = 0; i < networks.size(); ++i) {
      readNetwork(networks[i], i);
    }
    if (!reader_.failed() && cfg_.networks.empty()) {
      top_.fail("at least one [[network]] (name = \"...\", prefixes = [...]) is required");
    }
    collectKnownClasses();
    std::vector<Section> links = top_.getTableArray("link");
    for (size_t i = 0; i < links.size(); ++i) {
      readLink(links[i], i);
    }
    std::vector<Section> slas = top_.getTableArray("sla");
    for (size_t i = 0; i < slas.size(); ++i) {
      readSla(slas[i], i);
    }
    std::vector<Section> applications = top_.getTableArray("application");
    for (size_t i = 0; i < applications.size(); ++i) {
      readApplication(applications[i], i);
    }
    std::vector<Section> appliances = top_.getTableArray("appliance");
    for (size_t i = 0; i < appliances.size(); ++i) {
      readAppliance(appliances[i], i);
    }
    std::optional<Section> security = top_.getTable("security");
    if (security) {
      readSecurity(*security);
    }
    std::vector<Section> peers = top_.getTableArray("peer");
    for (size_t i = 0; i < peers.size(); ++i) {
      readPeer(peers[i], i);
    }
    if (!reader_.failed()) {
      checkSecurity(security ? &*security : nullptr, peers);
    }
    top_.rejectUnknownKeys();
    if (reader_.failed()) {
      return reader_.error();
    }
    return std::move(cfg_);
  }

private:
  void readManager(Section& m) {
    if (auto listen = m.getString("listen")) {
      if (auto problem = checkZmqEndpoint(*listen)) {
        m.failAt("listen", *problem);
      }
      cfg_.listen = *listen;
    }
    if (auto state = m.getString("state")) {
      cfg_.state_path = *state;
    }
    if (auto ms = readDurationMs(m, "heartbeat", 100, 60'000)) {
      cfg_.heartbeat_ms = static_cast<uint32_t>(*ms);
    }
    if (auto ms = readDurationMs(m, "enforce_wait", 0, 60'000, /*zero_is_off=*/true)) {
      cfg_.enforce_wait_ms = static_cast<uint32_t>(*ms);
    }
    if (auto ms = readDurationMs(m, "idle_release", 1000, uint64_t{kSecondsPerDay} * 365 * 1000,
                                 /*zero_is_off=*/true)) {
      cfg_.idle_release_sec = static_cast<uint32_t>(*ms / 1000);
    }
    const auto lease = readDuration(m, "lease");
    const auto max_lease = readDuration(m, "max_lease");
    cfg_.lease_sec = lease.value_or(cfg_.lease_sec);
    cfg_.max_lease_sec = max_lease.value_or(cfg_.max_lease_sec);
    if (!reader_.failed() && cfg_.lease_sec > cfg_.max_lease_sec) {
      const std::string why = "the default lease (" + formatDuration(cfg_.lease_sec) +
                              ") is longer than max_lease (" + formatDuration(cfg_.max_lease_sec) +
                              ")";
      m.failAt(lease ? "lease" : "max_lease", why);
    }
    m.rejectUnknownKeys();
  }

  void readMetrics(Section& m) {
    if (auto listen = m.getString("listen", Need::Required)) {
      if (auto problem = checkHostPort(*listen)) {
        m.failAt("listen", *problem);
      }
      cfg_.metrics_listen = *listen;
    }
    m.rejectUnknownKeys();
  }

  void readNetwork(Section& n, size_t index) {
    NetworkConfig net;
    net.name = readName(n, network_index_, index, "network").value_or("");
    readPrefixes(n, index, net);
    net.class_enabled = n.getBool("class_enabled").value_or(false);
    const toml::node* classes = n.node("classes");
    if (classes != nullptr && !net.class_enabled) {
      n.failAt("classes",
               "classes are given but class_enabled is false: set class_enabled = true, or remove "
               "the classes");
    }
    const toml::table* table = classes != nullptr ? classes->as_table() : nullptr;
    if (classes != nullptr && table == nullptr) {
      n.failAt("classes", "expected a table such as { EF = { dscp = 46, capacity = \"2mbit\" } }");
    } else if (net.class_enabled && (table == nullptr || table->empty())) {
      n.failAt("classes",
               "a class-enabled network needs at least one class, e.g. classes = { EF = { dscp = "
               "46, capacity = \"2mbit\" } }");
    } else if (table != nullptr) {
      readNetworkClasses(n.path() + ".classes", *table, net);
    }
    n.rejectUnknownKeys();
    cfg_.networks.push_back(std::move(net));
  }

  void readPrefixes(Section& n, size_t network, NetworkConfig& net) {
    const toml::node* node = n.node("prefixes");
    if (node == nullptr) {
      return;
    }
    const auto* array = node->as_array();
    if (array == nullptr) {
      n.failAt("prefixes", "expected an array of prefixes, e.g. [\"198.18.1.0/24\"]");
      return;
    }
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& item = (*array)[i];
      const std::string path = n.path() + ".prefixes[" + std::to_string(i) + "]";
      const auto* text = item.as_string();
      if (text == nullptr) {
        reader_.fail(item.source(), path, "expected a prefix string such as \"198.18.1.0/24\"");
        return;
      }
      auto prefix = parseIpPrefix(text->get());
      if (!prefix) {
        reader_.fail(item.source(), path, prefix.error().message);
        return;
      }
      if (auto earlier = overlaps_.add(*prefix, prefix_origins_.size())) {
        reader_.fail(item.source(), path, overlapMessage(*prefix, network, net, *earlier));
        return;
      }
      prefix_origins_.push_back(PrefixOrigin{network, i});
      net.prefixes.push_back(*prefix);
    }
  }

  std::string overlapMessage(const IpPrefix& prefix, size_t network, const NetworkConfig& net,
                             size_t earlier_id) const {
    const PrefixOrigin& other = prefix_origins_[earlier_id];
    if (other.network == network) {
      return formatIpPrefix(prefix) + " overlaps " + formatIpPrefix(net.prefixes[other.index]) +
             " (prefixes[" + std::to_string(other.index) + "]) of the same network";
    }
    const NetworkConfig& owner = cfg_.networks[other.network];
    return formatIpPrefix(prefix) + " of network '" + net.name + "' overlaps " +
           formatIpPrefix(owner.prefixes[other.index]) + " of network '" + owner.name +
           "' (network[" + std::to_string(other.network) + "].prefixes[" +
           std::to_string(other.index) + "])";
  }

  void readNetworkClasses(const std::string& path, const toml::table& table, NetworkConfig& net) {
    std::map<uint8_t, std::string> class_of_dscp;
    for (const auto& [key, value] : classEntries(table)) {
      auto c = classSection(reader_, path, *key, *value, "{ dscp = 46, capacity = \"2mbit\" }");
      if (!c) {
        return;
      }
      ClassSpec spec;
      const auto dscp = c->getInt("dscp", 0, kMaxDscp, Need::Required);
      const auto capacity = c->getRateBitsPerSec("capacity");
      c->rejectUnknownKeys();
      if (!dscp) {
        return;
      }
      spec.dscp = static_cast<uint8_t>(*dscp);
      const auto [it, inserted] = class_of_dscp.emplace(spec.dscp, key->str());
      if (!inserted) {
        c->failAt("dscp", std::to_string(*dscp) + " is already the DSCP of class " + it->second +
                              " in this network");
      }
      if (capacity == 0U) {
        c->failAt("capacity",
                  "must be > 0 (leave capacity out for a class without admission control)");
      }
      spec.capacity_bps = capacity;
      net.classes.emplace(std::string(key->str()), spec);
    }
  }

  // The classes some class-enabled network defines: the only names profiles may use.
  void collectKnownClasses() {
    for (const NetworkConfig& net : cfg_.networks) {
      if (net.class_enabled) {
        for (const auto& [name, spec] : net.classes) {
          known_classes_.insert(name);
        }
      }
    }
  }

  // The index of a network by name; records an error at @p region if unknown.
  std::optional<size_t> findNetwork(const std::string& name, const toml::source_region& region,
                                    const std::string& path) {
    const auto it = network_index_.find(name);
    if (it == network_index_.end()) {
      reader_.fail(region, path, "unknown network '" + name + "'");
      return std::nullopt;
    }
    return it->second;
  }

  void readLink(Section& l, size_t index) {
    const auto between = l.getStringArray("between", Need::Required);
    l.rejectUnknownKeys();
    if (!between) {
      return;
    }
    if (between->size() != 2) {
      l.failAt("between", "expected the two networks the link joins, e.g. [\"lan-a\", \"wan\"]");
      return;
    }
    const toml::array& array = *l.table().get("between")->as_array();
    std::array<size_t, 2> ends{};
    for (size_t i = 0; i < 2; ++i) {
      auto end = findNetwork((*between)[i], array[i].source(),
                             l.path() + ".between[" + std::to_string(i) + "]");
      if (!end) {
        return;
      }
      ends.at(i) = *end;
    }
    if (ends[0] == ends[1]) {
      l.failAt("between",
               "a link joins two different networks, but both ends are '" + (*between)[0] + "'");
      return;
    }
    const auto [it, inserted] = link_index_.emplace(std::minmax(ends[0], ends[1]), index);
    if (!inserted) {
      l.failAt("between", "'" + (*between)[0] + "' and '" + (*between)[1] +
                              "' are already linked by link[" + std::to_string(it->second) + "]");
      return;
    }
    cfg_.links.push_back(LinkConfig{(*between)[0], (*between)[1]});
  }

  void readAppliance(Section& a, size_t index) {
    ApplianceSite site;
    site.name = readName(a, appliance_index_, index, "appliance").value_or("");
    const auto link = a.getStringArray("link", Need::Required);
    a.rejectUnknownKeys();
    if (!link || reader_.failed()) {
      return;
    }
    if (link->size() != 2) {
      a.failAt("link",
               "expected the two networks of the link it sits on, inside first: [\"lan-a\", "
               "\"wan\"]");
      return;
    }
    const toml::array& array = *a.table().get("link")->as_array();
    std::array<size_t, 2> ends{};
    for (size_t i = 0; i < 2; ++i) {
      auto end =
          findNetwork((*link)[i], array[i].source(), a.path() + ".link[" + std::to_string(i) + "]");
      if (!end) {
        return;
      }
      ends.at(i) = *end;
    }
    if (link_index_.count(std::minmax(ends[0], ends[1])) == 0) {
      a.failAt("link", "'" + (*link)[0] + "' and '" + (*link)[1] +
                           "' are not joined by any [[link]]: an appliance sits on a link");
      return;
    }
    site.inside = (*link)[0];
    site.outside = (*link)[1];
    cfg_.appliances.push_back(std::move(site));
  }

  void readSecurity(Section& s) {
    const auto mode = s.getString("mode", Need::Required);
    const auto secret = s.getString("secret_key");
    s.rejectUnknownKeys();
    if (!mode) {
      return;
    }
    if (*mode == "none") {
      if (secret) {
        s.failAt("secret_key", "mode \"none\" uses no key: remove it, or set mode = \"curve\"");
      }
      return;
    }
    if (*mode != "curve") {
      s.failAt("mode", "expected \"curve\" or \"none\"");
      return;
    }
    cfg_.security.curve = true;
    if (!secret) {
      s.failAt("mode",
               "mode \"curve\" needs secret_key (the manager's key file; `qosctl "
               "keygen qosmgr` makes one)");
      return;
    }
    cfg_.security.secret_key_path = config::pathFromConfig(cfg_.source_path, *secret);
    Result<control::CurveKeyPair> keys = control::loadCurveSecretKey(cfg_.security.secret_key_path);
    if (!keys) {
      s.failAt("secret_key", keys.error().message);
      return;
    }
    cfg_.security.secret_z85 = keys->secret_z85;
    cfg_.security.public_z85 = keys->public_z85;
  }

  void readPeer(Section& p, size_t index) {
    PeerConfig peer;
    peer.name = readName(p, peer_index_, index, "peer").value_or("");
    const auto role = p.getString("role", Need::Required);
    const auto key = p.getString("public_key", Need::Required);
    p.rejectUnknownKeys();
    if (reader_.failed()) {
      return;
    }
    const std::optional<control::Role> parsed_role = control::roleFromName(*role);
    if (!parsed_role) {
      p.failAt("role", "expected \"appliance\", \"host\" or \"admin\"");
      return;
    }
    peer.role = *parsed_role;
    if (peer.role == control::Role::Appliance && appliance_index_.count(peer.name) == 0) {
      p.failAt("name",
               "an appliance's peer name is its [[appliance]] name, and there is no "
               "[[appliance]] named '" +
                   peer.name + "'");
      return;
    }
    // A file beside the config wins over key text (loadCurvePublicKey()).
    const std::string path = config::pathFromConfig(cfg_.source_path, *key);
    std::error_code no_file;
    const bool inline_key = !std::filesystem::exists(path, no_file) &&
                            key->size() == control::kCurveKeyZ85Chars &&
                            control::decodeZ85Key(*key).ok();
    Result<std::string> z85 = control::loadCurvePublicKey(inline_key ? *key : path);
    if (!z85) {
      p.failAt("public_key", z85.error().message);
      return;
    }
    if (const auto [it, inserted] = key_index_.emplace(*z85, index); !inserted) {
      p.failAt("public_key", "the same key as peer[" + std::to_string(it->second) +
                                 "]: each peer has its own key");
      return;
    }
    peer.public_key_z85 = std::move(*z85);
    cfg_.security.role_by_name.emplace(peer.name, peer.role);
    cfg_.security.peers.push_back(std::move(peer));
  }

  void checkSecurity(Section* security, std::vector<Section>& peers) {
    if (cfg_.security.curve) {
      if (cfg_.security.peers.empty()) {
        security->fail("mode \"curve\" lets in only the keys of [[peer]]s, and there is none");
      }
      return;
    }
    if (!peers.empty()) {
      peers[0].fail("[[peer]] keys need [security] mode = \"curve\"");
      return;
    }
    if (!config::isLocalEndpoint(cfg_.listen)) {
      const std::string why = "listening on " + cfg_.listen +
                              " without CURVE would let anyone who reaches it release any flow: "
                              "set [security] mode = \"curve\" (or listen on loopback or ipc)";
      if (security != nullptr) {
        security->failAt("mode", why);
      } else {
        top_.fail(why);
      }
    }
  }

  void readSla(Section& s, size_t index) {
    SlaConfig sla;
    sla.name = readName(s, sla_index_, index, "sla").value_or("");
    const NetworkConfig* net = nullptr;
    if (auto network = s.getString("network", Need::Required)) {
      sla.network = *network;
      const toml::node* node = s.table().get("network");
      if (auto i = findNetwork(*network, node->source(), s.path() + ".network")) {
        net = &cfg_.networks[*i];
        if (!net->class_enabled) {
          s.failAt("network", "network '" + *network +
                                  "' is not class_enabled: an SLA limits classes, and it has none");
        }
      }
    }
    auto classes = s.getTable("classes", Need::Required);
    if (classes && classes->table().empty()) {
      s.failAt("classes",
               "an SLA needs at least one class, e.g. classes = { EF = { rate = "
               "\"1mbit\" } }");
    } else if (classes) {
      for (const auto& [key, value] : classEntries(classes->table())) {
        auto c = classSection(reader_, classes->path(), *key, *value, "{ rate = \"1mbit\" }");
        if (!c) {
          break;
        }
        const std::string name(key->str());
        if (!known_classes_.contains(name)) {
          reader_.fail(key->source(), c->path(),
                       "unknown class '" + name + "': no class-enabled network defines it");
        } else if (net != nullptr && !net->classes.contains(name)) {
          reader_.fail(key->source(), c->path(),
                       "class '" + name + "' is not defined by network '" + net->name + "'");
        }
        const auto rate = c->getRateBitsPerSec("rate", Need::Required);
        if (rate == 0U) {
          c->failAt("rate", "must be > 0");
        }
        c->rejectUnknownKeys();
        sla.class_rate_bps.emplace(name, rate.value_or(0));
      }
    }
    s.rejectUnknownKeys();
    cfg_.slas.push_back(std::move(sla));
  }

  Profile readProfile(Section& p) {
    Profile profile;
    if (auto class_name = p.getString("class", Need::Required)) {
      if (!known_classes_.contains(*class_name)) {
        p.failAt("class",
                 "unknown class '" + *class_name + "': no class-enabled network defines it");
      }
      profile.class_name = *class_name;
    }
    const auto rate = p.getRateBitsPerSec("rate", Need::Required);
    const auto burst = p.getSizeBytes("burst", Need::Required);
    if (rate == 0U) {
      p.failAt("rate", "must be > 0");
    }
    if (burst == 0U) {
      p.failAt("burst", "must be > 0");
    }
    p.rejectUnknownKeys();
    profile.rate_bps = rate.value_or(0);
    profile.burst_bytes = burst.value_or(0);
    return profile;
  }

  std::optional<AppMatch> readMatch(Section& m) {
    AppMatch match;
    const auto proto = m.getString("proto");
    const std::optional<uint8_t> number = proto ? ipProtocolNumber(*proto) : std::nullopt;
    if (number && ipProtocolHasPorts(*number)) {
      match.protocol = *number;
    } else if (proto && *proto != "any") {
      m.failAt("proto", "unknown protocol '" + *proto + "': expected udp, tcp, sctp or any");
    }
    const auto sports = m.getPortRange("sport");
    const auto dports = m.getPortRange("dport");
    m.rejectUnknownKeys();
    if (!sports || !dports) {
      return std::nullopt;
    }
    match.src_ports = *sports;
    match.dst_ports = *dports;
    return match;
  }

  void readApplication(Section& a, size_t index) {
    ApplicationConfig app;
    app.name = readName(a, application_index_, index, "application").value_or("");
    if (auto match = a.getTable("match")) {
      app.match = readMatch(*match);
    }
    if (!a.has("default")) {
      a.failAt("default",
               "missing: an application needs a default profile, e.g. default = { class = "
               "\"EF\", rate = \"100kbit\", burst = \"10kB\" }");
    } else if (auto d = a.getTable("default")) {
      app.default_profile = readProfile(*d);
    }
    for (Section& alt : a.getTableArray("alternates")) {
      app.alternates.push_back(readProfile(alt));
    }
    a.rejectUnknownKeys();
    cfg_.applications.push_back(std::move(app));
  }

  ConfigReader reader_;
  Section top_;
  ManagerConfig cfg_;
  std::map<std::string, size_t> network_index_;             ///< network name -> index
  std::map<std::string, size_t> sla_index_;                 ///< SLA name -> index
  std::map<std::string, size_t> appliance_index_;           ///< appliance name -> index
  std::map<std::string, size_t> peer_index_;                ///< peer name -> index
  std::map<std::string, size_t> key_index_;                 ///< peer public key -> index
  std::map<std::string, size_t> application_index_;         ///< application name -> index
  std::map<std::pair<size_t, size_t>, size_t> link_index_;  ///< (lower, higher) network -> link
  std::set<std::string> known_classes_;  ///< classes of every class-enabled network
  OverlapFinder overlaps_;
  std::vector<PrefixOrigin> prefix_origins_;  ///< by OverlapFinder id
};

}  // namespace

Result<ManagerConfig> loadManagerConfig(const std::string& path) {
  auto root = config::parseTomlFile(path);
  if (!root) {
    return root.error();
  }
  return Loader(*root, path).run();
}

Result<ManagerConfig> parseManagerConfig(std::string_view text, const std::string& source_name) {
  auto root = config::parseTomlText(text, source_name);
  if (!root) {
    return root.error();
  }
  return Loader(*root, source_name).run();
}

}  // namespace qos::manager
