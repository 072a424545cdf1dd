// Fields: how every control message is described once and then written and
// read from that one description.
//
// A message is a plain struct with a static member template that names its
// members on the wire, in order, with their rules:
//
//   struct RefreshRequest {
//     uint64_t flow_id = 0;
//     uint32_t lease_sec = 0;
//     template <typename Self, typename Fields>
//     static void fields(Self& self, Fields& f) {
//       f.field("flow_id", self.flow_id, Need::Required);
//       f.field("lease", self.lease_sec, Need::Optional);
//     }
//   };
//
// Three visitors walk that description:
//   JsonFieldWriter  writes the members into a JsonWriter (no tree is built);
//   TreeFieldReader  reads them from a parsed nlohmann::json object, with an
//                    error naming the first bad field ("profile.rate_bps:
//                    must be an unsigned integer, got \"fast\"");
//   FlatFieldReader  reads a flat body (flat_request.h) on the fast path; it
//                    only says yes or no, and anything it does not take goes
//                    to the tree path, which names the error.
// so a member cannot be written one way and read another.  A description
// may call another type's fields() on a nested member to put its members at
// the same level (a provision's flow: src, sport, dst, dport, proto).
//
// The visitors' methods, each (name, member, ...):
//   field       strings, booleans, unsigned integers (with an optional
//               maximum), addresses ("198.18.1.10"; null when unset), lists of
//               strings, and std::optional of any of these (null when empty)
//   protocol    an IP protocol: "udp" | "tcp" | "sctp", or with
//               ProtocolForm::AnyNumber also any number 0..255 (written by
//               name when it has one)
//   enumeration a value written as its name from a table of {value, name}
//   object      a nested object of another described type
//   objects     a list of objects of another described type
//
// Reading rules: a member that is absent or null reads as absent: an error
// if it is Need::Required or Need::NonEmpty, else the member keeps its
// default.  Need::NonEmpty also refuses an empty string or list.  A reader
// made with Unknown::Reject refuses members the description does not name
// (a misspelt field must never be ignored in a request); replies are read
// with Unknown::Ignore, so a newer peer can add members.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/common/ip_prefix.h"
#include "control/common/ip_protocol.h"
#include "control/common/result.h"
#include "control/protocol/flat_request.h"
#include "control/protocol/json_writer.h"

namespace qos::control {

/** Whether a member must be there (null counts as absent). */
enum class Need : uint8_t {
  Optional,
  Required,
  NonEmpty,  ///< required, and a string or list must not be empty
};

/** What an IP protocol member may hold. */
enum class ProtocolForm : uint8_t {
  PortsByName,  ///< "udp", "tcp" or "sctp": a flow with ports (requests)
  AnyNumber,    ///< those names or any number 0..255 (grants, appliance rules)
};

/** Unknown members of an object being read. */
enum class Unknown : uint8_t { Reject, Ignore };

/** One row of an enumeration's table. */
template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

namespace fields_detail {

template <typename T>
inline constexpr bool kIsUnsigned =
    std::is_integral_v<T>&& std::is_unsigned_v<T> && !std::is_same_v<T, bool>;

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};

/** "udp", "tcp", "sctp" for those numbers, nullptr for any other. */
constexpr const char* portProtocolName(uint8_t protocol) {
  return ipProtocolHasPorts(protocol) ? ipProtocolName(protocol) : nullptr;
}

}  // namespace fields_detail

/** The number of "udp", "tcp" or "sctp"; nullopt for any other name. */
constexpr std::optional<uint8_t> portProtocolNumber(std::string_view name) {
  const std::optional<uint8_t> number = ipProtocolNumber(name);
  return number && ipProtocolHasPorts(*number) ? number : std::nullopt;
}

// ---------------------------------------------------------------------------
// Writing

/** Writes a described object's members into an open JSON object. */
class JsonFieldWriter {
public:
  explicit JsonFieldWriter(JsonWriter& w) : w_(w) {}

  template <typename T>
  void field(std::string_view name, const T& value, Need = Need::Optional,
             uint64_t = std::numeric_limits<uint64_t>::max()) {
    w_.key(name);
    writeValue(value);
  }

  void protocol(std::string_view name, uint8_t protocol, ProtocolForm, Need = Need::Required) {
    w_.key(name);
    if (const char* known = ipProtocolName(protocol)) {
      w_.value(known);
    } else {
      w_.value(uint64_t{protocol});
    }
  }

  template <typename E, size_t N>
  void enumeration(std::string_view name, E value, const std::array<EnumName<E>, N>& table,
                   Need = Need::Required) {
    w_.key(name);
    for (const EnumName<E>& row : table) {
      if (row.value == value) {
        w_.value(row.name);
        return;
      }
    }
    w_.null();
  }

  template <typename T>
  void object(std::string_view name, const T& value, Need = Need::Required) {
    w_.key(name);
    writeObject(value);
  }

  template <typename T>
  void objects(std::string_view name, const std::vector<T>& values, Need = Need::Optional) {
    w_.key(name);
    w_.beginArray();
    for (const T& value : values) {
      writeObject(value);
    }
    w_.endArray();
  }

  template <typename T>
  void writeObject(const T& value) {
    w_.beginObject();
    T::fields(value, *this);
    w_.endObject();
  }

private:
  void writeValue(const std::string& text) { w_.value(std::string_view(text)); }
  void writeValue(bool flag) { w_.value(flag); }
  void writeValue(const IpAddress& address) {
    if (address.family == 0) {
      w_.null();
    } else {
      w_.value(formatIpAddress(address));
    }
  }
  void writeValue(const std::vector<std::string>& list) {
    w_.beginArray();
    for (const std::string& item : list) {
      w_.value(std::string_view(item));
    }
    w_.endArray();
  }
  template <typename T>
  void writeValue(const std::optional<T>& value) {
    if (value) {
      writeValue(*value);
    } else {
      w_.null();
    }
  }
  template <typename T>
  requires fields_detail::kIsUnsigned<T>
  void writeValue(T number) { w_.value(static_cast<uint64_t>(number)); }

  JsonWriter& w_;
};

/** A described message as a JSON object. */
template <typename T>
std::string encodeObject(const T& message) {
  std::string out;
  JsonWriter w(out);
  JsonFieldWriter(w).writeObject(message);
  return out;
}

/** Appends a described message's members to an open object (to add members after them). */
template <typename T>
void encodeMembers(const T& message, JsonWriter& w) {
  JsonFieldWriter writer(w);
  T::fields(message, writer);
}

// ---------------------------------------------------------------------------
// Reading a parsed tree

/**
 * Reads the members of one JSON object, keeping the first error only, so a
 * description is read straight through and checked once at the end.  Every
 * method leaves its member untouched when it is absent or wrong.
 */
class TreeFieldReader {
public:
  /**
   * @param path the object's name in errors ("profile"); "" at the top
   * @param what names a top-level object in the error when it is not an object
   */
  TreeFieldReader(const nlohmann::json& object, std::string path, Unknown unknown,
                  std::string_view what = "")
      : object_(object), path_(std::move(path)), unknown_(unknown) {
    if (!object_.is_object()) {
      const std::string message = "must be an object, got " + shown(object_);
      error_ = makeError(ErrorCode::Invalid, path_.empty() ? std::string(what) + " " + message
                                                           : path_ + ": " + message);
    }
  }

  bool failed() const { return error_.has_value(); }
  const Error& error() const { return *error_; }

  /** Records an error for @p key ("" for the object itself), unless one is recorded. */
  void fail(std::string_view key, const std::string& message) {
    if (error_) {
      return;
    }
    const std::string full = key.empty() ? path_ : name(key);
    error_ = makeError(ErrorCode::Invalid, full.empty() ? message : full + ": " + message);
  }

  template <typename T>
  void field(std::string_view key, T& out, Need need = Need::Optional,
             uint64_t max = std::numeric_limits<uint64_t>::max()) {
    const nlohmann::json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if constexpr (fields_detail::IsOptional<T>::value) {
      typename T::value_type inner{};
      if (readValue(key, *value, need, max, inner)) {
        out = std::move(inner);
      }
    } else {
      readValue(key, *value, need, max, out);
    }
  }

  void protocol(std::string_view key, uint8_t& out, ProtocolForm form, Need need = Need::Required) {
    const nlohmann::json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    const bool any_number = form == ProtocolForm::AnyNumber;
    if (value->is_string()) {
      const std::string& text = value->get_ref<const std::string&>();
      const std::optional<uint8_t> number =
          any_number ? ipProtocolNumber(text) : portProtocolNumber(text);
      if (number) {
        out = *number;
        return;
      }
    } else if (any_number && value->is_number_integer()) {
      uint8_t number = 0;
      if (readValue(key, *value, need, std::numeric_limits<uint8_t>::max(), number)) {
        out = number;
      }
      return;
    }
    fail(key, std::string(any_number ? "must be a protocol name or number 0..255"
                                     : "must be \"udp\", \"tcp\" or \"sctp\"") +
                  ", got " + shown(*value));
  }

  template <typename E, size_t N>
  void enumeration(std::string_view key, E& out, const std::array<EnumName<E>, N>& table,
                   Need need = Need::Required) {
    const nlohmann::json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if (value->is_string()) {
      const std::string& text = value->get_ref<const std::string&>();
      for (const EnumName<E>& row : table) {
        if (row.name == text) {
          out = row.value;
          return;
        }
      }
    }
    std::string names;
    for (const EnumName<E>& row : table) {
      names += (names.empty() ? "\"" : ", \"") + std::string(row.name) + "\"";
    }
    fail(key, "must be one of " + names + ", got " + shown(*value));
  }

  template <typename T>
  void object(std::string_view key, T& out, Need need = Need::Required) {
    const nlohmann::json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    readNested(name(key), *value, out);
  }

  template <typename T>
  void objects(std::string_view key, std::vector<T>& out, Need need = Need::Optional) {
    const nlohmann::json* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if (!value->is_array()) {
      fail(key, "must be an array of objects, got " + shown(*value));
      return;
    }
    if (need == Need::NonEmpty && value->empty()) {
      fail(key, "must not be empty");
      return;
    }
    std::vector<T> items(value->size());
    for (size_t i = 0; i < value->size(); ++i) {
      if (!readNested(name(key) + "[" + std::to_string(i) + "]", (*value)[i], items[i])) {
        return;
      }
    }
    out = std::move(items);
  }

  /** Records an error for the first member no method asked for (Unknown::Reject). */
  void finish() {
    if (failed() || unknown_ == Unknown::Ignore) {
      return;
    }
    for (const auto& [key, value] : object_.items()) {
      if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        fail(key, "unknown field");
        return;
      }
    }
  }

  /** A value as an error message shows it: JSON text, cut short if long. */
  static std::string shown(const nlohmann::json& value) {
    constexpr size_t kMaxShownChars = 48;
    std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (text.size() > kMaxShownChars) {
      text.resize(kMaxShownChars);
      text += "...";
    }
    return text;
  }

private:
  std::string name(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  /** The member, or nullptr when absent or null (an error if required). */
  const nlohmann::json* find(std::string_view key, Need need) {
    known_.push_back(key);
    if (failed()) {
      return nullptr;
    }
    const auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) {
      if (need != Need::Optional) {
        fail(key, "missing");
      }
      return nullptr;
    }
    return &*it;
  }

  template <typename T>
  bool readNested(const std::string& path, const nlohmann::json& value, T& out) {
    TreeFieldReader nested(value, path, unknown_);
    T::fields(out, nested);
    nested.finish();
    if (nested.failed()) {
      if (!failed()) {
        error_ = nested.error();
      }
      return false;
    }
    return true;
  }

  bool readValue(std::string_view key, const nlohmann::json& value, Need need, uint64_t,
                 std::string& out) {
    if (!value.is_string()) {
      fail(key, "must be a string, got " + shown(value));
      return false;
    }
    const std::string& text = value.get_ref<const std::string&>();
    if (need == Need::NonEmpty && text.empty()) {
      fail(key, "must not be empty");
      return false;
    }
    out = text;
    return true;
  }

  bool readValue(std::string_view key, const nlohmann::json& value, Need, uint64_t, bool& out) {
    if (!value.is_boolean()) {
      fail(key, "must be true or false, got " + shown(value));
      return false;
    }
    out = value.get<bool>();
    return true;
  }

  bool readValue(std::string_view key, const nlohmann::json& value, Need, uint64_t,
                 IpAddress& out) {
    if (!value.is_string()) {
      fail(key, "must be an IPv4 or IPv6 address string, got " + shown(value));
      return false;
    }
    Result<IpAddress> address = parseIpAddress(value.get_ref<const std::string&>());
    if (!address) {
      fail(key, address.error().message);
      return false;
    }
    out = *address;
    return true;
  }

  bool readValue(std::string_view key, const nlohmann::json& value, Need need, uint64_t,
                 std::vector<std::string>& out) {
    if (!value.is_array()) {
      fail(key, "must be an array of strings, got " + shown(value));
      return false;
    }
    if (need == Need::NonEmpty && value.empty()) {
      fail(key, "must not be empty");
      return false;
    }
    std::vector<std::string> items;
    items.reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
      const nlohmann::json& item = value[i];
      if (!item.is_string()) {
        fail(std::string(key) + "[" + std::to_string(i) + "]",
             "must be a string, got " + shown(item));
        return false;
      }
      items.push_back(item.get<std::string>());
    }
    out = std::move(items);
    return true;
  }

  template <typename T>
  requires fields_detail::kIsUnsigned<T>
  bool readValue(std::string_view key, const nlohmann::json& value, Need, uint64_t max, T& out) {
    const uint64_t limit = std::min<uint64_t>(max, std::numeric_limits<T>::max());
    const std::string range =
        limit == std::numeric_limits<uint64_t>::max() ? "" : " in 0.." + std::to_string(limit);
    uint64_t number = 0;
    if (value.is_number_unsigned()) {
      number = value.get<uint64_t>();
    } else if (value.is_number_integer() && value.get<int64_t>() >= 0) {
      number = static_cast<uint64_t>(value.get<int64_t>());
    } else {
      fail(key, "must be an unsigned integer" + range + ", got " + shown(value));
      return false;
    }
    if (number > limit) {
      fail(key, "must be an unsigned integer" + range + ", got " + shown(value));
      return false;
    }
    out = static_cast<T>(number);
    return true;
  }

  const nlohmann::json& object_;
  std::string path_;
  Unknown unknown_;
  std::optional<Error> error_;
  /** The keys asked for: the descriptions' string literals, so views are safe. */
  std::vector<std::string_view> known_;
};

/**
 * Reads a described message from a parsed JSON object.
 * @param what names the object in the error when it is not an object ("request body")
 * @return the message, or an Error (ErrorCode::Invalid) naming the first bad field
 */
template <typename T>
Result<T> decodeObject(const nlohmann::json& object, Unknown unknown, std::string_view what) {
  T message{};
  TreeFieldReader reader(object, "", unknown, what);
  T::fields(message, reader);
  reader.finish();
  if (reader.failed()) {
    return reader.error();
  }
  return message;
}

// ---------------------------------------------------------------------------
// Reading a flat body (the fast path)

/**
 * Reads a described message from a flat body: yes if the tree reader, with
 * Unknown::Reject, would read exactly the same message from the same text;
 * no for anything else, including every message it would refuse.  Nested
 * objects and lists are never flat: a description that has them is always
 * refused here.
 */
class FlatFieldReader {
public:
  explicit FlatFieldReader(const FlatRequest& message) : message_(message) {}

  bool ok() const { return ok_ && members_ == message_.body.size(); }

  template <typename T>
  void field(std::string_view key, T& out, Need need = Need::Optional,
             uint64_t max = std::numeric_limits<uint64_t>::max()) {
    const FlatValue* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if constexpr (fields_detail::IsOptional<T>::value) {
      typename T::value_type inner{};
      if (readValue(*value, need, max, inner)) {
        out = std::move(inner);
      }
    } else {
      readValue(*value, need, max, out);
    }
  }

  void protocol(std::string_view key, uint8_t& out, ProtocolForm form, Need need = Need::Required) {
    const FlatValue* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if (value->kind == FlatValue::Kind::String) {
      const std::optional<uint8_t> number = form == ProtocolForm::AnyNumber
                                                ? ipProtocolNumber(value->text)
                                                : portProtocolNumber(value->text);
      if (number) {
        out = *number;
        return;
      }
    } else if (form == ProtocolForm::AnyNumber) {
      readValue(*value, need, std::numeric_limits<uint8_t>::max(), out);
      return;
    }
    ok_ = false;
  }

  template <typename E, size_t N>
  void enumeration(std::string_view key, E& out, const std::array<EnumName<E>, N>& table,
                   Need need = Need::Required) {
    const FlatValue* value = find(key, need);
    if (value == nullptr) {
      return;
    }
    if (value->kind == FlatValue::Kind::String) {
      for (const EnumName<E>& row : table) {
        if (row.name == value->text) {
          out = row.value;
          return;
        }
      }
    }
    ok_ = false;
  }

  template <typename T>
  void object(std::string_view, T&, Need = Need::Required) {
    ok_ = false;
  }
  template <typename T>
  void objects(std::string_view, std::vector<T>&, Need = Need::Optional) {
    ok_ = false;
  }

private:
  /** The member, or nullptr when absent or null (then ok_ is false if required). */
  const FlatValue* find(std::string_view key, Need need) {
    if (!ok_) {
      return nullptr;
    }
    const FlatValue* value = message_.find(key);
    if (value != nullptr) {
      ++members_;
    }
    if (value == nullptr || value->kind == FlatValue::Kind::Null) {
      if (need != Need::Optional) {
        ok_ = false;
      }
      return nullptr;
    }
    return value;
  }

  bool readValue(const FlatValue& value, Need need, uint64_t, std::string& out) {
    if (value.kind != FlatValue::Kind::String || (need == Need::NonEmpty && value.text.empty())) {
      ok_ = false;
      return false;
    }
    out = value.text;
    return true;
  }
  bool readValue(const FlatValue& value, Need, uint64_t, bool& out) {
    if (value.kind != FlatValue::Kind::Bool) {
      ok_ = false;
      return false;
    }
    out = value.flag;
    return true;
  }
  bool readValue(const FlatValue& value, Need, uint64_t, IpAddress& out) {
    if (value.kind != FlatValue::Kind::String) {
      ok_ = false;
      return false;
    }
    Result<IpAddress> address = parseIpAddress(value.text);
    if (!address) {
      ok_ = false;
      return false;
    }
    out = *address;
    return true;
  }
  bool readValue(const FlatValue&, Need, uint64_t, std::vector<std::string>&) {
    ok_ = false;
    return false;
  }
  template <typename T>
  requires fields_detail::kIsUnsigned<T>
  bool readValue(const FlatValue& value, Need, uint64_t max, T& out) {
    const uint64_t limit = std::min<uint64_t>(max, std::numeric_limits<T>::max());
    if (value.kind != FlatValue::Kind::Unsigned || value.number > limit) {
      ok_ = false;
      return false;
    }
    out = static_cast<T>(value.number);
    return true;
  }

  const FlatRequest& message_;
  bool ok_ = true;
  size_t members_ = 0;  ///< members of the body read (null included); any other is unknown
};

/** A described message from a flat body; nullopt if the tree path must decide (see above). */
template <typename T>
std::optional<T> decodeFlat(const FlatRequest& message) {
  T out{};
  FlatFieldReader reader(message);
  T::fields(out, reader);
  if (!reader.ok()) {
    return std::nullopt;
  }
  return out;
}

}  // namespace qos::control
