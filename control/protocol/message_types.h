// Every message type a request can have, and which roles may send it: the
// one list the manager dispatches on, counts in its metrics and names in its
// errors, and clients and tools send from.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "control/protocol/fields.h"

namespace qos::control {

/**
 * Who a peer is, from its key (control channel with CURVE):
 *   Host       requests, refreshes and releases its own flows, and lists them
 *   Appliance  syncs its rules and reports their counters, as itself only
 *   Admin      everything: every flow, any release, networks, appliances, stats
 * Without CURVE (loopback or ipc only) every peer is Admin.
 */
enum class Role : uint8_t { Host, Appliance, Admin };

inline constexpr std::array<EnumName<Role>, 3> kRoles = {{
    {Role::Host, "host"},
    {Role::Appliance, "appliance"},
    {Role::Admin, "admin"},
}};

constexpr std::string_view roleName(Role role) {
  for (const EnumName<Role>& row : kRoles) {
    if (row.value == role) {
      return row.name;
    }
  }
  return "unknown";
}

constexpr std::optional<Role> roleFromName(std::string_view name) {
  for (const EnumName<Role>& row : kRoles) {
    if (row.name == name) {
      return row.value;
    }
  }
  return std::nullopt;
}

enum class MessageType : uint8_t {
  Provision,
  Release,
  Refresh,
  Flows,
  Networks,
  Appliances,
  Stats,
  Ping,
  Sync,
};

/** A role set, one bit per Role. */
using RoleMask = uint8_t;
constexpr RoleMask roleBit(Role role) {
  return static_cast<RoleMask>(1u << static_cast<unsigned>(role));
}
inline constexpr RoleMask kAnyRole =
    roleBit(Role::Host) | roleBit(Role::Appliance) | roleBit(Role::Admin);

struct MessageTypeInfo {
  MessageType type;
  std::string_view name;  ///< the envelope's "type"
  RoleMask may_send;      ///< roles allowed to send it
};

/**
 * The message types, in the order metrics and errors list them.  What a
 * host may do with a flow is also limited to its own flows (the manager
 * checks the flow's client).  A sync is an appliance's, and with CURVE the
 * manager checks that the key's name is the appliance's: an admin key may
 * not sync as an appliance either (without CURVE every peer is an admin).
 */
inline constexpr std::array<MessageTypeInfo, 9> kMessageTypes = {{
    {MessageType::Provision, "provision", roleBit(Role::Host) | roleBit(Role::Admin)},
    {MessageType::Release, "release", roleBit(Role::Host) | roleBit(Role::Admin)},
    {MessageType::Refresh, "refresh", roleBit(Role::Host) | roleBit(Role::Admin)},
    {MessageType::Flows, "flows", roleBit(Role::Host) | roleBit(Role::Admin)},
    {MessageType::Networks, "networks", roleBit(Role::Admin)},
    {MessageType::Appliances, "appliances", roleBit(Role::Admin)},
    {MessageType::Stats, "stats", roleBit(Role::Admin)},
    {MessageType::Ping, "ping", kAnyRole},
    {MessageType::Sync, "sync", roleBit(Role::Appliance) | roleBit(Role::Admin)},
}};

constexpr const MessageTypeInfo& messageTypeInfo(MessageType type) {
  return kMessageTypes[static_cast<size_t>(type)];
}

constexpr std::string_view messageTypeName(MessageType type) { return messageTypeInfo(type).name; }

constexpr std::optional<MessageType> messageTypeOf(std::string_view name) {
  for (const MessageTypeInfo& info : kMessageTypes) {
    if (info.name == name) {
      return info.type;
    }
  }
  return std::nullopt;
}

constexpr bool roleMaySend(Role role, MessageType type) {
  return (messageTypeInfo(type).may_send & roleBit(role)) != 0;
}

static_assert(
    [] {
      for (size_t i = 0; i < kMessageTypes.size(); ++i) {
        if (static_cast<size_t>(kMessageTypes[i].type) != i) {
          return false;
        }
      }
      return true;
    }(),
    "kMessageTypes is indexed by MessageType");

}  // namespace qos::control
