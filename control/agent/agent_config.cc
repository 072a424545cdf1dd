#include "control/agent/agent_config.h"

#include <algorithm>
#include <optional>
#include <vector>

#include <grp.h>

#include "control/common/ip_prefix.h"
#include "control/common/ip_protocol.h"
#include "control/common/units.h"
#include "control/config/endpoint.h"
#include "control/config/toml_support.h"

namespace qos::agent {
namespace {

using config::ConfigReader;
using config::Need;
using config::Section;

/** "0660" and the like: three or four octal digits, at most 0777. */
std::optional<uint32_t> parseMode(const std::string& text) {
  if (text.size() < 3 || text.size() > 4 ||
      text.find_first_not_of("01234567") != std::string::npos) {
    return std::nullopt;
  }
  const auto mode = static_cast<uint32_t>(std::stoul(text, nullptr, 8));
  return mode <= 0777 ? std::optional<uint32_t>(mode) : std::nullopt;
}

/** The id of the group named @p name on this host. */
std::optional<uint32_t> groupId(const std::string& name) {
  group entry{};
  group* found = nullptr;
  std::vector<char> buffer(16384);
  if (getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return std::nullopt;
  }
  return found->gr_gid;
}

/** [enforce]; an error is recorded in @p e's reader. */
void readEnforce(Section& e, EnforceConfig& out) {
  const auto mode = e.getString("mode");
  const auto limit = e.getString("limit");
  const auto interface = e.getString("interface");
  e.rejectUnknownKeys();
  if (e.reader().failed()) {
    return;
  }
  if (mode) {
    if (*mode == "none") {
      out.mode = EnforceMode::None;
    } else if (*mode == "nftables") {
      out.mode = EnforceMode::Nftables;
    } else {
      e.failAt("mode", "'" + *mode + "' is not a mode: \"none\" or \"nftables\"");
      return;
    }
  }
  if (limit) {
    if (*limit == "auto") {
      out.limit = LimitMode::Auto;
    } else if (*limit == "police") {
      out.limit = LimitMode::Police;
    } else if (*limit == "shape") {
      out.limit = LimitMode::Shape;
    } else if (*limit == "none") {
      out.limit = LimitMode::None;
    } else {
      e.failAt("limit",
               "'" + *limit + "' is not a limit: \"auto\", \"police\", \"shape\" or \"none\"");
      return;
    }
  }
  if (interface) {
    if (interface->empty() || interface->size() >= 16 ||
        interface->find_first_of("/ \t") != std::string::npos) {
      e.failAt("interface", "'" + *interface + "' is not an interface name");
      return;
    }
    out.interface = *interface;
  }
  if (out.mode == EnforceMode::None && (limit || interface)) {
    e.failAt(limit ? "limit" : "interface",
             "set mode = \"nftables\" for the host to enforce its grants; with mode \"none\" "
             "the kernel is left alone");
  }
}

/** One [[policy]]; nullopt (with the error recorded) if it is wrong. */
std::optional<StandingPolicy> readPolicy(Section& p, size_t index) {
  StandingPolicy policy;
  const auto name = p.getString("name");
  const auto app = p.getString("app");
  const auto src = p.getString("src", Need::Required);
  const auto dst = p.getString("dst", Need::Required);
  const auto proto = p.getString("proto", Need::Required);
  const auto sport = p.getInt("sport", 0, 65535);
  const auto dport = p.getInt("dport", 0, 65535);
  const auto bidir = p.getBool("bidir");
  const auto lease = p.getString("lease");
  p.rejectUnknownKeys();
  if (p.reader().failed()) {
    return std::nullopt;
  }
  policy.name = name.value_or("policy-" + std::to_string(index + 1));
  control::AdmissionRequest& r = policy.request;
  r.application = app.value_or("");
  r.bidirectional = bidir.value_or(false);
  r.flow.src_port = static_cast<uint16_t>(sport.value_or(0));
  r.flow.dst_port = static_cast<uint16_t>(dport.value_or(0));
  const std::optional<uint8_t> protocol = ipProtocolNumber(*proto);
  Result<IpAddress> src_ip = parseIpAddress(*src);
  Result<IpAddress> dst_ip = parseIpAddress(*dst);
  if (!config::isPeerName(policy.name)) {
    p.failAt("name", "invalid name '" + policy.name + "': letters, digits, '-' and '_'");
  } else if (app && app->empty()) {
    p.failAt("app", "empty: omit app to let the manager identify the flow by its ports");
  } else if (!src_ip) {
    p.failAt("src", src_ip.error().message);
  } else if (!dst_ip) {
    p.failAt("dst", dst_ip.error().message);
  } else if (src_ip->family != dst_ip->family) {
    p.failAt("dst", "src and dst must both be IPv4 or both IPv6");
  } else if (!protocol || !ipProtocolHasPorts(*protocol)) {
    p.failAt("proto",
             "'" + *proto + "' is not a protocol a flow is admitted for: udp, tcp or sctp");
  }
  if (p.reader().failed()) {
    return std::nullopt;
  }
  r.flow.src = *src_ip;
  r.flow.dst = *dst_ip;
  r.flow.protocol = *protocol;
  if (lease) {
    if (Result<uint64_t> ms = parseDurationMs(*lease); ms && *ms >= 1000 && *ms <= 86'400'000) {
      r.lease_sec = static_cast<uint32_t>(*ms / 1000);
    } else {
      p.failAt("lease", ms ? "from 1s to 24h" : ms.error().message);
      return std::nullopt;
    }
  }
  return policy;
}

Result<AgentConfig> readConfig(const toml::table& root, const std::string& path) {
  ConfigReader reader;
  Section top(reader, root, "");
  AgentConfig cfg;
  cfg.source_path = path;
  std::optional<Section> agent = top.getTable("agent", Need::Required);
  std::vector<Section> policies = top.getTableArray("policy");
  std::optional<Section> enforce = top.getTable("enforce");
  top.rejectUnknownKeys();
  if (!agent || reader.failed()) {
    return reader.failed() ? Result<AgentConfig>(reader.error())
                           : makeError(ErrorCode::Invalid, path + ": [agent] is required");
  }
  Section& a = *agent;
  cfg.listen = a.getString("listen").value_or(kDefaultListen);
  cfg.name = a.getString("name", Need::Required).value_or("");
  cfg.manager = a.getString("manager", Need::Required).value_or("");
  const auto secret = a.getString("secret_key");
  const auto manager_key = a.getString("manager_public_key");
  const auto timeout = a.getString("client_timeout");
  const auto request_timeout = a.getString("request_timeout");
  const auto socket_mode = a.getString("socket_mode");
  const auto socket_group = a.getString("socket_group");
  a.rejectUnknownKeys();
  if (reader.failed()) {
    return reader.error();
  }
  if (auto problem = config::checkZmqEndpoint(cfg.listen)) {
    a.failAt("listen", *problem);
  } else if (!config::isLocalEndpoint(cfg.listen)) {
    a.failAt("listen",
             "qos-agent serves this host only: listen on ipc:// or a loopback tcp:// "
             "endpoint, not " +
                 cfg.listen);
  } else if (!config::isPeerName(cfg.name)) {
    a.failAt("name", "invalid name '" + cfg.name +
                         "': names are letters, digits, '-' and '_', as in the manager's [[peer]]");
  } else if (auto bad_manager = config::checkZmqEndpoint(cfg.manager)) {
    a.failAt("manager", *bad_manager);
  } else if (secret.has_value() != manager_key.has_value()) {
    a.failAt(secret ? "secret_key" : "manager_public_key",
             "CURVE needs both secret_key (this host's) and manager_public_key");
  } else if (!secret && !config::isLocalEndpoint(cfg.manager)) {
    a.failAt("manager", "the manager at " + cfg.manager +
                            " is not on this machine: set secret_key and manager_public_key "
                            "(CURVE), which only a loopback or ipc manager may go without");
  }
  if (!reader.failed() && timeout) {
    if (Result<uint64_t> ms = parseDurationMs(*timeout); ms) {
      cfg.client_timeout_ms = *ms;
    } else {
      a.failAt("client_timeout", ms.error().message);
    }
  }
  if (!reader.failed() && request_timeout) {
    if (Result<uint64_t> ms = parseDurationMs(*request_timeout); ms && *ms <= 60'000) {
      cfg.request_timeout_ms = static_cast<int>(*ms);
    } else {
      a.failAt("request_timeout", ms ? "at most 60s" : ms.error().message);
    }
  }
  if (!reader.failed() && (socket_mode || socket_group) && !cfg.listen.starts_with("ipc://")) {
    a.failAt(socket_mode ? "socket_mode" : "socket_group",
             "socket_mode and socket_group are for an ipc:// listen (a file); " + cfg.listen +
                 " has none");
  }
  if (!reader.failed() && socket_mode) {
    if (auto mode = parseMode(*socket_mode)) {
      cfg.socket_mode = *mode;
    } else {
      a.failAt("socket_mode",
               "'" + *socket_mode + "' is not a file mode: octal, as \"0660\" (at most 0777)");
    }
  }
  if (!reader.failed() && socket_group) {
    if (auto gid = groupId(*socket_group)) {
      cfg.socket_group = *socket_group;
      cfg.socket_gid = *gid;
    } else {
      a.failAt("socket_group", "no group '" + *socket_group + "' on this host");
    }
  }
  if (reader.failed()) {
    return reader.error();
  }
  if (secret) {
    cfg.secret_key_path = config::pathFromConfig(path, *secret);
    cfg.manager_public_key = config::publicKeyFromConfig(path, *manager_key);
  }
  if (enforce) {
    readEnforce(*enforce, cfg.enforce);
  }
  for (size_t i = 0; i < policies.size() && !reader.failed(); ++i) {
    if (std::optional<StandingPolicy> policy = readPolicy(policies[i], i)) {
      const bool named_twice =
          std::any_of(cfg.policies.begin(), cfg.policies.end(),
                      [&](const StandingPolicy& p) { return p.name == policy->name; });
      const bool same_flow = std::any_of(
          cfg.policies.begin(), cfg.policies.end(),
          [&](const StandingPolicy& p) { return p.request.flow == policy->request.flow; });
      if (named_twice) {
        policies[i].failAt(
            "name", "another [[policy]] is named '" + policy->name + "': names must be unique");
      } else if (same_flow) {
        policies[i].fail("another [[policy]] holds the same flow");
      } else {
        cfg.policies.push_back(std::move(*policy));
      }
    }
  }
  if (reader.failed()) {
    return reader.error();
  }
  return cfg;
}

}  // namespace

Result<AgentConfig> loadAgentConfig(const std::string& path) {
  auto root = config::parseTomlFile(path);
  if (!root) {
    return root.error();
  }
  return readConfig(*root, path);
}

Result<AgentConfig> parseAgentConfig(std::string_view text, const std::string& source_name) {
  auto root = config::parseTomlText(text, source_name);
  if (!root) {
    return root.error();
  }
  return readConfig(*root, source_name);
}

}  // namespace qos::agent
