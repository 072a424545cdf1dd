// A HostKernel that keeps its nftables commands, qdiscs and classes in
// memory and fails the operations a test names: host enforcement's logic,
// without a kernel.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "control/agent/enforce/host_kernel.h"
#include "control/agent/enforce/nft_rules.h"

namespace qos::test {

class FakeHostKernel final : public agent::HostKernel {
public:
  /** What the fake kernel holds; shared with the test, which keeps it after the agent ends. */
  struct State {
    std::vector<std::string> nft;    ///< every command buffer run, in order
    std::vector<std::string> ops;    ///< every operation, "nft", "add-root lo a9e0:"...
    std::set<std::string> elements;  ///< map elements, by the flow's key text
    bool table = false;
    std::map<std::string, agent::RootQdisc> roots;      ///< by interface
    std::map<std::string, std::set<uint32_t>> classes;  ///< by interface
    std::string default_route = "eth0";
    /// An operation fails when its text contains one of these.
    std::vector<std::string> fail;
  };

  explicit FakeHostKernel(State& state) : s_(state) {}

  Result<void> runNft(const std::string& commands) override {
    s_.nft.push_back(commands);
    if (Result<void> f = failIf("nft " + commands); !f) {
      return f;
    }
    // Just enough of nftables: the table, and the map elements (an
    // overlapping one is refused as nft refuses it: File exists).
    if (commands.find("delete table") != std::string::npos) {
      s_.table = false;
      s_.elements.clear();
    }
    if (commands.find("add map") != std::string::npos) {
      s_.table = true;
    }
    const auto element = [&](const std::string& verb) -> std::string {
      const size_t at = commands.find(verb + " element");
      if (at == std::string::npos) {
        return "";
      }
      const size_t open = commands.find("{ ", at) + 2;
      const size_t end = commands.find_first_of(":}", open);
      std::string key = commands.substr(open, end - open);
      while (!key.empty() && key.back() == ' ') {
        key.pop_back();
      }
      return key;
    };
    if (std::string key = element("add"); !key.empty()) {
      if (!s_.table || s_.elements.contains(key)) {
        return makeError(ErrorCode::Unavailable,
                         "nftables: Error: Could not process rule: File exists");
      }
      s_.elements.insert(key);
    }
    if (std::string key = element("delete"); !key.empty()) {
      s_.elements.erase(key);
    }
    return {};
  }

  Result<std::string> defaultRouteInterface() override {
    if (s_.default_route.empty()) {
      return makeError(ErrorCode::NotFound, "this host has no default route");
    }
    return s_.default_route;
  }

  Result<agent::RootQdisc> rootQdisc(const std::string& ifname) override {
    auto it = s_.roots.find(ifname);
    if (it == s_.roots.end()) {
      return makeError(ErrorCode::NotFound, "no interface " + ifname + " on this host");
    }
    return it->second;
  }

  Result<void> addHtbRoot(const std::string& ifname, uint32_t handle) override {
    const std::string op = "add-root " + ifname + " " + agent::tcHandleText(handle);
    if (Result<void> f = record(op); !f) {
      return f;
    }
    s_.roots[ifname] = agent::RootQdisc{"htb", handle};
    return {};
  }

  Result<void> deleteRoot(const std::string& ifname, uint32_t handle) override {
    const std::string op = "delete-root " + ifname + " " + agent::tcHandleText(handle);
    if (Result<void> f = record(op); !f) {
      return f;
    }
    s_.roots[ifname] = agent::RootQdisc{"noqueue", 0};
    s_.classes.erase(ifname);
    return {};
  }

  Result<void> addHtbClass(const std::string& ifname, uint32_t handle, uint64_t rate_bps,
                           uint64_t burst_bytes, uint64_t queue_bytes) override {
    const std::string op = "add-class " + ifname + " " + agent::tcHandleText(handle) + " rate " +
                           std::to_string(rate_bps) + " burst " + std::to_string(burst_bytes) +
                           " queue " + std::to_string(queue_bytes);
    if (Result<void> f = record(op); !f) {
      return f;
    }
    s_.classes[ifname].insert(handle);
    return {};
  }

  Result<void> deleteClass(const std::string& ifname, uint32_t handle) override {
    const std::string op = "delete-class " + ifname + " " + agent::tcHandleText(handle);
    if (Result<void> f = record(op); !f) {
      return f;
    }
    s_.classes[ifname].erase(handle);
    return {};
  }

private:
  Result<void> failIf(const std::string& op) {
    s_.ops.push_back(op.starts_with("nft ") ? "nft" : op);
    for (const std::string& f : s_.fail) {
      if (op.find(f) != std::string::npos) {
        return makeError(ErrorCode::Unavailable, "fake kernel refuses: " + op.substr(0, 60));
      }
    }
    return {};
  }
  Result<void> record(const std::string& op) { return failIf(op); }

  State& s_;
};

}  // namespace qos::test
