// Admission engine: the method described at the top of admission.h, with the
// choices the header leaves open written down here.
//
// Ledger.  At construction every (class-enabled network, class) and every
// (SLA, class) becomes a Slot in one vector, in the order usage() reports
// them: networks in config order with their classes in name order, then SLAs
// in config order with their classes in name order.  Class names are interned
// to small integers, and every network and SLA keeps a vector indexed by class
// id giving its slot, so admit() does no string lookups on the path.
//
//   slots: [lan-a/AF41][lan-a/BE][lan-a/EF][wan/AF41][wan/BE] ... [carrier-x/EF]
//                                   ^ networks[lan-a].slot_by_class[id of "EF"] == 2
//
// What a flow charges.  For its class, every class-enabled network on its path
// charges that network's slot (the class must exist there, or the profile is
// unavailable on that path) and every SLA over that network that lists the
// class charges the SLA's slot.  Networks that are not class-enabled impose
// nothing and hold nothing, and neither do SLAs over them: without DiffServ
// there is no per-class traffic for a contract to limit.  A flow whose path
// has no class-enabled network is therefore granted its default profile with
// DSCP 0 and reserves nothing.
//
// Bidirectional flows.  Capacity is one number per (network, class), shared
// by both directions: a bidirectional grant whose forward and reverse paths
// both cross a network reserves twice its rate there (and twice on the SLAs
// over it).  Both directions are checked and reserved together, so either
// both hold or neither does.  A grant counts as one flow on every slot it
// holds, however many times it crosses it.
//
// Denials.  When no profile fits, the message lists every profile tried, in
// order, each with the first network or SLA on its path that refused it
// ("no capacity: EF 100kbit on lan-a (2mbit of 2mbit reserved); AF41 100kbit
// on SLA carrier-x (10mbit of 10mbit reserved)").  The reason is
// ClassUnavailable only when every profile's class is missing from some
// class-enabled network of the path; otherwise NoCapacity.
//
// Idempotency.  A request whose (client_id, request_id) are both non-empty and
// equal to those of a live grant gets that grant back unchanged (same flow id,
// same expiry, no second reservation), even if the rest of the request
// differs: a retry must never double-book, and a client that reuses a request
// id for a different flow has made a mistake we cannot repair here.  A grant
// is live from admit() or restore() until release() or expire() removes it;
// once removed, its key is forgotten and may be used again.
//
// Leases.  Expiries live in a min-heap of (expires_at_ms, flow_id) with lazy
// deletion: release() and refresh() leave the old entry behind, and expire()
// skips entries that no longer match a live grant's expiry.  When stale entries
// outnumber live grants the heap is rebuilt, so its size stays O(live grants).
// refresh() caps a lease at max_lease_sec (it cannot fail with a reason, so
// it clamps where admit() refuses).
//
// restore().  The stored grant's profile is reserved as it is (not re-chosen
// from the application), over the path the current topology gives for its
// addresses.  The path, DSCPs and meter in the re-installed grant are
// recomputed from the current config, so they describe what is reserved now.
// If the path or the capacity no longer holds, nothing is reserved for it.
//
// Cost.  admit() is one hash lookup for the application, two longest-prefix
// lookups and cached paths from Topology, a walk over the path's slots in a
// reused scratch vector, and the grant's own allocations (the grant node, its
// strings and path names, the idempotency key).  Denial messages are only
// formatted when every profile failed.  A live grant keeps pointers to its
// paths inside the Topology (valid for the Topology's life, which outlives
// the engine), so release() walks the same slots without looking anything up.
#include "manager/admission/admission.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "control/common/assert.h"
#include "control/common/ip_protocol.h"
#include "control/common/units.h"

namespace qos::manager {

namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kMsPerSec = 1000;
// The expiry heap is rebuilt when it holds more than twice the live grants
// plus this many entries, so small tables never bother.
constexpr size_t kHeapSlackEntries = 1024;

/** One (network, class) or (SLA, class) ledger line. */
struct Slot {
  bool is_sla = false;
  uint32_t owner = 0;                    ///< network index, or SLA index when is_sla
  uint32_t class_id = 0;                 ///< interned class name
  uint8_t dscp = 0;                      ///< networks only
  std::optional<uint64_t> capacity_bps;  ///< none: not admission-controlled
  uint64_t reserved_bps = 0;
  uint64_t flows = 0;    ///< grants holding bandwidth here
  uint32_t pending = 0;  ///< times the flow being checked crosses this slot; 0 between calls
};

struct NetworkInfo {
  bool class_enabled = false;
  std::vector<uint32_t> slot_by_class;  ///< kNone where the network lacks the class
  std::vector<uint32_t> slas;           ///< SLAs over this network, config order
};

struct SlaInfo {
  std::vector<uint32_t> slot_by_class;  ///< kNone where the SLA does not list the class
};

struct AppInfo {
  std::vector<uint32_t> profile_class;  ///< class id of the default, then each alternate
};

/** A live grant and what it holds, so release needs no lookups but the slots. */
struct Entry {
  Grant grant;
  const std::vector<NetworkIndex>* path = nullptr;          ///< owned by the Topology
  const std::vector<NetworkIndex>* reverse_path = nullptr;  ///< null unless bidirectional
  uint32_t class_id = kNone;
};

/** Flows the engine has room for before its tables first grow (see the constructor). */
constexpr size_t kPresizedFlows = size_t{1} << 18;

/** Hash of a client's (client id, request id). */
size_t clientKeyHash(std::string_view client_id, std::string_view request_id) {
  const size_t h = std::hash<std::string_view>{}(client_id);
  return h ^
         (std::hash<std::string_view>{}(request_id) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

// Keys carry their hash, computed once.  The table's own hash function then
// only reads it: finding a key's place walks neighbouring entries and asks
// each one's bucket, and with a hash computed from the strings that meant
// hashing them again (4% of qosmgr's CPU under load), as did every rehash.
struct ClientKey {
  std::string client_id;
  std::string request_id;
  size_t hash = 0;
};

struct ClientKeyView {
  std::string_view client_id;
  std::string_view request_id;
  size_t hash = 0;
};

ClientKey makeClientKey(const std::string& client_id, const std::string& request_id) {
  return {client_id, request_id, clientKeyHash(client_id, request_id)};
}

ClientKeyView makeClientKeyView(std::string_view client_id, std::string_view request_id) {
  return {client_id, request_id, clientKeyHash(client_id, request_id)};
}

ClientKeyView viewOf(const ClientKey& key) { return {key.client_id, key.request_id, key.hash}; }
ClientKeyView viewOf(ClientKeyView key) { return key; }

// Transparent, so lookups take views of the request's strings and allocate nothing.
struct ClientKeyHash {
  using is_transparent = void;
  size_t operator()(ClientKeyView key) const noexcept { return key.hash; }
  size_t operator()(const ClientKey& key) const noexcept { return key.hash; }
};

struct ClientKeyEqual {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const noexcept {
    const ClientKeyView x = viewOf(a);
    const ClientKeyView y = viewOf(b);
    return x.hash == y.hash && x.client_id == y.client_id && x.request_id == y.request_id;
  }
};

struct ExpiryItem {
  uint64_t expires_at_ms = 0;
  uint64_t flow_id = 0;
};

// std::push_heap builds a max-heap; this order puts the earliest expiry on top.
bool laterExpiry(const ExpiryItem& a, const ExpiryItem& b) {
  return a.expires_at_ms != b.expires_at_ms ? a.expires_at_ms > b.expires_at_ms
                                            : a.flow_id > b.flow_id;
}

/** Why one profile does not fit, kept cheaply until a message is needed. */
struct Refusal {
  enum class Kind { Fits, Unavailable, Full };
  Kind kind = Kind::Fits;
  uint32_t network = kNone;  ///< Unavailable: the class-enabled network lacking the class
  uint32_t slot = kNone;     ///< Full: the first slot without room
  uint32_t crossings = 0;    ///< Full: how many times the flow crosses that slot
  bool reverse = false;      ///< the refusal is on the reverse path
};

bool hasClientKey(const std::string& client_id, const std::string& request_id) {
  return !client_id.empty() && !request_id.empty();
}

std::string protocolName(uint8_t protocol) {
  const char* name = ipProtocolName(protocol);
  return name != nullptr ? name : "protocol " + std::to_string(protocol);
}

}  // namespace

struct AdmissionEngine::State {
  std::vector<Slot> slots;
  std::vector<std::string> class_names;  ///< by class id
  std::unordered_map<std::string, uint32_t> class_ids;
  std::vector<NetworkInfo> networks;  ///< by NetworkIndex
  std::vector<SlaInfo> slas;          ///< by SLA index in the config
  std::vector<AppInfo> apps;          ///< by application index in the config
  std::unordered_map<std::string, uint32_t> app_by_name;

  std::unordered_map<uint64_t, Entry> grants;
  std::unordered_map<ClientKey, uint64_t, ClientKeyHash, ClientKeyEqual> by_client_key;
  std::vector<ExpiryItem> expiry_heap;
  uint64_t next_flow_id = 1;

  // Reused by every call (under the mutex) so checking a path allocates nothing.
  std::vector<uint32_t> scratch;  ///< slots the flow being checked charges, repeats kept
  std::vector<Refusal> refusals;  ///< one per profile tried

  /** Adds @p slot and files it under its class in @p slot_by_class. */
  void addSlot(std::vector<uint32_t>& slot_by_class, const Slot& slot) {
    slot_by_class[slot.class_id] = static_cast<uint32_t>(slots.size());
    slots.push_back(slot);
  }

  uint32_t internClass(const std::string& name) {
    const auto [it, inserted] =
        class_ids.try_emplace(name, static_cast<uint32_t>(class_names.size()));
    if (inserted) {
      class_names.push_back(name);
    }
    return it->second;
  }

  uint32_t classIdOf(const std::string& name) const {
    const auto it = class_ids.find(name);
    return it == class_ids.end() ? kNone : it->second;
  }

  /**
   * Appends to scratch the slots a flow of @p class_id charges along @p path.
   * @return the first class-enabled network lacking the class, or kNone.
   */
  uint32_t appendSlots(const std::vector<NetworkIndex>& path, uint32_t class_id) {
    for (const NetworkIndex n : path) {
      const NetworkInfo& net = networks[n];
      if (!net.class_enabled) {
        continue;
      }
      const uint32_t slot =
          class_id < net.slot_by_class.size() ? net.slot_by_class[class_id] : kNone;
      if (slot == kNone) {
        return n;
      }
      scratch.push_back(slot);
      for (const uint32_t s : net.slas) {
        const uint32_t sla_slot = slas[s].slot_by_class[class_id];
        if (sla_slot != kNone) {
          scratch.push_back(sla_slot);
        }
      }
    }
    return kNone;
  }

  /**
   * Fills scratch with the slots of @p class_id on the path (and reverse path)
   * and checks that each has room for @p rate_bps times the number of times it
   * is crossed.  On Fits, scratch holds the slots and every slot's pending
   * count is set, ready for commit(); otherwise pending counts are back to 0.
   */
  Refusal check(const std::vector<NetworkIndex>& path,
                const std::vector<NetworkIndex>* reverse_path, uint32_t class_id,
                uint64_t rate_bps) {
    scratch.clear();
    Refusal refusal;
    uint32_t missing = appendSlots(path, class_id);
    if (missing != kNone) {
      refusal.kind = Refusal::Kind::Unavailable;
      refusal.network = missing;
      return refusal;
    }
    const size_t n_forward = scratch.size();
    if (reverse_path != nullptr) {
      missing = appendSlots(*reverse_path, class_id);
      if (missing != kNone) {
        refusal.kind = Refusal::Kind::Unavailable;
        refusal.network = missing;
        refusal.reverse = true;
        return refusal;
      }
    }
    for (const uint32_t s : scratch) {
      ++slots[s].pending;
    }
    // Path order, so the refusal names the first slot that has no room.
    for (size_t i = 0; i < scratch.size(); ++i) {
      const Slot& slot = slots[scratch[i]];
      if (!slot.capacity_bps) {
        continue;
      }
      const uint64_t capacity_bps = *slot.capacity_bps;
      uint64_t need_bps = 0;
      const bool overflow = __builtin_mul_overflow(rate_bps, uint64_t{slot.pending}, &need_bps);
      if (overflow || slot.reserved_bps > capacity_bps ||
          need_bps > capacity_bps - slot.reserved_bps) {
        refusal.kind = Refusal::Kind::Full;
        refusal.slot = scratch[i];
        refusal.crossings = slot.pending;
        refusal.reverse = i >= n_forward;
        break;
      }
    }
    if (refusal.kind != Refusal::Kind::Fits) {
      for (const uint32_t s : scratch) {
        slots[s].pending = 0;
      }
    }
    return refusal;
  }

  /** Reserves what the last successful check() found; clears pending counts. */
  void commit(uint64_t rate_bps) {
    for (const uint32_t s : scratch) {
      Slot& slot = slots[s];
      if (slot.pending != 0) {
        slot.reserved_bps += rate_bps * slot.pending;
        ++slot.flows;
        slot.pending = 0;
      }
    }
  }

  /** Returns what @p entry holds to every slot it charged. */
  void unreserve(const Entry& entry) {
    scratch.clear();
    const uint32_t missing_forward = appendSlots(*entry.path, entry.class_id);
    const uint32_t missing_reverse =
        entry.reverse_path != nullptr ? appendSlots(*entry.reverse_path, entry.class_id) : kNone;
    QOS_ASSERT(missing_forward == kNone && missing_reverse == kNone,
               "a live grant's class exists on every class-enabled network of its paths");
    (void)missing_forward;
    (void)missing_reverse;
    for (const uint32_t s : scratch) {
      ++slots[s].pending;
    }
    const uint64_t rate_bps = entry.grant.profile.rate_bps;
    for (const uint32_t s : scratch) {
      Slot& slot = slots[s];
      if (slot.pending != 0) {
        const uint64_t held_bps = rate_bps * slot.pending;
        QOS_ASSERT(slot.reserved_bps >= held_bps && slot.flows > 0,
                   "a slot holds at least what its live grants reserved");
        slot.reserved_bps -= held_bps;
        --slot.flows;
        slot.pending = 0;
      }
    }
  }

  /** DSCP the first class-enabled network on @p path uses for the class; 0 if none. */
  uint8_t dscpOn(const std::vector<NetworkIndex>& path, uint32_t class_id) const {
    for (const NetworkIndex n : path) {
      const NetworkInfo& net = networks[n];
      if (net.class_enabled) {
        const uint32_t slot =
            class_id < net.slot_by_class.size() ? net.slot_by_class[class_id] : kNone;
        return slot == kNone ? 0 : slots[slot].dscp;
      }
    }
    return 0;
  }

  void pushExpiry(uint64_t expires_at_ms, uint64_t flow_id) {
    expiry_heap.push_back({expires_at_ms, flow_id});
    std::push_heap(expiry_heap.begin(), expiry_heap.end(), laterExpiry);
    if (expiry_heap.size() > 2 * grants.size() + kHeapSlackEntries) {
      expiry_heap.clear();
      for (const auto& [id, entry] : grants) {
        expiry_heap.push_back({entry.grant.expires_at_ms, id});
      }
      std::make_heap(expiry_heap.begin(), expiry_heap.end(), laterExpiry);
    }
  }

  /** Installs a grant whose slots were just committed; returns the stored copy. */
  const Grant& install(Grant grant, const std::vector<NetworkIndex>* path,
                       const std::vector<NetworkIndex>* reverse_path, uint32_t class_id) {
    const uint64_t flow_id = grant.flow_id;
    if (hasClientKey(grant.client_id, grant.request_id)) {
      by_client_key.emplace(makeClientKey(grant.client_id, grant.request_id), flow_id);
    }
    auto [it, inserted] =
        grants.emplace(flow_id, Entry{std::move(grant), path, reverse_path, class_id});
    QOS_ASSERT(inserted, "flow ids are never reused");
    (void)inserted;
    pushExpiry(it->second.grant.expires_at_ms, flow_id);
    return it->second.grant;
  }

  /** Removes a live grant entirely: bandwidth, idempotency key, entry. */
  Grant remove(std::unordered_map<uint64_t, Entry>::iterator it) {
    unreserve(it->second);
    Grant grant = std::move(it->second.grant);
    grants.erase(it);
    if (hasClientKey(grant.client_id, grant.request_id)) {
      // Heterogeneous erase() is C++23; find() by view is C++20.
      const auto key_it = by_client_key.find(makeClientKeyView(grant.client_id, grant.request_id));
      if (key_it != by_client_key.end()) {
        by_client_key.erase(key_it);
      }
    }
    return grant;
  }
};

namespace {

std::vector<std::string> pathNames(const ManagerConfig& config,
                                   const std::vector<NetworkIndex>& path) {
  std::vector<std::string> names;
  names.reserve(path.size());
  for (const NetworkIndex n : path) {
    names.push_back(config.networks[n].name);
  }
  return names;
}

MeterParams meterFor(const Profile& profile) {
  MeterParams meter;
  meter.cir_bps = profile.rate_bps;
  meter.cbs_bytes = profile.burst_bytes;
  meter.ebs_bytes = profile.burst_bytes;
  return meter;
}

const Profile& profileAt(const ApplicationConfig& app, size_t index) {
  return index == 0 ? app.default_profile : app.alternates[index - 1];
}

bool matches(const AppMatch& match, const FlowSpec& flow) {
  return (match.protocol == 0 || match.protocol == flow.protocol) &&
         match.src_ports.contains(flow.src_port) && match.dst_ports.contains(flow.dst_port);
}

Denial deny(DenyReason reason, std::string message) { return Denial{reason, std::move(message)}; }

}  // namespace

AdmissionEngine::AdmissionEngine(const ManagerConfig& config, const Topology& topology)
    : config_(&config), topology_(&topology), state_(std::make_unique<State>()) {
  State& st = *state_;
  // Intern every class name first, so every per-owner vector has its final size.
  for (const NetworkConfig& net : config.networks) {
    for (const auto& [name, spec] : net.classes) {
      st.internClass(name);
    }
  }
  for (const SlaConfig& sla : config.slas) {
    for (const auto& [name, rate] : sla.class_rate_bps) {
      st.internClass(name);
    }
  }
  for (const ApplicationConfig& app : config.applications) {
    st.internClass(app.default_profile.class_name);
    for (const Profile& alt : app.alternates) {
      st.internClass(alt.class_name);
    }
  }
  const size_t n_classes = st.class_names.size();

  std::unordered_map<std::string, uint32_t> network_by_name;
  st.networks.resize(config.networks.size());
  for (uint32_t n = 0; n < config.networks.size(); ++n) {
    const NetworkConfig& net = config.networks[n];
    network_by_name.emplace(net.name, n);
    NetworkInfo& info = st.networks[n];
    info.class_enabled = net.class_enabled;
    info.slot_by_class.assign(n_classes, kNone);
    if (!net.class_enabled) {
      continue;
    }
    for (const auto& [name, spec] : net.classes) {
      Slot slot;
      slot.owner = n;
      slot.class_id = st.classIdOf(name);
      slot.dscp = spec.dscp;
      slot.capacity_bps = spec.capacity_bps;
      st.addSlot(info.slot_by_class, slot);
    }
  }
  st.slas.resize(config.slas.size());
  for (uint32_t s = 0; s < config.slas.size(); ++s) {
    const SlaConfig& sla = config.slas[s];
    SlaInfo& info = st.slas[s];
    info.slot_by_class.assign(n_classes, kNone);
    for (const auto& [name, rate_bps] : sla.class_rate_bps) {
      Slot slot;
      slot.is_sla = true;
      slot.owner = s;
      slot.class_id = st.classIdOf(name);
      slot.capacity_bps = rate_bps;
      st.addSlot(info.slot_by_class, slot);
    }
    // An SLA over a network the config does not know can never be on a path;
    // validation rejects it, and here it simply never binds.
    const auto it = network_by_name.find(sla.network);
    if (it != network_by_name.end()) {
      st.networks[it->second].slas.push_back(s);
    }
  }

  st.apps.resize(config.applications.size());
  for (uint32_t a = 0; a < config.applications.size(); ++a) {
    const ApplicationConfig& app = config.applications[a];
    st.app_by_name.emplace(app.name, a);
    AppInfo& info = st.apps[a];
    info.profile_class.push_back(st.classIdOf(app.default_profile.class_name));
    for (const Profile& alt : app.alternates) {
      info.profile_class.push_back(st.classIdOf(alt.class_name));
    }
  }
  st.scratch.reserve(64);
  st.refusals.reserve(8);
  // A hash table that outgrows its buckets rehashes every entry at once,
  // and the request loop waits: about 60 ms for the two tables past 100k
  // flows (measured: the worst latency of a benchmark run crossing it).
  // Room for kPresizedFlows up front (about 8 MB) keeps that off the
  // request path for a deployment of that size; a larger one pays it at
  // each doubling past it.
  st.grants.reserve(kPresizedFlows);
  st.by_client_key.reserve(kPresizedFlows);
  st.expiry_heap.reserve(kPresizedFlows);
}

AdmissionEngine::~AdmissionEngine() = default;

Admission AdmissionEngine::admit(const AdmissionRequest& request, uint64_t now_ms) {
  const std::lock_guard<std::mutex> lock(mutex_);
  State& st = *state_;
  if (hasClientKey(request.client_id, request.request_id)) {
    const auto it = st.by_client_key.find(makeClientKeyView(request.client_id, request.request_id));
    if (it != st.by_client_key.end()) {
      return Admission{st.grants.at(it->second).grant, /*retried=*/true};
    }
  }
  return Admission{admitNew(request, now_ms), /*retried=*/false};
}

AdmissionResult AdmissionEngine::admitNew(const AdmissionRequest& request, uint64_t now_ms) {
  State& st = *state_;

  const FlowSpec& flow = request.flow;
  if ((flow.src.family != 4 && flow.src.family != 6) || flow.src.family != flow.dst.family) {
    return deny(DenyReason::BadRequest, "source " + formatIpAddress(flow.src) +
                                            " and destination " + formatIpAddress(flow.dst) +
                                            " must both be IPv4 or both IPv6");
  }
  const uint32_t lease_sec = request.lease_sec == 0 ? config_->lease_sec : request.lease_sec;
  if (lease_sec > config_->max_lease_sec) {
    return deny(DenyReason::BadRequest, "lease of " + std::to_string(lease_sec) +
                                            " s is over the maximum of " +
                                            std::to_string(config_->max_lease_sec) + " s");
  }

  uint32_t app_index = kNone;
  if (!request.application.empty()) {
    const auto it = st.app_by_name.find(request.application);
    if (it == st.app_by_name.end()) {
      return deny(DenyReason::UnknownApplication,
                  "unknown application '" + request.application + "'");
    }
    app_index = it->second;
  } else {
    for (uint32_t a = 0; a < config_->applications.size(); ++a) {
      const std::optional<AppMatch>& match = config_->applications[a].match;
      if (match && matches(*match, flow)) {
        app_index = a;
        break;
      }
    }
    if (app_index == kNone) {
      return deny(DenyReason::UnknownApplication,
                  "no application matches " + protocolName(flow.protocol) + " from port " +
                      std::to_string(flow.src_port) + " to port " + std::to_string(flow.dst_port));
    }
  }
  const ApplicationConfig& app = config_->applications[app_index];

  const std::optional<NetworkIndex> src_net = topology_->networkOf(flow.src);
  if (!src_net) {
    return deny(DenyReason::NoSourceNetwork,
                "no network holds the source address " + formatIpAddress(flow.src));
  }
  const std::optional<NetworkIndex> dst_net = topology_->networkOf(flow.dst);
  if (!dst_net) {
    return deny(DenyReason::NoDestinationNetwork,
                "no network holds the destination address " + formatIpAddress(flow.dst));
  }
  const std::vector<NetworkIndex>& path = topology_->path(*src_net, *dst_net);
  const std::vector<NetworkIndex>* reverse_path =
      request.bidirectional ? &topology_->path(*dst_net, *src_net) : nullptr;
  if (path.empty() || (reverse_path != nullptr && reverse_path->empty())) {
    return deny(DenyReason::NoPath, "no chain of links joins " + config_->networks[*src_net].name +
                                        " and " + config_->networks[*dst_net].name);
  }

  const std::vector<uint32_t>& profile_class = st.apps[app_index].profile_class;
  st.refusals.clear();
  for (size_t i = 0; i < profile_class.size(); ++i) {
    const Profile& profile = profileAt(app, i);
    const Refusal refusal = st.check(path, reverse_path, profile_class[i], profile.rate_bps);
    if (refusal.kind != Refusal::Kind::Fits) {
      st.refusals.push_back(refusal);
      continue;
    }
    st.commit(profile.rate_bps);
    Grant grant;
    grant.flow_id = st.next_flow_id++;
    grant.application = app.name;
    grant.profile_index = static_cast<uint32_t>(i);
    grant.profile = profile;
    grant.flow = flow;
    grant.bidirectional = request.bidirectional;
    grant.dscp = st.dscpOn(path, profile_class[i]);
    grant.path = pathNames(*config_, path);
    if (reverse_path != nullptr) {
      grant.reverse_dscp = st.dscpOn(*reverse_path, profile_class[i]);
      grant.reverse_path = pathNames(*config_, *reverse_path);
    }
    grant.meter = meterFor(profile);
    grant.expires_at_ms = now_ms + uint64_t{lease_sec} * kMsPerSec;
    grant.client_id = request.client_id;
    grant.request_id = request.request_id;
    return st.install(std::move(grant), &path, reverse_path, profile_class[i]);
  }

  // Every profile failed: say why for each, in the order they were tried.
  bool any_available = false;
  std::string details;
  for (size_t i = 0; i < st.refusals.size(); ++i) {
    const Refusal& refusal = st.refusals[i];
    const Profile& profile = profileAt(app, i);
    if (!details.empty()) {
      details += "; ";
    }
    details += profile.class_name + " " + formatRate(profile.rate_bps);
    const std::string direction = refusal.reverse ? " (reverse path)" : "";
    if (refusal.kind == Refusal::Kind::Unavailable) {
      details += ": no class " + profile.class_name + " on " +
                 config_->networks[refusal.network].name + direction;
      continue;
    }
    any_available = true;
    const Slot& slot = st.slots[refusal.slot];
    details += slot.is_sla ? " on SLA " + config_->slas[slot.owner].name
                           : " on " + config_->networks[slot.owner].name;
    details += direction + " (" + formatRate(slot.reserved_bps) + " of " +
               formatRate(*slot.capacity_bps) + " reserved";
    if (refusal.crossings > 1) {
      details += ", crossed " + std::to_string(refusal.crossings) + " times by the flow";
    }
    details += ")";
  }
  if (!any_available) {
    return deny(DenyReason::ClassUnavailable, "class unavailable: " + details);
  }
  return deny(DenyReason::NoCapacity, "no capacity: " + details);
}

std::optional<Grant> AdmissionEngine::release(uint64_t flow_id) {
  const std::lock_guard<std::mutex> lock(mutex_);
  State& st = *state_;
  const auto it = st.grants.find(flow_id);
  if (it == st.grants.end()) {
    return std::nullopt;
  }
  return st.remove(it);
}

std::optional<uint64_t> AdmissionEngine::refresh(uint64_t flow_id, uint32_t lease_sec,
                                                 uint64_t now_ms) {
  const std::lock_guard<std::mutex> lock(mutex_);
  State& st = *state_;
  const auto it = st.grants.find(flow_id);
  if (it == st.grants.end()) {
    return std::nullopt;
  }
  const uint32_t effective_sec =
      std::min(lease_sec == 0 ? config_->lease_sec : lease_sec, config_->max_lease_sec);
  const uint64_t expires_at_ms = now_ms + uint64_t{effective_sec} * kMsPerSec;
  Grant& grant = it->second.grant;
  if (grant.expires_at_ms != expires_at_ms) {
    grant.expires_at_ms = expires_at_ms;
    st.pushExpiry(expires_at_ms, flow_id);
  }
  return expires_at_ms;
}

std::vector<Grant> AdmissionEngine::expire(uint64_t now_ms) {
  const std::lock_guard<std::mutex> lock(mutex_);
  State& st = *state_;
  std::vector<Grant> expired;
  while (!st.expiry_heap.empty() && st.expiry_heap.front().expires_at_ms <= now_ms) {
    std::pop_heap(st.expiry_heap.begin(), st.expiry_heap.end(), laterExpiry);
    const ExpiryItem item = st.expiry_heap.back();
    st.expiry_heap.pop_back();
    const auto it = st.grants.find(item.flow_id);
    // Stale items (released, or refreshed to another expiry) are skipped.
    if (it != st.grants.end() && it->second.grant.expires_at_ms == item.expires_at_ms) {
      expired.push_back(st.remove(it));
    }
  }
  return expired;
}

Result<void> AdmissionEngine::restore(const Grant& grant) {
  const std::lock_guard<std::mutex> lock(mutex_);
  State& st = *state_;
  const std::string what = "flow " + std::to_string(grant.flow_id);
  if (grant.flow_id == 0) {
    return makeError(what + ": flow id 0 is never granted");
  }
  if (st.grants.count(grant.flow_id) != 0) {
    return makeError(what + ": already installed");
  }
  if (hasClientKey(grant.client_id, grant.request_id) &&
      st.by_client_key.find(makeClientKeyView(grant.client_id, grant.request_id)) !=
          st.by_client_key.end()) {
    return makeError(what + ": client '" + grant.client_id + "' request '" + grant.request_id +
                     "' already belongs to another flow");
  }
  const FlowSpec& flow = grant.flow;
  if ((flow.src.family != 4 && flow.src.family != 6) || flow.src.family != flow.dst.family) {
    return makeError(what + ": source and destination must both be IPv4 or both IPv6");
  }
  const std::optional<NetworkIndex> src_net = topology_->networkOf(flow.src);
  const std::optional<NetworkIndex> dst_net = topology_->networkOf(flow.dst);
  if (!src_net || !dst_net) {
    return makeError(what + ": no network holds " +
                     formatIpAddress(!src_net ? flow.src : flow.dst));
  }
  const std::vector<NetworkIndex>& path = topology_->path(*src_net, *dst_net);
  const std::vector<NetworkIndex>* reverse_path =
      grant.bidirectional ? &topology_->path(*dst_net, *src_net) : nullptr;
  if (path.empty() || (reverse_path != nullptr && reverse_path->empty())) {
    return makeError(what + ": no chain of links joins " + config_->networks[*src_net].name +
                     " and " + config_->networks[*dst_net].name);
  }
  const uint32_t class_id = st.classIdOf(grant.profile.class_name);
  const Refusal refusal = st.check(path, reverse_path, class_id, grant.profile.rate_bps);
  if (refusal.kind == Refusal::Kind::Unavailable) {
    return makeError(what + ": no class " + grant.profile.class_name + " on " +
                     config_->networks[refusal.network].name);
  }
  if (refusal.kind == Refusal::Kind::Full) {
    const Slot& slot = st.slots[refusal.slot];
    const std::string owner =
        slot.is_sla ? "SLA " + config_->slas[slot.owner].name : config_->networks[slot.owner].name;
    return makeError(what + ": no capacity for " + grant.profile.class_name + " " +
                     formatRate(grant.profile.rate_bps) + " on " + owner + " (" +
                     formatRate(slot.reserved_bps) + " of " + formatRate(*slot.capacity_bps) +
                     " reserved)");
  }
  st.commit(grant.profile.rate_bps);
  Grant restored = grant;
  restored.dscp = st.dscpOn(path, class_id);
  restored.path = pathNames(*config_, path);
  if (reverse_path != nullptr) {
    restored.reverse_dscp = st.dscpOn(*reverse_path, class_id);
    restored.reverse_path = pathNames(*config_, *reverse_path);
  } else {
    restored.reverse_dscp.reset();
    restored.reverse_path.clear();
  }
  restored.meter = meterFor(restored.profile);
  st.next_flow_id = std::max(st.next_flow_id, grant.flow_id + 1);
  st.install(std::move(restored), &path, reverse_path, class_id);
  return {};
}

Result<void> AdmissionEngine::reconfigure(const ManagerConfig& config, const Topology& topology) {
  const std::lock_guard<std::mutex> lock(mutex_);
  AdmissionEngine fresh(config, topology);
  // In flow id order, so the flow an error names does not depend on hashing.
  std::vector<uint64_t> ids;
  ids.reserve(state_->grants.size());
  for (const auto& [id, entry] : state_->grants) {
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  for (const uint64_t id : ids) {
    const Grant& old = state_->grants.at(id).grant;
    if (Result<void> r = fresh.restore(old); !r) {
      return makeError(r.error().message + "; release it first, or keep room for it");
    }
    const Grant now = *fresh.flow(id);
    const auto joined = [](const std::vector<std::string>& names) {
      std::string text;
      for (const std::string& name : names) {
        text += (text.empty() ? "" : ",") + name;
      }
      return text;
    };
    std::string change;
    if (now.dscp != old.dscp || now.reverse_dscp != old.reverse_dscp) {
      change = "its DSCP would change from " + std::to_string(old.dscp) + " to " +
               std::to_string(now.dscp);
    } else if (now.path != old.path || now.reverse_path != old.reverse_path) {
      change = "its path would change from " + joined(old.path) + " to " + joined(now.path);
    }
    if (!change.empty()) {
      return makeError("flow " + std::to_string(id) + ": " + change +
                       ", and its hosts and appliances enforce the old one; release it first");
    }
  }
  fresh.state_->next_flow_id = std::max(fresh.state_->next_flow_id, state_->next_flow_id);
  state_.swap(fresh.state_);
  config_ = &config;
  topology_ = &topology;
  return {};
}

std::vector<Grant> AdmissionEngine::flows() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Grant> out;
  out.reserve(state_->grants.size());
  for (const auto& [id, entry] : state_->grants) {
    out.push_back(entry.grant);
  }
  std::sort(out.begin(), out.end(),
            [](const Grant& a, const Grant& b) { return a.flow_id < b.flow_id; });
  return out;
}

std::optional<Grant> AdmissionEngine::flow(uint64_t flow_id) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto it = state_->grants.find(flow_id);
  if (it == state_->grants.end()) {
    return std::nullopt;
  }
  return it->second.grant;
}

std::vector<ClassUsage> AdmissionEngine::usage() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  const State& st = *state_;
  std::vector<ClassUsage> out;
  out.reserve(st.slots.size());
  for (const Slot& slot : st.slots) {
    ClassUsage u;
    if (slot.is_sla) {
      u.kind = UsageKind::Sla;
      u.owner = config_->slas[slot.owner].name;
      u.network = config_->slas[slot.owner].network;
    } else {
      u.kind = UsageKind::Network;
      u.owner = config_->networks[slot.owner].name;
      u.network = u.owner;
      u.dscp = slot.dscp;
    }
    u.class_name = st.class_names[slot.class_id];
    u.capacity_bps = slot.capacity_bps;
    u.reserved_bps = slot.reserved_bps;
    if (slot.capacity_bps) {
      u.available_bps =
          *slot.capacity_bps > slot.reserved_bps ? *slot.capacity_bps - slot.reserved_bps : 0;
    }
    u.flows = slot.flows;
    out.push_back(std::move(u));
  }
  return out;
}

size_t AdmissionEngine::flowCount() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return state_->grants.size();
}

uint64_t AdmissionEngine::nextFlowId() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return state_->next_flow_id;
}

void AdmissionEngine::reserveFlowIds(uint64_t next_flow_id) {
  const std::lock_guard<std::mutex> lock(mutex_);
  state_->next_flow_id = std::max(state_->next_flow_id, next_flow_id);
}

}  // namespace qos::manager
