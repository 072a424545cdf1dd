#include "manager/service/message_registry.h"

#include <utility>

namespace qos::manager {

void setError(control::Reply& reply, std::string code, std::string message) {
  reply.status = control::ReplyStatus::Error;
  reply.error = {std::move(code), std::move(message)};
  reply.body = nlohmann::json::object();
  reply.body_json.clear();
}

void MessageRegistry::dispatch(control::MessageType type, const nlohmann::json& body,
                               Call& call) const {
  const Entry& entry = entries_[static_cast<size_t>(type)];
  if (!control::roleMaySend(call.peer.role, type)) {
    setError(call.out.reply, "not_authorized",
             "the key of '" + call.peer.name + "' (role " +
                 std::string(control::roleName(call.peer.role)) + ") may not send '" +
                 std::string(control::messageTypeName(type)) + "'");
    return;
  }
  if (!entry.tree) {
    setError(call.out.reply, "unknown_type",
             "'" + std::string(control::messageTypeName(type)) + "' is not served here");
    return;
  }
  entry.tree(body, call);
}

}  // namespace qos::manager
