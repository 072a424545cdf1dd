#include "control/agent/enforce/host_enforcer.h"

#include <algorithm>
#include <utility>

#include "control/common/log.h"
#include "control/common/units.h"

namespace qos::agent {
namespace {

constexpr uint64_t kTwoFrames = uint64_t{2} * 1514;

/** A shaped grant's class queue: 100 ms at its rate, never less than its burst or two frames. */
uint64_t shapingQueueBytes(uint64_t rate_bps, uint64_t burst_bytes) {
  return std::max({rate_bps / 8 / 10, burst_bytes, kTwoFrames});
}

std::string qdiscText(const RootQdisc& q) { return q.kind + " " + tcHandleText(q.handle); }

}  // namespace

Result<std::unique_ptr<HostEnforcer>> HostEnforcer::start(const EnforceConfig& config,
                                                          std::unique_ptr<HostKernel> kernel) {
  std::unique_ptr<HostEnforcer> e(new HostEnforcer(std::move(kernel)));
  HostKernel& k = *e->kernel_;
  // What an earlier run left: its table, and its tree on the interface.
  if (Result<void> r = k.runNft(nftDeleteTables()); !r) {
    return makeError(
        ErrorCode::Unavailable,
        "[enforce] mode = \"nftables\", but nftables is not usable here: " + r.error().message);
  }
  std::string ifname = config.interface;
  std::string no_limit;  // why the rate is not held to, when it is not
  if (ifname.empty()) {
    Result<std::string> found = k.defaultRouteInterface();
    if (found) {
      ifname = *found;
    } else {
      no_limit = found.error().message + " (set [enforce] interface)";
    }
  }
  std::optional<RootQdisc> root;
  if (!ifname.empty()) {
    Result<RootQdisc> r = k.rootQdisc(ifname);
    if (!r) {
      return makeError(r.error().code, "[enforce] interface: " + r.error().message);
    }
    root = *r;
    if (root->handle == kHtbRoot) {
      if (Result<void> d = k.deleteRoot(ifname, kHtbRoot); !d) {
        return d.error();
      }
      log::info("enforce: deleted the HTB tree an earlier run left on " + ifname);
      root = RootQdisc{"noqueue", 0};
    }
  }

  // The HTB tree, when the rate is to be held to and the interface's root
  // qdisc is the kernel's default.
  const bool wants_limit = config.limit != LimitMode::None;
  std::string no_tree;
  if (wants_limit && root) {
    if (root->handle != 0) {
      no_tree = ifname + "'s root qdisc (" + qdiscText(*root) +
                ") is someone else's, and the agent leaves it alone";
    } else if (Result<void> r = k.addHtbRoot(ifname, kHtbRoot); !r) {
      no_tree = r.error().message;
    } else {
      e->tree_ = true;
      e->interface_ = ifname;
    }
  } else if (wants_limit) {
    no_tree = no_limit;
  }
  const auto fail = [&](Error error) -> Result<std::unique_ptr<HostEnforcer>> {
    static_cast<void>(k.runNft(nftDeleteTables()));
    if (e->tree_) {
      static_cast<void>(k.deleteRoot(ifname, kHtbRoot));
      e->tree_ = false;
    }
    return error;
  };
  if (config.limit == LimitMode::Shape && !e->tree_) {
    return fail(makeError(ErrorCode::Unavailable,
                          "[enforce] limit = \"shape\", but this host cannot shape: " + no_tree));
  }
  if (e->tree_) {
    e->queue_police_ = config.limit == LimitMode::Police;
  } else if (wants_limit && !ifname.empty()) {
    // No tree: police with nftables at the device's egress, where a drop is
    // a full queue to the sender, not an error.
    e->place_.egress_device = ifname;
    e->nft_police_ = true;
  }
  if (Result<void> r = k.runNft(nftCreateTable(e->place_)); !r) {
    if (!e->nft_police_) {
      return fail(makeError(ErrorCode::Unavailable, "cannot create the nftables table inet " +
                                                        std::string(kNftTable) + ": " +
                                                        r.error().message));
    }
    // No egress hook (Linux 5.16): mark at the output hook, and say so.
    no_tree += "; and no nftables egress hook on " + ifname + " (Linux 5.16): " + r.error().message;
    e->place_ = NftPlace{};
    e->nft_police_ = false;
    if (Result<void> again = k.runNft(nftCreateTable(e->place_)); !again) {
      return fail(makeError(ErrorCode::Unavailable, "cannot create the nftables table inet " +
                                                        std::string(kNftTable) + ": " +
                                                        again.error().message));
    }
  }

  std::string& sum = e->summary_;
  sum = e->place_.egress_device.empty()
            ? std::string("nftables on output (table inet ") + kNftTable + "): mark"
            : "nftables on " + ifname + "'s egress (table netdev " + kNftTable + "): mark";
  if (e->tree_) {
    sum += e->queue_police_ ? "; police with HTB on " + ifname + " (" + tcHandleText(kHtbRoot) +
                                  "): a class per grant, its rate and burst, 2 frames queued"
                            : "; shape with HTB on " + ifname + " (" + tcHandleText(kHtbRoot) +
                                  "): a class per grant, its rate and burst, 100 ms queued";
  } else if (e->nft_police_) {
    sum +=
        " and police (nftables limit: its bucket holds the burst and one second of the "
        "rate); no HTB: " +
        no_tree;
  } else if (wants_limit) {
    sum += " only; no policing or shaping: " + no_tree;
  }
  return e;
}

HostEnforcer::~HostEnforcer() {
  if (Result<void> r = kernel_->runNft(nftDeleteTables()); !r) {
    log::warning("enforce: could not delete table " + std::string(kNftTable) + ": " +
                 r.error().message);
  }
  if (tree_) {
    if (Result<void> r = kernel_->deleteRoot(interface_, kHtbRoot); !r) {
      log::warning("enforce: " + r.error().message);
    }
  }
}

uint32_t HostEnforcer::freeClass() const {
  for (uint32_t minor = 1; minor < 0xFFFF; ++minor) {
    if (!classes_.contains(kHtbRoot | minor)) {
      return kHtbRoot | minor;
    }
  }
  return 0;
}

Result<void> HostEnforcer::apply(const control::Grant& grant) {
  if (active_.contains(grant.flow_id)) {
    return {};
  }
  EnforcedFlow f;
  f.flow_id = grant.flow_id;
  f.flow = grant.flow;
  f.dscp = grant.dscp;
  f.rate_bps = grant.profile.rate_bps;
  f.burst_bytes = grant.profile.burst_bytes;
  f.police = nft_police_;
  if (tree_) {
    const uint32_t handle = freeClass();
    if (handle == 0) {
      return makeError(ErrorCode::Unavailable, "every HTB class of " + interface_ + " is in use");
    }
    const uint64_t queue =
        queue_police_ ? kTwoFrames : shapingQueueBytes(f.rate_bps, f.burst_bytes);
    if (Result<void> r = kernel_->addHtbClass(interface_, handle, f.rate_bps, f.burst_bytes, queue);
        !r) {
      return r;
    }
    f.tc_class = handle;
  }
  if (Result<void> r = kernel_->runNft(nftAddFlow(place_, f)); !r) {
    if (f.tc_class) {
      static_cast<void>(kernel_->deleteClass(interface_, *f.tc_class));
    }
    const bool overlaps = r.error().message.find("File exists") != std::string::npos;
    return makeError(ErrorCode::Unavailable,
                     overlaps ? "another grant this host enforces covers part of " +
                                    nftFlowKey(f.flow) + ": one flow, one grant"
                              : r.error().message);
  }
  if (f.tc_class) {
    classes_[*f.tc_class] = f.flow_id;
  }
  active_[f.flow_id] = f;
  return {};
}

void HostEnforcer::remove(uint64_t flow_id) {
  auto it = active_.find(flow_id);
  if (it == active_.end()) {
    return;
  }
  const EnforcedFlow& f = it->second;
  if (Result<void> r = kernel_->runNft(nftRemoveFlow(place_, f)); !r) {
    log::warning("enforce: flow " + std::to_string(flow_id) + ": " + r.error().message);
  }
  if (f.tc_class) {
    if (Result<void> r = kernel_->deleteClass(interface_, *f.tc_class); !r) {
      log::warning("enforce: flow " + std::to_string(flow_id) + ": " + r.error().message);
    }
    classes_.erase(*f.tc_class);
  }
  active_.erase(it);
}

}  // namespace qos::agent
