// What host enforcement asks of the kernel, behind an interface so that
// tests run it on a fake: nftables command buffers (libnftables, each one
// transaction) and an HTB tree of the agent's own (netlink, libnl-route-3).
// No shell command is run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "control/common/result.h"

namespace qos::agent {

/** An interface's root qdisc. */
struct RootQdisc {
  std::string kind;     ///< "noqueue", "fq_codel", "htb", ...
  uint32_t handle = 0;  ///< 0: the kernel's default, nobody's
};

class HostKernel {
public:
  virtual ~HostKernel() = default;

  /** Runs nftables commands as one transaction; the error is nft's own text. */
  virtual Result<void> runNft(const std::string& commands) = 0;

  /** The interface the default route leaves by (IPv4, else IPv6). */
  virtual Result<std::string> defaultRouteInterface() = 0;
  /** @p ifname's root qdisc.  ErrorCode::NotFound: no such interface. */
  virtual Result<RootQdisc> rootQdisc(const std::string& ifname) = 0;
  /** Makes an HTB qdisc with @p handle (major:0) @p ifname's root, in place of the default. */
  virtual Result<void> addHtbRoot(const std::string& ifname, uint32_t handle) = 0;
  /** Deletes @p ifname's root qdisc, which has @p handle: the kernel's default comes back. */
  virtual Result<void> deleteRoot(const std::string& ifname, uint32_t handle) = 0;
  /**
   * Adds HTB class @p handle under the root, rate and ceiling @p rate_bps,
   * bursts @p burst_bytes, with a byte FIFO of @p queue_bytes as its queue:
   * both or neither.
   */
  virtual Result<void> addHtbClass(const std::string& ifname, uint32_t handle, uint64_t rate_bps,
                                   uint64_t burst_bytes, uint64_t queue_bytes) = 0;
  /** Deletes HTB class @p handle (and its queue). */
  virtual Result<void> deleteClass(const std::string& ifname, uint32_t handle) = 0;
};

/** The real kernel: a libnftables context and a NETLINK_ROUTE socket. */
Result<std::unique_ptr<HostKernel>> openHostKernel();

}  // namespace qos::agent
