#include "control/agent/enforce/host_enforcer.h"

#include <algorithm>
#include <utility>

#include "control/common/log.h"
#include "control/common/units.h"

namespace qos::agent {
namespace {

/** A grant's class queue: 100 ms at its rate, never less than its burst or two full frames. */
uint64_t queueBytesOf(uint64_t rate_bps, uint64_t burst_bytes) {
  constexpr uint64_t kTwoFrames = uint64_t{2} * 1514;
  return std::max({rate_bps / 8 / 10, burst_bytes, kTwoFrames});
}

std::string qdiscText(const RootQdisc& q) { return q.kind + " " + tcHandleText(q.handle); }

}  // namespace

Result<std::unique_ptr<HostEnforcer>> HostEnforcer::start(const EnforceConfig& config,
                                                          std::unique_ptr<HostKernel> kernel) {
  std::unique_ptr<HostEnforcer> e(new HostEnforcer(std::move(kernel)));
  HostKernel& k = *e->kernel_;
  // What an earlier run left: its table, and its tree on the interface.
  if (Result<void> r = k.runNft(nftDeleteTable()); !r) {
    return makeError(
        ErrorCode::Unavailable,
        "[enforce] mode = \"nftables\", but nftables is not usable here: " + r.error().message);
  }
  std::string ifname = config.interface;
  std::string no_shaping;  // why not, when it does not shape
  if (ifname.empty()) {
    Result<std::string> found = k.defaultRouteInterface();
    if (found) {
      ifname = *found;
    } else {
      no_shaping = found.error().message + " (set [enforce] interface)";
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
  if (Result<void> r = k.runNft(nftCreateTable()); !r) {
    return makeError(ErrorCode::Unavailable,
                     "cannot create the nftables table inet " + std::string(kNftTable) +
                         " (interval maps need Linux 5.6 or later): " + r.error().message);
  }

  const bool wants_shaping = config.limit == LimitMode::Auto || config.limit == LimitMode::Shape;
  if (wants_shaping && root) {
    if (root->handle != 0) {
      no_shaping = ifname + "'s root qdisc (" + qdiscText(*root) +
                   ") is someone else's, and the agent leaves it alone";
    } else if (Result<void> r = k.addHtbRoot(ifname, kHtbRoot); !r) {
      no_shaping = r.error().message;
    } else {
      e->shaping_ = true;
      e->interface_ = ifname;
    }
  }
  if (config.limit == LimitMode::Shape && !e->shaping_) {
    static_cast<void>(k.runNft(nftDeleteTable()));
    return makeError(ErrorCode::Unavailable,
                     "[enforce] limit = \"shape\", but this host cannot shape: " + no_shaping);
  }
  e->policing_ = config.limit == LimitMode::Police || (wants_shaping && !e->shaping_);
  e->summary_ =
      std::string("nftables on output (table inet ") + kNftTable + "): mark" +
      (e->policing_ ? " and police" : "") +
      (e->shaping_ ? " and shape on " + ifname + " (htb " + tcHandleText(kHtbRoot) + ")" : "") +
      (wants_shaping && !e->shaping_ ? "; no shaping: " + no_shaping : "");
  return e;
}

HostEnforcer::~HostEnforcer() {
  if (Result<void> r = kernel_->runNft(nftDeleteTable()); !r) {
    log::warning("enforce: could not delete table inet " + std::string(kNftTable) + ": " +
                 r.error().message);
  }
  if (shaping_) {
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
  f.police = policing_;
  if (shaping_) {
    const uint32_t handle = freeClass();
    if (handle == 0) {
      return makeError(ErrorCode::Unavailable, "every HTB class of " + interface_ + " is in use");
    }
    if (Result<void> r = kernel_->addHtbClass(interface_, handle, f.rate_bps, f.burst_bytes,
                                              queueBytesOf(f.rate_bps, f.burst_bytes));
        !r) {
      return r;
    }
    f.tc_class = handle;
  }
  if (Result<void> r = kernel_->runNft(nftAddFlow(f)); !r) {
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
  if (Result<void> r = kernel_->runNft(nftRemoveFlow(f)); !r) {
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
