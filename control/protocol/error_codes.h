// The error codes a reply can carry ("error":{"code":...}), each with the
// kind of failure it is (qos::ErrorCode), so that a client knows whether to
// retry, fix its request, or give up, whichever code a newer manager sends.
#pragma once

#include <array>
#include <string_view>

#include "control/common/result.h"
#include "control/protocol/messages.h"

namespace qos::control {

struct WireCode {
  std::string_view code;
  ErrorCode kind;
};

/** Every code a reply may carry; envelope.h and messages.h say when each is sent. */
inline constexpr std::array<WireCode, 20> kWireCodes = {{
    // The envelope could not be read (envelope.h).
    {"too_large", ErrorCode::Invalid},
    {"too_deep", ErrorCode::Invalid},
    {"bad_json", ErrorCode::Invalid},
    {"bad_envelope", ErrorCode::Invalid},
    {"bad_version", ErrorCode::Invalid},
    // The request could not be served as asked.
    {"bad_request", ErrorCode::Invalid},          // a body member is missing or wrong
    {"unknown_type", ErrorCode::Invalid},         // not a type of message_types.h
    {"unknown_flow", ErrorCode::NotFound},        // released, expired, or never granted
    {"unknown_appliance", ErrorCode::Invalid},    // a sync from a name not configured
    {"not_authorized", ErrorCode::Unauthorized},  // the role may not, or not this flow
    {"unavailable", ErrorCode::Unavailable},      // could not be stored now: nothing changed
    {"internal", ErrorCode::Internal},
    // Denials (status "denied"): DenyReason names other than bad_request.
    {"unknown_application", ErrorCode::Denied},
    {"no_source_network", ErrorCode::Denied},
    {"no_destination_network", ErrorCode::Denied},
    {"no_path", ErrorCode::Denied},
    {"class_unavailable", ErrorCode::Denied},
    {"no_capacity", ErrorCode::Denied},
    // Said by clients of themselves, never sent by the manager.
    {"unreachable", ErrorCode::Unavailable},
    {"unauthorized", ErrorCode::Unauthorized},
}};

/** The kind of a wire code; Internal for a code this build does not know. */
constexpr ErrorCode errorCodeOfWire(std::string_view code) {
  for (const WireCode& row : kWireCodes) {
    if (row.code == code) {
      return row.kind;
    }
  }
  return ErrorCode::Internal;
}

static_assert(
    [] {
      for (const EnumName<DenyReason>& reason : kDenyReasons) {
        bool found = false;
        for (const WireCode& row : kWireCodes) {
          found = found || row.code == reason.name;
        }
        if (!found) {
          return false;
        }
      }
      return true;
    }(),
    "every deny reason is a wire code");

}  // namespace qos::control
