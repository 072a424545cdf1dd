// The handlers of the messages about flows and the manager itself:
// provision, release, refresh, flows, networks, stats and ping.  Each
// answers from the admission engine, stages what changes in the store and
// records the flow events its batch will publish once durable.
//
// A host (control/protocol/message_types.h) sees and touches only its own
// flows: those whose client is its name.  With CURVE on, a provision's
// client is the sender's name whatever the body says.
#pragma once

#include <atomic>

#include "manager/admission/admission.h"
#include "manager/config/manager_config.h"
#include "manager/service/message_registry.h"
#include "manager/store/reservation_store.h"

namespace qos::manager {

class ApplianceHub;
class ServerMetrics;

/** What the handlers work on; owned by the RequestServer. */
struct ServiceContext {
  AdmissionEngine& engine;
  ReservationStore* store = nullptr;  ///< null: nothing is persisted (tests)
  ServerMetrics* metrics = nullptr;
  /** The live config: a reload swaps it from another thread. */
  const std::atomic<const ManagerConfig*>& config;
  ApplianceHub* hub = nullptr;  ///< what the appliances enforce and report
};

/** Registers provision, release, refresh, flows, networks, stats and ping. */
void registerFlowHandlers(MessageRegistry& registry, ServiceContext& context);

}  // namespace qos::manager
