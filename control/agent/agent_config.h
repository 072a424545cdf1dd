// qos-agent's configuration (conf/qos-agent.toml): where local applications
// reach it, and how it reaches the manager as this host.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "control/common/result.h"
#include "control/protocol/messages.h"

namespace qos::agent {

/** One [[policy]]: a flow the agent holds QoS for on the host's behalf. */
struct StandingPolicy {
  std::string name;                   ///< unique in the config; names it in logs and status
  control::AdmissionRequest request;  ///< app ("" = the manager identifies it), flow, bidir, lease
  bool operator==(const StandingPolicy&) const = default;
};

/** [enforce] mode: whether the agent enforces its grants in this host's kernel. */
enum class EnforceMode : uint8_t { None, Nftables };
/** [enforce] limit: how a grant's rate is held to. */
enum class LimitMode : uint8_t {
  Auto,    ///< shape where the kernel and the interface allow it, police otherwise
  Police,  ///< drop what exceeds the grant's rate and burst (nftables limit)
  Shape,   ///< queue it in the grant's HTB class on the egress interface
  None,    ///< mark only
};

struct EnforceConfig {
  EnforceMode mode = EnforceMode::None;
  LimitMode limit = LimitMode::Auto;
  std::string interface;  ///< where grants are shaped; "": the default route's
  bool operator==(const EnforceConfig&) const = default;
};

/** Where qos-agent listens unless told otherwise. */
inline constexpr const char* kDefaultListen = "ipc:///run/qos-agent/agent.sock";

struct AgentConfig {
  std::string source_path;              ///< the file it came from
  std::string listen = kDefaultListen;  ///< local endpoint (ipc:// or loopback tcp://)
  std::string name;                     ///< this host's [[peer]] name at the manager
  std::string manager;                  ///< the manager's endpoint
  std::string secret_key_path;          ///< this host's CURVE key (resolved); "": no CURVE
  std::string manager_public_key;       ///< the manager's key: Z85 text or a file (resolved)
  uint64_t client_timeout_ms = 5000;    ///< a client silent this long is gone
  int request_timeout_ms = 3000;        ///< each request to the manager
  /// An ipc:// socket's permission bits (who may connect needs write access).
  uint32_t socket_mode = 0660;
  std::string socket_group;              ///< an ipc:// socket's group; "": the agent's own
  uint32_t socket_gid = 0;               ///< socket_group's id, resolved when the config is read
  std::vector<StandingPolicy> policies;  ///< [[policy]], in the file's order
  EnforceConfig enforce;                 ///< [enforce]
};

/** Reads @p path; errors name file:line:column and the key. */
Result<AgentConfig> loadAgentConfig(const std::string& path);
/** The same from text (tests); key paths are relative to @p source_name's directory. */
Result<AgentConfig> parseAgentConfig(std::string_view text, const std::string& source_name);

}  // namespace qos::agent
