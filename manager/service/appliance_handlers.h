// The handlers of the appliance messages: "sync" (an appliance's session,
// served by the ApplianceHub) and "appliances" (`qosctl appliances`).
#pragma once

#include <functional>

#include "control/protocol/messages.h"
#include "manager/appliances/appliance_hub.h"
#include "manager/service/flow_handlers.h"
#include "manager/service/message_registry.h"

namespace qos::manager {

/** Sends a sync's reply, now or later: the request loop's sender for one request. */
using SyncSender = std::function<ApplianceHub::SyncResponder(Call& call)>;

/**
 * Registers sync and appliances.  @p authenticated: peers carry names from
 * their keys (CURVE), so an appliance may sync only as itself.
 * @p sender makes the responder of a sync that the hub answers (maybe later).
 */
void registerApplianceHandlers(MessageRegistry& registry, ServiceContext& context,
                               const bool& authenticated, SyncSender sender);

}  // namespace qos::manager
