// qos-agent's service: local applications that cannot or should not hold
// the host's key ask it for QoS over a local endpoint (ipc://, whose file
// permissions decide who may), and it asks the manager as this host.
//
//   application (libqosclient) --ipc--> Agent --CURVE, host key--> qosmgr
//
// Each grant is held for the client that asked, through one upstream
// libqosclient session: the agent refreshes its lease whatever the client
// does, and releases it when the client releases it or goes away.  A client
// is gone when it says nothing for client_timeout; grant replies ask it to
// say something three times as often (heartbeat_ms), which libqosclient
// does.  A grant lost upstream (an admin released it, its lease ran out
// while the manager was away) is reported to its client at its next
// refresh as an unknown flow, with the reason.
//
// Standing policies ([[policy]] in its config) are flows it holds QoS for
// without any client: asked for at start and on reload, kept, asked for
// again with backoff while denied, refused or unanswered (standing_policies.h).
//
// With [enforce] mode = "nftables" every grant it holds is also marked,
// policed or shaped in this host's kernel (enforce/host_enforcer.h).
//
// One thread serves everything; a request waits for the manager's reply
// (up to request_timeout) before the next is read.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "control/agent/agent_config.h"
#include "control/agent/enforce/host_enforcer.h"
#include "control/agent/enforce/host_kernel.h"
#include "control/agent/standing_policies.h"
#include "control/client/session.h"
#include "control/common/result.h"
#include "control/protocol/envelope.h"

namespace qos::agent {

class Agent {
public:
  struct Options {
    AgentConfig config;
    zmq::context_t* context = nullptr;  ///< for inproc:// (tests); null: its own
    /** The session to the manager; none: made from the config (keys loaded). */
    std::optional<client::SessionOptions> upstream;
    std::function<uint64_t()> steady_ms;  ///< client timeouts; null: steady_clock
    std::function<uint64_t()> wall_ms;    ///< epoch ms; null: system_clock
    /// The kernel host enforcement uses ([enforce] mode = "nftables"); null: the real one.
    std::function<Result<std::unique_ptr<HostKernel>>()> open_kernel;
  };

  /** Loads the keys, opens the upstream session and binds the local endpoint. */
  static Result<std::unique_ptr<Agent>> start(Options options);
  /** Releases every grant it holds at the manager. */
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  /** Serves until @p stop is set (looked at every 100 ms at least). */
  void run(const std::atomic<bool>& stop);
  /**
   * Waits up to @p wait_ms (less when a standing policy is due) for one
   * request and serves it; then lets silent clients go and asks for the
   * policies that are due.
   */
  void serveOnce(int wait_ms);

  /**
   * Takes a changed config (SIGHUP): its [[policy]] set replaces the one
   * held (policy_holder.h); other settings need a restart, and a change to
   * one is logged as ignored.
   */
  void reload(const AgentConfig& config);

  const PolicyHolder& policies() const { return *policies_; }
  /** Host enforcement; null with [enforce] mode = "none". */
  const HostEnforcer* enforcer() const { return enforcer_.get(); }
  size_t clients() const { return clients_.size(); }
  size_t grants() const;
  const std::string& endpoint() const { return endpoint_; }

private:
  struct Held {
    std::shared_ptr<client::HeldGrant> grant;
    uint64_t lease_ms = 0;
  };
  using Grants = std::map<uint64_t, Held>;
  struct Client {
    uint64_t last_seen_ms = 0;
    Grants grants;
  };
  /** The client's grant @p flow_id, or grants.end() with @p reply set to unknown_flow. */
  static Grants::iterator heldBy(Client& client, uint64_t flow_id, control::Reply& reply);

  Agent(Options options, std::unique_ptr<client::Session> upstream,
        std::unique_ptr<HostEnforcer> enforcer);
  Result<void> bind();
  /** An ipc:// socket's mode and group, as configured. */
  Result<void> setSocketAccess(const std::string& path) const;
  void handle(const std::string& identity, const control::Request& request, control::Reply& reply);
  void provision(Client& client, const control::Request& request, control::Reply& reply);
  void refresh(Client& client, const control::Request& request, control::Reply& reply);
  void release(Client& client, const control::Request& request, control::Reply& reply);
  void dropSilentClients();
  /** Enforces @p grant on this host, if it enforces; a failure is logged (the grant stays). */
  void enforce(const control::Grant& grant);
  void unenforce(uint64_t flow_id);
  /** Client grants lost upstream stop being enforced at once, not at the client's next refresh. */
  void unenforceLost();
  void status(control::Reply& reply) const;

  Options options_;
  std::unique_ptr<zmq::context_t> own_context_;
  std::unique_ptr<zmq::socket_t> router_;
  std::string endpoint_;
  std::unique_ptr<client::Session> upstream_;
  std::unique_ptr<HostEnforcer> enforcer_;  ///< outlives every grant held
  std::map<std::string, Client> clients_;   ///< by ZeroMQ routing id
  std::unique_ptr<PolicyHolder> policies_;  ///< released before upstream_ closes
};

}  // namespace qos::agent
