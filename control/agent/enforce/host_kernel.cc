#include "control/agent/enforce/host_kernel.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/class.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/fifo.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/route.h>
#include <netlink/route/tc.h>
#include <nftables/libnftables.h>

#include "control/agent/enforce/nft_rules.h"

namespace qos::agent {
namespace {

std::string nlError(int err) { return nl_geterror(err); }

/** A libnl object released when it goes out of scope. */
template <typename T, void (*Put)(T*)>
struct NlPtr {
  T* p = nullptr;
  NlPtr() = default;
  explicit NlPtr(T* object) : p(object) {}
  NlPtr(const NlPtr&) = delete;
  NlPtr& operator=(const NlPtr&) = delete;
  ~NlPtr() {
    if (p != nullptr) {
      Put(p);
    }
  }
};

using QdiscPtr = NlPtr<rtnl_qdisc, rtnl_qdisc_put>;

/** Where a qdisc or class is: its interface, its parent, its own handle (0: the kernel's pick). */
void placeTc(rtnl_tc* tc, int ifindex, uint32_t parent, uint32_t handle) {
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, parent);
  if (handle != 0) {
    rtnl_tc_set_handle(tc, handle);
  }
}
using ClassPtr = NlPtr<rtnl_class, rtnl_class_put>;
using CachePtr = NlPtr<nl_cache, nl_cache_free>;

class RealHostKernel final : public HostKernel {
public:
  RealHostKernel(nft_ctx* nft, nl_sock* sock) : nft_(nft), sock_(sock) {}
  ~RealHostKernel() override {
    nft_ctx_free(nft_);
    nl_socket_free(sock_);
  }
  RealHostKernel(const RealHostKernel&) = delete;
  RealHostKernel& operator=(const RealHostKernel&) = delete;

  Result<void> runNft(const std::string& commands) override {
    if (nft_run_cmd_from_buffer(nft_, commands.c_str()) != 0) {
      std::string why = nft_ctx_get_error_buffer(nft_);
      while (!why.empty() && why.back() == '\n') {
        why.pop_back();
      }
      return makeError(ErrorCode::Unavailable, "nftables: " + why);
    }
    return {};
  }

  Result<std::string> defaultRouteInterface() override {
    nl_cache* raw = nullptr;
    if (int err = rtnl_route_alloc_cache(sock_, AF_UNSPEC, 0, &raw); err < 0) {
      return makeError(ErrorCode::Unavailable, "cannot read the routes: " + nlError(err));
    }
    CachePtr routes(raw);
    int best_family = 0;
    int ifindex = 0;
    for (nl_object* o = nl_cache_get_first(routes.p); o != nullptr; o = nl_cache_get_next(o)) {
      auto* route = reinterpret_cast<rtnl_route*>(o);
      nl_addr* dst = rtnl_route_get_dst(route);
      if (rtnl_route_get_table(route) != RT_TABLE_MAIN ||
          (dst != nullptr && nl_addr_get_prefixlen(dst) != 0) ||
          rtnl_route_get_nnexthops(route) == 0) {
        continue;
      }
      const int family = rtnl_route_get_family(route);
      if (best_family == AF_INET || (best_family == AF_INET6 && family != AF_INET)) {
        continue;  // IPv4's default route first
      }
      best_family = family;
      ifindex = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(route, 0));
    }
    char name[IF_NAMESIZE] = {};
    if (ifindex == 0 || if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) {
      return makeError(ErrorCode::NotFound, "this host has no default route");
    }
    return std::string(name);
  }

  Result<RootQdisc> rootQdisc(const std::string& ifname) override {
    Result<int> ifindex = indexOf(ifname);
    if (!ifindex) {
      return ifindex.error();
    }
    nl_cache* raw = nullptr;
    if (int err = rtnl_qdisc_alloc_cache(sock_, &raw); err < 0) {
      return makeError(ErrorCode::Unavailable, "cannot read the qdiscs: " + nlError(err));
    }
    CachePtr qdiscs(raw);
    for (nl_object* o = nl_cache_get_first(qdiscs.p); o != nullptr; o = nl_cache_get_next(o)) {
      auto* tc = TC_CAST(o);
      if (rtnl_tc_get_ifindex(tc) == *ifindex && rtnl_tc_get_parent(tc) == TC_H_ROOT) {
        const char* kind = rtnl_tc_get_kind(tc);
        return RootQdisc{kind != nullptr ? kind : "", rtnl_tc_get_handle(tc)};
      }
    }
    return RootQdisc{"noqueue", 0};
  }

  Result<void> addHtbRoot(const std::string& ifname, uint32_t handle) override {
    Result<int> ifindex = indexOf(ifname);
    if (!ifindex) {
      return ifindex.error();
    }
    QdiscPtr q(rtnl_qdisc_alloc());
    placeTc(TC_CAST(q.p), *ifindex, TC_H_ROOT, handle);
    if (int err = rtnl_tc_set_kind(TC_CAST(q.p), "htb"); err < 0) {
      return makeError(ErrorCode::Unavailable, "htb: " + nlError(err));
    }
    // Unclassified packets (no grant's class) go straight out, unshaped.
    rtnl_htb_set_defcls(q.p, 0);
    if (int err = rtnl_qdisc_add(sock_, q.p, NLM_F_CREATE | NLM_F_REPLACE); err < 0) {
      return makeError(ErrorCode::Unavailable,
                       "cannot make htb the root qdisc of " + ifname + ": " + nlError(err));
    }
    return {};
  }

  Result<void> deleteRoot(const std::string& ifname, uint32_t handle) override {
    Result<int> ifindex = indexOf(ifname);
    if (!ifindex) {
      return ifindex.error();
    }
    QdiscPtr q(rtnl_qdisc_alloc());
    placeTc(TC_CAST(q.p), *ifindex, TC_H_ROOT, handle);
    if (int err = rtnl_qdisc_delete(sock_, q.p); err < 0) {
      return makeError(ErrorCode::Unavailable,
                       "cannot delete the root qdisc of " + ifname + ": " + nlError(err));
    }
    return {};
  }

  Result<void> addHtbClass(const std::string& ifname, uint32_t handle, uint64_t rate_bps,
                           uint64_t burst_bytes, uint64_t queue_bytes) override {
    Result<int> ifindex = indexOf(ifname);
    if (!ifindex) {
      return ifindex.error();
    }
    ClassPtr c(rtnl_class_alloc());
    placeTc(TC_CAST(c.p), *ifindex, handle & 0xFFFF0000u, handle);
    if (int err = rtnl_tc_set_kind(TC_CAST(c.p), "htb"); err < 0) {
      return makeError(ErrorCode::Unavailable, "htb class: " + nlError(err));
    }
    const uint64_t bytes_per_sec = std::max<uint64_t>(rate_bps / 8, 1);
    const auto burst = static_cast<uint32_t>(std::min<uint64_t>(burst_bytes, UINT32_MAX));
    rtnl_htb_set_rate64(c.p, bytes_per_sec);
    rtnl_htb_set_ceil64(c.p, bytes_per_sec);
    rtnl_htb_set_rbuffer(c.p, burst);
    rtnl_htb_set_cbuffer(c.p, burst);
    if (int err = rtnl_class_add(sock_, c.p, NLM_F_CREATE | NLM_F_EXCL); err < 0) {
      return makeError(ErrorCode::Unavailable, "cannot add htb class " + tcHandleText(handle) +
                                                   " on " + ifname + ": " + nlError(err));
    }
    // Its queue: a byte FIFO, short enough not to hold packets for seconds.
    QdiscPtr leaf(rtnl_qdisc_alloc());
    placeTc(TC_CAST(leaf.p), *ifindex, handle, 0);
    int err = rtnl_tc_set_kind(TC_CAST(leaf.p), "bfifo");
    if (err >= 0) {
      err = rtnl_qdisc_fifo_set_limit(leaf.p,
                                      static_cast<int>(std::min<uint64_t>(queue_bytes, INT32_MAX)));
    }
    if (err >= 0) {
      err = rtnl_qdisc_add(sock_, leaf.p, NLM_F_CREATE);
    }
    if (err < 0) {
      static_cast<void>(rtnl_class_delete(sock_, c.p));
      return makeError(ErrorCode::Unavailable, "cannot give htb class " + tcHandleText(handle) +
                                                   " on " + ifname + " its queue: " + nlError(err));
    }
    return {};
  }

  Result<void> deleteClass(const std::string& ifname, uint32_t handle) override {
    Result<int> ifindex = indexOf(ifname);
    if (!ifindex) {
      return ifindex.error();
    }
    ClassPtr c(rtnl_class_alloc());
    placeTc(TC_CAST(c.p), *ifindex, handle & 0xFFFF0000u, handle);
    if (int err = rtnl_class_delete(sock_, c.p); err < 0) {
      return makeError(ErrorCode::Unavailable, "cannot delete htb class " + tcHandleText(handle) +
                                                   " on " + ifname + ": " + nlError(err));
    }
    return {};
  }

private:
  static Result<int> indexOf(const std::string& ifname) {
    const unsigned index = if_nametoindex(ifname.c_str());
    if (index == 0) {
      return makeError(ErrorCode::NotFound, "no interface " + ifname + " on this host");
    }
    return static_cast<int>(index);
  }

  nft_ctx* nft_;
  nl_sock* sock_;
};

}  // namespace

Result<std::unique_ptr<HostKernel>> openHostKernel() {
  nft_ctx* nft = nft_ctx_new(NFT_CTX_DEFAULT);
  if (nft == nullptr) {
    return makeError(ErrorCode::Unavailable, "cannot open libnftables");
  }
  nft_ctx_buffer_output(nft);
  nft_ctx_buffer_error(nft);
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) {
    nft_ctx_free(nft);
    return makeError(ErrorCode::Unavailable, "cannot allocate a netlink socket");
  }
  if (int err = nl_connect(sock, NETLINK_ROUTE); err < 0) {
    nft_ctx_free(nft);
    nl_socket_free(sock);
    return makeError(ErrorCode::Unavailable, "cannot open NETLINK_ROUTE: " + nlError(err));
  }
  return std::unique_ptr<HostKernel>(new RealHostKernel(nft, sock));
}

}  // namespace qos::agent
