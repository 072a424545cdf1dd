// The fast path (decodeFlatRequest + decodeFlat<Body>) against the general
// one (decodeRequest + decodeObject<Body>) on one text: whatever the fast
// path takes, the general path must take and read identically.  Shared by
// the unit test and the differential fuzz target.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "control/protocol/envelope.h"
#include "control/protocol/fields.h"
#include "control/protocol/flat_request.h"
#include "control/protocol/messages.h"

namespace qos::test {

/** True if @p value is what the general path read for the same member. */
inline bool sameFlatValue(const control::FlatValue& value, const nlohmann::json& general) {
  using Kind = control::FlatValue::Kind;
  switch (value.kind) {
    case Kind::Null:
      return general.is_null();
    case Kind::Bool:
      return general.is_boolean() && general.get<bool>() == value.flag;
    case Kind::Unsigned:
      return general.is_number_unsigned() && general.get<uint64_t>() == value.number;
    case Kind::String:
      return general.is_string() && general.get<std::string>() == value.text;
  }
  return false;
}

struct FlatAgreement {
  bool taken = false;                       ///< the fast path took the message
  std::optional<std::string> disagreement;  ///< how the two paths differ, if they do
};

/**
 * Decodes @p text both ways (@p flat may hold a previous message, as the
 * server's does) and says whether the fast path took it and where, if
 * anywhere, the two disagree.
 */
inline FlatAgreement compareFlatWithGeneral(const std::string& text, control::FlatRequest& flat) {
  FlatAgreement out;
  if (!control::decodeFlatRequest(text, flat)) {
    return out;
  }
  out.taken = true;
  auto general = control::decodeRequest(text);
  if (!general.ok()) {
    out.disagreement = "the fast path accepted what the general path refuses";
    return out;
  }
  if (flat.type != general->type || flat.id != general->id) {
    out.disagreement = "type or id read differently";
    return out;
  }
  if (flat.body.size() != general->body.size()) {
    out.disagreement = "a different number of body members";
    return out;
  }
  for (const auto& [name, value] : flat.body) {
    const auto it = general->body.find(name);
    if (it == general->body.end() || !sameFlatValue(value, *it)) {
      out.disagreement = "body member \"" + name + "\" read differently";
      return out;
    }
  }
  if (flat.type == "release") {
    const std::optional<control::FlowRef> fast = control::decodeFlat<control::FlowRef>(flat);
    const Result<control::FlowRef> slow =
        control::decodeObject<control::FlowRef>(general->body, control::Unknown::Reject, "body");
    if (fast && (!slow.ok() || slow->flow_id != fast->flow_id)) {
      out.disagreement = "a release read differently";
    }
    return out;
  }
  if (flat.type == "provision") {
    const std::optional<control::AdmissionRequest> fast =
        control::decodeFlat<control::AdmissionRequest>(flat);
    const Result<control::AdmissionRequest> slow = control::decodeObject<control::AdmissionRequest>(
        general->body, control::Unknown::Reject, "request body");
    if (fast && (!slow.ok() || !(*fast == *slow))) {
      out.disagreement = "a provision read differently";
    }
    out.taken = fast.has_value();
  }
  return out;
}

}  // namespace qos::test
