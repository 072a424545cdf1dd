#include "manager/codec/json_codec.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "control/common/ip_prefix.h"
#include "control/common/ip_protocol.h"
#include "control/protocol/json_writer.h"

namespace qos::manager {
namespace {

using nlohmann::json;

constexpr uint8_t kMaxDscp = 63;
constexpr size_t kMaxShownValueChars = 48;
/** Members of the largest object read here (a grant has 20). */
constexpr size_t kUsualFieldCount = 24;

struct ReasonCode {
  DenyReason reason;
  const char* code;
};

constexpr std::array<ReasonCode, 7> kReasonCodes = {{
    {DenyReason::BadRequest, "bad_request"},
    {DenyReason::UnknownApplication, "unknown_application"},
    {DenyReason::NoSourceNetwork, "no_source_network"},
    {DenyReason::NoDestinationNetwork, "no_destination_network"},
    {DenyReason::NoPath, "no_path"},
    {DenyReason::ClassUnavailable, "class_unavailable"},
    {DenyReason::NoCapacity, "no_capacity"},
}};

/** A value as it appears in an error message: JSON text, cut short if long. */
std::string shown(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxShownValueChars) {
    text.resize(kMaxShownValueChars);
    text += "...";
  }
  return text;
}

/** Whether a key must be there (null counts as absent). */
enum class Need { Optional, Required };

/**
 * Reads the members of one JSON object, keeping the first error only, so the
 * decoders below read every field straight through and check once at the end
 * (as control/config's Section does for TOML).  Every get*() leaves its
 * output untouched when the key is absent or wrong.
 */
class FieldReader {
public:
  /** @p what names the object in the error when it is not an object at all. */
  FieldReader(const json& object, std::string path, std::string_view what = "")
      : object_(object), path_(std::move(path)) {
    known_.reserve(kUsualFieldCount);
    if (!object_.is_object()) {
      const std::string message = "must be an object, got " + shown(object_);
      error_ =
          makeError(path_.empty() ? std::string(what) + " " + message : path_ + ": " + message);
    }
  }

  bool failed() const { return error_.has_value(); }
  const Error& error() const { return *error_; }

  /** The full name of @p key for messages: "profile.rate_bps". */
  std::string name(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  void fail(std::string_view key, const std::string& message) {
    if (error_) {
      return;
    }
    const std::string field = key.empty() ? path_ : name(key);
    error_ = makeError(field.empty() ? message : field + ": " + message);
  }

  /** The member, or nullptr when absent or null (an error if required). */
  const json* find(std::string_view key, Need need) {
    known_.push_back(key);
    if (failed()) {
      return nullptr;
    }
    const auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) {
      if (need == Need::Required) {
        fail(key, "missing");
      }
      return nullptr;
    }
    return &*it;
  }

  void getUnsigned(std::string_view key, Need need, uint64_t max, uint64_t& out) {
    const json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    const std::string range =
        max == std::numeric_limits<uint64_t>::max() ? "" : " in 0.." + std::to_string(max);
    uint64_t number = 0;
    if (value->is_number_unsigned()) {
      number = value->get<uint64_t>();
    } else if (value->is_number_integer() && value->get<int64_t>() >= 0) {
      number = static_cast<uint64_t>(value->get<int64_t>());
    } else {
      fail(key, "must be an unsigned integer" + range + ", got " + shown(*value));
      return;
    }
    if (number > max) {
      fail(key, "must be an unsigned integer" + range + ", got " + shown(*value));
      return;
    }
    out = number;
  }

  template <typename T>
  void getNumber(std::string_view key, Need need, T& out) {
    uint64_t number = out;
    getUnsigned(key, need, std::numeric_limits<T>::max(), number);
    out = static_cast<T>(number);
  }

  void getDscp(std::string_view key, Need need, uint8_t& out) {
    uint64_t number = out;
    getUnsigned(key, need, kMaxDscp, number);
    out = static_cast<uint8_t>(number);
  }

  void getBool(std::string_view key, Need need, bool& out) {
    const json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if (!value->is_boolean()) {
      fail(key, "must be true or false, got " + shown(*value));
      return;
    }
    out = value->get<bool>();
  }

  void getString(std::string_view key, Need need, std::string& out, bool allow_empty = true) {
    const json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if (!value->is_string()) {
      fail(key, "must be a string, got " + shown(*value));
      return;
    }
    std::string text = value->get<std::string>();
    if (!allow_empty && text.empty()) {
      fail(key, "must not be empty");
      return;
    }
    out = std::move(text);
  }

  void getStringList(std::string_view key, Need need, std::vector<std::string>& out) {
    const json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if (!value->is_array()) {
      fail(key, "must be an array of strings, got " + shown(*value));
      return;
    }
    std::vector<std::string> items;
    items.reserve(value->size());
    for (size_t i = 0; i < value->size(); ++i) {
      const json& item = (*value)[i];
      if (!item.is_string()) {
        fail(std::string(key) + "[" + std::to_string(i) + "]",
             "must be a string, got " + shown(item));
        return;
      }
      items.push_back(item.get<std::string>());
    }
    out = std::move(items);
  }

  void getAddress(std::string_view key, Need need, IpAddress& out) {
    const json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if (!value->is_string()) {
      fail(key, "must be an IPv4 or IPv6 address string, got " + shown(*value));
      return;
    }
    Result<IpAddress> address = parseIpAddress(value->get<std::string>());
    if (!address) {
      fail(key, address.error().message);
      return;
    }
    out = *address;
  }

  /** "udp" | "tcp" | "sctp"; with @p allow_number also a protocol number 0..255. */
  void getProtocol(std::string_view key, Need need, bool allow_number, uint8_t& out) {
    const json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if (value->is_string()) {
      if (const std::optional<uint8_t> number = protocolFromName(value->get<std::string>())) {
        out = *number;
        return;
      }
    } else if (allow_number && value->is_number_integer()) {
      getNumber(key, need, out);
      return;
    }
    fail(key, std::string("must be \"udp\", \"tcp\" or \"sctp\"") +
                  (allow_number ? " or a protocol number" : "") + ", got " + shown(*value));
  }

  /** Reads a nested object with @p read(FieldReader&), naming its fields "key.field". */
  template <typename Read>
  void getObject(std::string_view key, Need need, Read read) {
    const json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    FieldReader nested(*value, name(key));
    read(nested);
    if (nested.failed() && !failed()) {
      error_ = nested.error();
    }
  }

  /** Records an error for the first member no get*() asked for. */
  void rejectUnknownKeys() {
    if (failed()) {
      return;
    }
    for (const auto& [key, value] : object_.items()) {
      if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        fail(key, "unknown field");
        return;
      }
    }
  }

private:
  const json& object_;
  std::string path_;
  std::optional<Error> error_;
  /** The keys asked for; the callers' string literals, so views are safe. */
  std::vector<std::string_view> known_;
};

json addressJson(const IpAddress& address) {
  return address.family == 0 ? json(nullptr) : json(formatIpAddress(address));
}

json protocolJson(uint8_t protocol) {
  const char* name = protocolName(protocol);
  return name != nullptr ? json(name) : json(protocol);
}

void readProfile(FieldReader& reader, Profile& profile) {
  reader.getString("class", Need::Required, profile.class_name, /*allow_empty=*/false);
  reader.getUnsigned("rate_bps", Need::Required, std::numeric_limits<uint64_t>::max(),
                     profile.rate_bps);
  reader.getUnsigned("burst_bytes", Need::Required, std::numeric_limits<uint64_t>::max(),
                     profile.burst_bytes);
}

/**
 * Writes the grant's members from app to bidir, in order, into an open
 * object: the members a version-2 stored row held, which readStoredMembers()
 * reads from either.
 */
void writeStoredMembers(control::JsonWriter& w, const Grant& grant) {
  const auto address = [&w](const IpAddress& a) {
    if (a.family == 0) {
      w.null();
    } else {
      w.value(formatIpAddress(a));
    }
  };
  w.member("app", grant.application);
  w.member("profile_index", static_cast<uint64_t>(grant.profile_index));
  w.key("profile");
  w.beginObject();
  w.member("class", grant.profile.class_name);
  w.member("rate_bps", grant.profile.rate_bps);
  w.member("burst_bytes", grant.profile.burst_bytes);
  w.endObject();
  w.key("src");
  address(grant.flow.src);
  w.member("sport", uint64_t{grant.flow.src_port});
  w.key("dst");
  address(grant.flow.dst);
  w.member("dport", uint64_t{grant.flow.dst_port});
  w.key("proto");
  if (const char* name = protocolName(grant.flow.protocol)) {
    w.value(name);
  } else {
    w.value(uint64_t{grant.flow.protocol});
  }
  w.member("bidir", grant.bidirectional);
}

/**
 * Reads a flow's src, sport, dst, dport and proto members.  A request names
 * its protocol (udp, tcp, sctp); a grant may carry any number.
 */
void readFlow(FieldReader& reader, bool proto_allow_number, FlowSpec& flow) {
  reader.getAddress("src", Need::Required, flow.src);
  reader.getNumber("sport", Need::Optional, flow.src_port);
  reader.getAddress("dst", Need::Required, flow.dst);
  reader.getNumber("dport", Need::Optional, flow.dst_port);
  reader.getProtocol("proto", Need::Required, proto_allow_number, flow.protocol);
}

/** Reads what writeStoredMembers() writes. */
void readStoredMembers(FieldReader& reader, Grant& grant) {
  reader.getString("app", Need::Optional, grant.application);
  uint64_t profile_index = 0;
  reader.getUnsigned("profile_index", Need::Optional, std::numeric_limits<size_t>::max(),
                     profile_index);
  grant.profile_index = static_cast<size_t>(profile_index);
  reader.getObject("profile", Need::Required,
                   [&grant](FieldReader& nested) { readProfile(nested, grant.profile); });
  readFlow(reader, /*proto_allow_number=*/true, grant.flow);
  reader.getBool("bidir", Need::Optional, grant.bidirectional);
}

/** Bytes per second to bits per second, saturating (no grant's meter comes near). */
uint64_t bytesToBitsPerSec(uint64_t bytes_per_sec) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  return bytes_per_sec > kMax / 8 ? kMax : bytes_per_sec * 8;
}

/** Bits per second to bytes per second, rounded up as the meter's rate is. */
uint64_t bitsToBytesPerSecRoundedUp(uint64_t bits_per_sec) {
  return bits_per_sec / 8 + (bits_per_sec % 8 != 0 ? 1 : 0);
}

}  // namespace

const char* denyReasonCode(DenyReason reason) {
  for (const ReasonCode& entry : kReasonCodes) {
    if (entry.reason == reason) {
      return entry.code;
    }
  }
  return "unknown";
}

std::optional<DenyReason> denyReasonFromCode(std::string_view code) {
  for (const ReasonCode& entry : kReasonCodes) {
    if (code == entry.code) {
      return entry.reason;
    }
  }
  return std::nullopt;
}

const char* protocolName(uint8_t protocol) {
  return ipProtocolHasPorts(protocol) ? ipProtocolName(protocol) : nullptr;
}

std::optional<uint8_t> protocolFromName(std::string_view name) {
  const std::optional<uint8_t> number = ipProtocolNumber(name);
  return number && ipProtocolHasPorts(*number) ? number : std::nullopt;
}

std::string encodeGrant(const Grant& grant) {
  using control::JsonWriter;
  std::string out;
  out.reserve(512);
  JsonWriter w(out);
  const auto names = [&w](const std::vector<std::string>& list) {
    w.beginArray();
    for (const std::string& name : list) {
      w.value(name);
    }
    w.endArray();
  };
  w.beginObject();
  w.member("flow_id", grant.flow_id);
  writeStoredMembers(w, grant);
  w.member("dscp", uint64_t{grant.dscp});
  w.key("reverse_dscp");
  if (grant.reverse_dscp) {
    w.value(uint64_t{*grant.reverse_dscp});
  } else {
    w.null();
  }
  w.key("path");
  names(grant.path);
  w.key("reverse_path");
  names(grant.reverse_path);
  w.key("meter");
  w.beginObject();
  w.member("cir_bps", bytesToBitsPerSec(grant.meter.cir_bytes_per_sec));
  w.member("cbs_bytes", grant.meter.cbs_bytes);
  w.member("ebs_bytes", grant.meter.ebs_bytes);
  w.endObject();
  w.member("expires_at_ms", grant.expires_at_ms);
  w.member("client", grant.client_id);
  w.member("request_id", grant.request_id);
  w.endObject();
  return out;
}

Result<Grant> storedGrantFromJson(const json& object, uint64_t flow_id, uint64_t expires_at_ms,
                                  std::string client_id, std::string request_id) {
  Grant grant;
  FieldReader reader(object, "", "stored grant");
  readStoredMembers(reader, grant);
  if (reader.failed()) {
    return reader.error();
  }
  grant.flow_id = flow_id;
  grant.expires_at_ms = expires_at_ms;
  grant.client_id = std::move(client_id);
  grant.request_id = std::move(request_id);
  return grant;
}

Result<Grant> grantFromJson(const json& object) {
  Grant grant;
  FieldReader reader(object, "", "grant");
  reader.getUnsigned("flow_id", Need::Required, std::numeric_limits<uint64_t>::max(),
                     grant.flow_id);
  readStoredMembers(reader, grant);
  reader.getDscp("dscp", Need::Required, grant.dscp);
  if (reader.find("reverse_dscp", Need::Optional) != nullptr) {
    uint8_t reverse_dscp = 0;
    reader.getDscp("reverse_dscp", Need::Optional, reverse_dscp);
    grant.reverse_dscp = reverse_dscp;
  }
  reader.getStringList("path", Need::Required, grant.path);
  reader.getStringList("reverse_path", Need::Optional, grant.reverse_path);
  reader.getObject("meter", Need::Required, [&grant](FieldReader& nested) {
    uint64_t cir_bps = 0;
    nested.getUnsigned("cir_bps", Need::Required, std::numeric_limits<uint64_t>::max(), cir_bps);
    grant.meter.cir_bytes_per_sec = bitsToBytesPerSecRoundedUp(cir_bps);
    nested.getUnsigned("cbs_bytes", Need::Required, std::numeric_limits<uint64_t>::max(),
                       grant.meter.cbs_bytes);
    nested.getUnsigned("ebs_bytes", Need::Required, std::numeric_limits<uint64_t>::max(),
                       grant.meter.ebs_bytes);
  });
  reader.getUnsigned("expires_at_ms", Need::Required, std::numeric_limits<uint64_t>::max(),
                     grant.expires_at_ms);
  reader.getString("client", Need::Optional, grant.client_id);
  reader.getString("request_id", Need::Optional, grant.request_id);
  if (reader.failed()) {
    return reader.error();
  }
  return grant;
}

Result<AdmissionRequest> requestFromJson(const json& body) {
  AdmissionRequest request;
  FieldReader reader(body, "", "request body");
  reader.getString("app", Need::Optional, request.application);
  readFlow(reader, /*proto_allow_number=*/false, request.flow);
  reader.getBool("bidir", Need::Optional, request.bidirectional);
  reader.getNumber("lease", Need::Optional, request.lease_sec);
  reader.getString("client", Need::Required, request.client_id, /*allow_empty=*/false);
  reader.getString("request_id", Need::Required, request.request_id, /*allow_empty=*/false);
  reader.rejectUnknownKeys();
  if (reader.failed()) {
    return reader.error();
  }
  return request;
}

std::optional<AdmissionRequest> requestFromFlatBody(const control::FlatRequest& message) {
  using Kind = control::FlatValue::Kind;
  AdmissionRequest request;
  size_t members = 0;  // non-null members read; any other member is unknown
  // Each reader: true if the member is absent, null, or valid (then read).
  const auto text = [&](std::string_view key, bool required, std::string& out) {
    const control::FlatValue* v = message.find(key);
    if (v == nullptr || v->kind == Kind::Null) {
      members += v != nullptr ? 1 : 0;
      return !required;
    }
    ++members;
    if (v->kind != Kind::String || (required && v->text.empty())) {
      return false;
    }
    out = v->text;
    return true;
  };
  const auto number = [&](std::string_view key, uint64_t max, auto& out) {
    const control::FlatValue* v = message.find(key);
    if (v == nullptr || v->kind == Kind::Null) {
      members += v != nullptr ? 1 : 0;
      return true;
    }
    ++members;
    if (v->kind != Kind::Unsigned || v->number > max) {
      return false;
    }
    out = static_cast<std::remove_reference_t<decltype(out)>>(v->number);
    return true;
  };
  const auto address = [&](std::string_view key, IpAddress& out) {
    std::string value;
    if (!text(key, true, value)) {
      return false;
    }
    Result<IpAddress> parsed = parseIpAddress(value);
    if (!parsed) {
      return false;
    }
    out = *parsed;
    return true;
  };
  std::string proto;
  bool ok = text("app", false, request.application) && address("src", request.flow.src) &&
            number("sport", std::numeric_limits<uint16_t>::max(), request.flow.src_port) &&
            address("dst", request.flow.dst) &&
            number("dport", std::numeric_limits<uint16_t>::max(), request.flow.dst_port) &&
            text("proto", true, proto) &&
            number("lease", std::numeric_limits<uint32_t>::max(), request.lease_sec) &&
            text("client", true, request.client_id) && text("request_id", true, request.request_id);
  if (ok) {
    const std::optional<uint8_t> protocol = protocolFromName(proto);
    ok = protocol.has_value();
    request.flow.protocol = protocol.value_or(0);
  }
  if (ok) {
    if (const control::FlatValue* v = message.find("bidir")) {
      ++members;
      if (v->kind == Kind::Bool) {
        request.bidirectional = v->flag;
      } else {
        ok = v->kind == Kind::Null;
      }
    }
  }
  if (!ok || members != message.body.size()) {
    return std::nullopt;
  }
  return request;
}

json toJson(const AdmissionRequest& request) {
  return json{
      {"app", request.application},     {"src", addressJson(request.flow.src)},
      {"sport", request.flow.src_port}, {"dst", addressJson(request.flow.dst)},
      {"dport", request.flow.dst_port}, {"proto", protocolJson(request.flow.protocol)},
      {"bidir", request.bidirectional}, {"lease", request.lease_sec},
      {"client", request.client_id},    {"request_id", request.request_id},
  };
}

json toJson(const ClassUsage& usage) {
  json available = nullptr;
  if (usage.capacity_bps) {
    available = *usage.capacity_bps > usage.reserved_bps ? *usage.capacity_bps - usage.reserved_bps
                                                         : uint64_t{0};
  }
  return json{
      {"owner", usage.owner},
      {"kind", usage.is_sla ? "sla" : "network"},
      {"network", usage.network},
      {"class", usage.class_name},
      {"dscp", usage.is_sla ? json(nullptr) : json(usage.dscp)},
      {"capacity_bps", usage.capacity_bps ? json(*usage.capacity_bps) : json(nullptr)},
      {"reserved_bps", usage.reserved_bps},
      {"available_bps", available},
      {"flows", usage.flows},
  };
}

json toJson(const Denial& denial) {
  return json{{"reason", denyReasonCode(denial.reason)}, {"message", denial.message}};
}

Result<Denial> denialFromJson(const json& object) {
  Denial denial;
  FieldReader reader(object, "", "denial");
  std::string code;
  reader.getString("reason", Need::Required, code, /*allow_empty=*/false);
  reader.getString("message", Need::Optional, denial.message);
  if (reader.failed()) {
    return reader.error();
  }
  const std::optional<DenyReason> reason = denyReasonFromCode(code);
  if (!reason) {
    return makeError("reason: unknown deny reason \"" + code + "\"");
  }
  denial.reason = *reason;
  return denial;
}

}  // namespace qos::manager
