#include "manager/service/appliance_handlers.h"

#include <utility>

#include "manager/appliances/appliance_hub.h"

namespace qos::manager {

void registerApplianceHandlers(MessageRegistry& registry, ServiceContext& context,
                               const bool& authenticated, SyncSender sender) {
  ServiceContext* ctx = &context;
  const bool* auth = &authenticated;
  registry.add<control::SyncRequest>(
      control::MessageType::Sync,
      [ctx, auth, sender = std::move(sender)](control::SyncRequest& request, Call& call) {
        if (std::optional<control::WireError> refused =
                ctx->hub->admit(request, call.peer, *auth)) {
          setError(call.out.reply, refused->code, refused->message);
          call.out.immediate = true;
          return;
        }
        call.out.deferred = true;
        ctx->hub->sync(request, call.peer, call.now_ms, sender(call));
      });
  registry.add<EmptyBody>(control::MessageType::Appliances, [ctx](EmptyBody&, Call& call) {
    call.out.reply.body_json =
        control::encodeObject(control::AppliancesReply{ctx->hub->status(call.now_ms)});
  });
}

}  // namespace qos::manager
