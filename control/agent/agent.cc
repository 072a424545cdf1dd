#include "control/agent/agent.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "control/agent/agent_status.h"
#include "control/common/clock.h"
#include "control/common/log.h"
#include "control/protocol/error_codes.h"
#include "control/protocol/fields.h"
#include "control/protocol/message_types.h"
#include "control/transport/curve_keys.h"

namespace qos::agent {
namespace {

using control::MessageType;

void setError(control::Reply& reply, std::string code, std::string message) {
  reply.status = control::ReplyStatus::Error;
  reply.error = {std::move(code), std::move(message)};
}

/** The wire code a client's session maps back to @p code's kind. */
const char* wireCodeOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::Invalid:
      return "bad_request";
    case ErrorCode::NotFound:
      return "unknown_flow";
    case ErrorCode::Unauthorized:
      return "not_authorized";
    case ErrorCode::Unavailable:
      return "unavailable";
    case ErrorCode::Denied:
    case ErrorCode::Internal:
      break;
  }
  return "internal";
}

template <typename T>
std::optional<T> bodyOf(const control::Request& request, control::Reply& reply) {
  Result<T> body = control::decodeObject<T>(request.body, control::Unknown::Reject, "body");
  if (!body) {
    setError(reply, "bad_request", body.error().message);
    return std::nullopt;
  }
  return std::move(*body);
}

std::string flowText(uint64_t flow_id) { return "flow " + std::to_string(flow_id); }

}  // namespace

Agent::Agent(Options options, std::unique_ptr<client::Session> upstream,
             std::unique_ptr<HostEnforcer> enforcer)
    : options_(std::move(options)), upstream_(std::move(upstream)), enforcer_(std::move(enforcer)) {
  PolicyHolder::Options holder;
  holder.ask = [this](control::AdmissionRequest request) {
    return upstream_->request(std::move(request));
  };
  holder.steady_ms = options_.steady_ms;
  holder.watch = [this](const control::Grant& grant, bool held) {
    if (held) {
      enforce(grant);
    } else {
      unenforce(grant.flow_id);
    }
  };
  policies_ = std::make_unique<PolicyHolder>(std::move(holder));
  for (const std::string& change : policies_->set(options_.config.policies)) {
    log::info(change);
  }
}

Result<std::unique_ptr<Agent>> Agent::start(Options options) {
  if (!options.steady_ms) {
    options.steady_ms = steadyClockMs;
  }
  if (!options.wall_ms) {
    options.wall_ms = systemClockMs;
  }
  client::SessionOptions upstream;
  if (options.upstream) {
    upstream = *options.upstream;
  } else {
    const AgentConfig& cfg = options.config;
    upstream.endpoint = cfg.manager;
    upstream.timeout_ms = cfg.request_timeout_ms;
    if (!cfg.secret_key_path.empty()) {
      Result<control::CurveKeyPair> own = control::loadCurveSecretKey(cfg.secret_key_path);
      if (!own) {
        return own.error();
      }
      Result<std::string> manager = control::loadCurvePublicKey(cfg.manager_public_key);
      if (!manager) {
        return manager.error();
      }
      upstream.curve = control::CurveClientKeys{own->public_z85, own->secret_z85, *manager};
    }
  }
  std::unique_ptr<HostEnforcer> enforcer;
  if (options.config.enforce.mode == EnforceMode::Nftables) {
    Result<std::unique_ptr<HostKernel>> kernel =
        options.open_kernel ? options.open_kernel() : openHostKernel();
    if (!kernel) {
      return kernel.error();
    }
    Result<std::unique_ptr<HostEnforcer>> started =
        HostEnforcer::start(options.config.enforce, std::move(*kernel));
    if (!started) {
      return started.error();
    }
    enforcer = std::move(*started);
    log::info("enforce: " + enforcer->summary());
  }
  Result<std::unique_ptr<client::Session>> session = client::Session::open(std::move(upstream));
  if (!session) {
    return session.error();
  }
  std::unique_ptr<Agent> agent(
      new Agent(std::move(options), std::move(*session), std::move(enforcer)));
  if (Result<void> bound = agent->bind(); !bound) {
    return bound.error();
  }
  return agent;
}

Agent::~Agent() {
  policies_->releaseAll();
  for (auto& [identity, client] : clients_) {
    for (auto& [flow_id, held] : client.grants) {
      unenforce(flow_id);
      static_cast<void>(held.grant->release());
    }
  }
}

void Agent::enforce(const control::Grant& grant) {
  if (!enforcer_) {
    return;
  }
  if (Result<void> r = enforcer_->apply(grant); !r) {
    log::warning("enforce: flow " + std::to_string(grant.flow_id) +
                 " is held but not enforced on this host: " + r.error().message);
  }
}

void Agent::unenforce(uint64_t flow_id) {
  if (enforcer_) {
    enforcer_->remove(flow_id);
  }
}

void Agent::unenforceLost() {
  if (!enforcer_ || enforcer_->size() == 0) {
    return;
  }
  for (auto& [identity, client] : clients_) {
    for (auto& [flow_id, held] : client.grants) {
      if (held.grant->state() != client::GrantState::Held) {
        unenforce(flow_id);
      }
    }
  }
}

Result<void> Agent::bind() {
  const std::string& listen = options_.config.listen;
  try {
    zmq::context_t* context = options_.context;
    if (context == nullptr) {
      own_context_ = std::make_unique<zmq::context_t>(1);
      context = own_context_.get();
    }
    if (listen.starts_with("ipc://")) {
      // The socket's directory, as /run/qos-agent; its permissions (and the
      // socket file's) decide who may ask.
      const std::filesystem::path dir = std::filesystem::path(listen.substr(6)).parent_path();
      std::error_code ec;
      if (!dir.empty()) {
        std::filesystem::create_directories(dir, ec);
        if (ec) {
          return makeError(ErrorCode::Unavailable, "cannot create " + dir.string() + " for " +
                                                       listen + ": " + ec.message());
        }
      }
    }
    router_ = std::make_unique<zmq::socket_t>(*context, zmq::socket_type::router);
    router_->set(zmq::sockopt::linger, 0);
    // As the manager's endpoint: frames up to 1 MiB are read and a request
    // over kMaxMessageBytes answered "too_large"; past that libzmq drops the
    // connection rather than buffer it.
    router_->set(zmq::sockopt::maxmsgsize, int64_t{1} << 20);
    router_->bind(listen);
    endpoint_ = router_->get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return makeError(ErrorCode::Unavailable, "cannot listen on " + listen + ": " + e.what());
  }
  if (listen.starts_with("ipc://")) {
    return setSocketAccess(listen.substr(6));
  }
  return {};
}

Result<void> Agent::setSocketAccess(const std::string& path) const {
  // Who may connect to a Unix socket is who may write it: the mode's owner,
  // group and other bits, and the group named in the config.
  const AgentConfig& cfg = options_.config;
  if (!cfg.socket_group.empty() &&
      chown(path.c_str(), static_cast<uid_t>(-1), cfg.socket_gid) != 0) {
    return makeError(ErrorCode::Unavailable, "cannot give " + path + " to group " +
                                                 cfg.socket_group + ": " + std::strerror(errno));
  }
  if (chmod(path.c_str(), cfg.socket_mode) != 0) {
    return makeError(ErrorCode::Unavailable,
                     "cannot set the mode of " + path + ": " + std::strerror(errno));
  }
  return {};
}

size_t Agent::grants() const {
  size_t n = 0;
  for (const auto& [identity, client] : clients_) {
    n += client.grants.size();
  }
  return n;
}

void Agent::run(const std::atomic<bool>& stop) {
  policies_->tick();
  while (!stop.load()) {
    serveOnce(100);
  }
}

void Agent::reload(const AgentConfig& config) {
  const AgentConfig& now = options_.config;
  if (config.listen != now.listen || config.name != now.name || config.manager != now.manager ||
      config.secret_key_path != now.secret_key_path ||
      config.manager_public_key != now.manager_public_key ||
      config.client_timeout_ms != now.client_timeout_ms ||
      config.request_timeout_ms != now.request_timeout_ms ||
      config.socket_mode != now.socket_mode || config.socket_group != now.socket_group ||
      !(config.enforce == now.enforce)) {
    log::warning(
        "reload: only [[policy]] changes are taken while running; the [agent] "
        "and [enforce] changes wait for a restart");
  }
  options_.config.policies = config.policies;
  const std::vector<std::string> changes = policies_->set(config.policies);
  for (const std::string& change : changes) {
    log::info(change);
  }
  log::info("reload: " + std::to_string(config.policies.size()) + " standing " +
            (config.policies.size() == 1 ? "policy" : "policies") + ", " +
            std::to_string(changes.size()) + " changed");
  policies_->tick();
}

void Agent::serveOnce(int wait_ms) {
  // Policies due (more than one tick asks for, at start) are not kept waiting.
  if (std::optional<uint64_t> due = policies_->nextDueMs()) {
    const uint64_t now = options_.steady_ms();
    wait_ms = *due <= now ? 0 : static_cast<int>(std::min<uint64_t>(wait_ms, *due - now));
  }
  zmq::pollitem_t item{router_->handle(), 0, ZMQ_POLLIN, 0};
  try {
    zmq::poll(&item, 1, std::chrono::milliseconds(wait_ms));
    if ((item.revents & ZMQ_POLLIN) != 0) {
      std::vector<zmq::message_t> frames;
      zmq::message_t frame;
      do {
        if (!router_->recv(frame, zmq::recv_flags::dontwait)) {
          break;
        }
        frames.push_back(std::move(frame));
      } while (frames.back().more());
      // [identity][empty][request]: anything else is not from a DEALER client.
      if (frames.size() == 3 && frames[1].size() == 0) {
        const std::string identity = frames[0].to_string();
        const std::string_view payload(static_cast<const char*>(frames[2].data()),
                                       frames[2].size());
        control::Reply reply;
        Result<control::Request> request = control::decodeRequest(payload);
        if (!request) {
          reply = control::decodeFailureReply(payload, request.error());
        } else {
          reply.id = request->id;
          handle(identity, *request, reply);
        }
        const std::string encoded = control::encodeReply(reply);
        router_->send(zmq::buffer(identity), zmq::send_flags::sndmore);
        router_->send(zmq::message_t(), zmq::send_flags::sndmore);
        router_->send(zmq::buffer(encoded), zmq::send_flags::dontwait);
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) {
      log::warning(std::string("qos-agent: ") + e.what());
    }
  }
  dropSilentClients();
  unenforceLost();
  policies_->tick();
}

void Agent::handle(const std::string& identity, const control::Request& request,
                   control::Reply& reply) {
  if (request.type == kStatusRequest) {  // an operator's look, not a client
    status(reply);
    return;
  }
  Client& client = clients_[identity];
  client.last_seen_ms = options_.steady_ms();
  const std::optional<MessageType> type = control::messageTypeOf(request.type);
  if (!type) {
    setError(reply, "unknown_type", "unknown type '" + request.type + "'");
    return;
  }
  switch (*type) {
    case MessageType::Provision:
      provision(client, request, reply);
      return;
    case MessageType::Refresh:
      refresh(client, request, reply);
      return;
    case MessageType::Release:
      release(client, request, reply);
      return;
    case MessageType::Ping:
      reply.body_json =
          control::encodeObject(control::PingReply{QOS_VERSION, options_.config.name, "host"});
      return;
    default:
      setError(reply, "not_authorized",
               "qos-agent serves provision, refresh, release, ping and status; '" + request.type +
                   "' is for the manager");
      return;
  }
}

void Agent::provision(Client& client, const control::Request& request, control::Reply& reply) {
  std::optional<control::AdmissionRequest> body = bodyOf<control::AdmissionRequest>(request, reply);
  if (!body) {
    return;
  }
  const uint32_t asked_sec = body->lease_sec;
  Result<client::Outcome> outcome = upstream_->request(std::move(*body));
  if (!outcome) {
    setError(reply, wireCodeOf(outcome.error().code), outcome.error().message);
    return;
  }
  if (const auto* denial = std::get_if<control::Denial>(&*outcome)) {
    reply.status = control::ReplyStatus::Denied;
    reply.error = {std::string(control::denyReasonName(denial->reason)), denial->message};
    reply.body_json = control::encodeObject(*denial);
    return;
  }
  auto& held = std::get<std::shared_ptr<client::HeldGrant>>(*outcome);
  control::GrantReply granted{held->grant(), false, held->enforcement(), std::nullopt};
  granted.heartbeat_ms = static_cast<uint32_t>(options_.config.client_timeout_ms / 3);
  const uint64_t lease_ms =
      client::leaseMsOf(held->grant().expires_at_ms, options_.wall_ms(), asked_sec);
  log::info("granted " + flowText(held->flowId()) + " (" + held->grant().profile.class_name +
            ", DSCP " + std::to_string(held->grant().dscp) + ") to a local client");
  const uint64_t flow_id = held->flowId();
  enforce(held->grant());
  client.grants[flow_id] = Held{std::move(held), lease_ms};
  reply.body_json = control::encodeObject(granted);
}

Agent::Grants::iterator Agent::heldBy(Client& client, uint64_t flow_id, control::Reply& reply) {
  auto it = client.grants.find(flow_id);
  if (it == client.grants.end()) {
    setError(reply, "unknown_flow", "no " + flowText(flow_id) + " held for this client");
  }
  return it;
}

void Agent::refresh(Client& client, const control::Request& request, control::Reply& reply) {
  std::optional<control::RefreshRequest> body = bodyOf<control::RefreshRequest>(request, reply);
  if (!body) {
    return;
  }
  auto it = heldBy(client, body->flow_id, reply);
  if (it == client.grants.end()) {
    return;
  }
  if (it->second.grant->state() != client::GrantState::Held) {
    setError(reply, "unknown_flow",
             flowText(body->flow_id) + " was lost: " + it->second.grant->lostReason());
    unenforce(body->flow_id);
    client.grants.erase(it);
    return;
  }
  // The agent keeps the lease alive upstream; the client's lease runs as long.
  reply.body_json = control::encodeObject(
      control::RefreshReply{body->flow_id, options_.wall_ms() + it->second.lease_ms});
}

void Agent::release(Client& client, const control::Request& request, control::Reply& reply) {
  std::optional<control::FlowRef> body = bodyOf<control::FlowRef>(request, reply);
  if (!body) {
    return;
  }
  auto it = heldBy(client, body->flow_id, reply);
  if (it == client.grants.end()) {
    return;
  }
  std::shared_ptr<client::HeldGrant> held = std::move(it->second.grant);
  client.grants.erase(it);
  unenforce(body->flow_id);
  if (Result<void> r = held->release(); !r) {
    setError(reply, wireCodeOf(r.error().code), r.error().message);
    return;
  }
  log::info("released " + flowText(body->flow_id) + " for a local client");
  reply.body_json = control::encodeObject(held->grant());
}

void Agent::status(control::Reply& reply) const {
  AgentStatus out;
  out.name = options_.config.name;
  out.manager = options_.config.manager;
  out.version = QOS_VERSION;
  out.clients = clients_.size();
  out.client_grants = grants();
  out.enforcement = enforcer_ ? enforcer_->summary() : "none";
  out.policies = policies_->status();
  for (PolicyStatus& p : out.policies) {
    p.enforced = enforcer_ && p.flow_id != 0 && enforcer_->enforces(p.flow_id);
  }
  reply.body_json = control::encodeObject(out);
}

void Agent::dropSilentClients() {
  const uint64_t now = options_.steady_ms();
  for (auto it = clients_.begin(); it != clients_.end();) {
    Client& client = it->second;
    if (now < client.last_seen_ms + options_.config.client_timeout_ms) {
      ++it;
      continue;
    }
    if (!client.grants.empty()) {
      size_t released = 0;
      for (auto& [flow_id, held] : client.grants) {
        unenforce(flow_id);
        released += held.grant->release().ok() ? 1 : 0;
      }
      log::info("a local client went silent: released " + std::to_string(released) + " of its " +
                std::to_string(client.grants.size()) + " grant(s)");
    }
    it = clients_.erase(it);
  }
}

}  // namespace qos::agent
