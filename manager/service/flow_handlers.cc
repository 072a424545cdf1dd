#include "manager/service/flow_handlers.h"

#include <string>
#include <utility>

#include "control/protocol/json_writer.h"
#include "manager/appliances/appliance_hub.h"
#include "manager/service/server_metrics.h"

namespace qos::manager {
namespace {

using control::MessageType;
using control::Role;

/** Encodes a described body into the reply, without a tree. */
template <typename T>
void setBody(control::Reply& reply, const T& body) {
  reply.body_json = control::encodeObject(body);
}

/** Whether @p peer may act on @p grant: its own flow, or any for an admin. */
bool owns(const Peer& peer, const Grant& grant) {
  return peer.role == Role::Admin || grant.client_id == peer.name;
}

void unknownFlow(Call& call, uint64_t flow_id) {
  setError(call.out.reply, "unknown_flow",
           "no flow " + std::to_string(flow_id) + " (released or expired)");
}

/**
 * Finds a flow the peer may act on.  A host asking about a flow that is not
 * its own is told it does not exist, as for a flow that is gone: it learns
 * nothing of other hosts' flows.
 */
std::optional<Grant> ownedFlow(ServiceContext& ctx, Call& call, uint64_t flow_id) {
  std::optional<Grant> grant = ctx.engine.flow(flow_id);
  if (!grant || !owns(call.peer, *grant)) {
    unknownFlow(call, flow_id);
    return std::nullopt;
  }
  return grant;
}

void provision(ServiceContext& ctx, control::AdmissionRequest& request, Call& call) {
  // Identity comes from the key, never from the message.
  if (!call.peer.name.empty()) {
    request.client_id = call.peer.name;
  } else if (request.client_id.empty()) {
    request.client_id = "anonymous";
  }
  Admission admission = ctx.engine.admit(request, call.now_ms);
  if (auto* grant = std::get_if<Grant>(&admission.result)) {
    call.out.names_flow = grant->flow_id;
    if (!admission.retried) {
      if (ctx.store != nullptr) {
        ctx.store->stagePut(*grant);
      }
      call.out.undo_admission = grant->flow_id;
      if (ctx.metrics != nullptr) {
        ctx.metrics->countAdmission(grant->profile_index);
      }
      call.batch.events.push_back({FlowEvent::Kind::Granted, *grant});
    }
    control::GrantReply& reply = call.out.grant_reply.emplace();
    reply.grant = std::move(*grant);
    reply.retried = admission.retried;
    return;
  }
  const Denial& denial = std::get<Denial>(admission.result);
  if (ctx.metrics != nullptr) {
    ctx.metrics->countDenial(denial.reason);
  }
  const bool bad_request = denial.reason == DenyReason::BadRequest;
  call.out.reply.status = bad_request ? control::ReplyStatus::Error : control::ReplyStatus::Denied;
  call.out.reply.error = {std::string(control::denyReasonName(denial.reason)), denial.message};
  setBody(call.out.reply, denial);
}

void release(ServiceContext& ctx, const control::FlowRef& ref, Call& call) {
  if (!ownedFlow(ctx, call, ref.flow_id)) {
    return;
  }
  std::optional<Grant> released = ctx.engine.release(ref.flow_id);
  if (!released) {
    unknownFlow(call, ref.flow_id);
    return;
  }
  if (ctx.store != nullptr) {
    ctx.store->stageDelete(ref.flow_id);
  }
  if (ctx.metrics != nullptr) {
    ctx.metrics->countRelease();
  }
  setBody(call.out.reply, *released);
  call.batch.events.push_back({FlowEvent::Kind::Released, std::move(*released)});
}

void refresh(ServiceContext& ctx, const control::RefreshRequest& request, Call& call) {
  const uint32_t max_lease_sec = ctx.config.load()->max_lease_sec;
  if (request.lease_sec > max_lease_sec) {
    setError(call.out.reply, "bad_request",
             "body.lease: expected seconds, at most " + std::to_string(max_lease_sec));
    return;
  }
  if (!ownedFlow(ctx, call, request.flow_id)) {
    return;
  }
  const std::optional<uint64_t> expires =
      ctx.engine.refresh(request.flow_id, request.lease_sec, call.now_ms);
  if (!expires) {
    unknownFlow(call, request.flow_id);
    return;
  }
  if (std::optional<Grant> grant = ctx.engine.flow(request.flow_id); grant && ctx.store) {
    ctx.store->stagePut(*grant);
  }
  call.out.names_flow = request.flow_id;
  setBody(call.out.reply, control::RefreshReply{request.flow_id, *expires});
}

}  // namespace

void registerFlowHandlers(MessageRegistry& registry, ServiceContext& context) {
  ServiceContext* ctx = &context;
  registry.add<control::AdmissionRequest>(
      MessageType::Provision,
      [ctx](control::AdmissionRequest& body, Call& call) { provision(*ctx, body, call); });
  registry.add<control::FlowRef>(MessageType::Release, [ctx](control::FlowRef& body, Call& call) {
    release(*ctx, body, call);
  });
  registry.add<control::RefreshRequest>(
      MessageType::Refresh,
      [ctx](control::RefreshRequest& body, Call& call) { refresh(*ctx, body, call); });
  registry.add<EmptyBody>(MessageType::Flows, [ctx](EmptyBody&, Call& call) {
    control::FlowsReply reply;
    for (Grant& grant : ctx->engine.flows()) {
      if (owns(call.peer, grant)) {
        control::FlowListing listing;
        if (ctx->hub != nullptr) {
          listing.enforcement = ctx->hub->enforcement(grant, call.now_ms);
          listing.delivery = ctx->hub->delivery(grant);
        }
        listing.grant = std::move(grant);
        reply.flows.push_back(std::move(listing));
      }
    }
    setBody(call.out.reply, reply);
  });
  registry.add<EmptyBody>(MessageType::Networks, [ctx](EmptyBody&, Call& call) {
    setBody(call.out.reply, control::NetworksReply{ctx->engine.usage()});
  });
  registry.add<EmptyBody>(MessageType::Stats, [ctx](EmptyBody&, Call& call) {
    const ManagerConfig& config = *ctx->config.load();
    setBody(call.out.reply, control::StatsReply{ctx->engine.flowCount(), config.networks.size(),
                                                config.applications.size(), 0, QOS_VERSION});
  });
  registry.add<EmptyBody>(MessageType::Ping, [](EmptyBody&, Call& call) {
    setBody(call.out.reply, control::PingReply{QOS_VERSION, call.peer.name,
                                               std::string(control::roleName(call.peer.role))});
  });
}

}  // namespace qos::manager
