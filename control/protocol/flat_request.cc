#include "control/protocol/flat_request.h"

#include <algorithm>
#include <cstddef>
#include <exception>

#include <nlohmann/json.hpp>

#include "control/protocol/envelope.h"

namespace qos::control {
namespace {

using nlohmann::json;

/** Builds a FlatRequest from SAX events; refuses (returns false) anything not flat. */
class FlatReader final : public nlohmann::json_sax<json> {
public:
  explicit FlatReader(FlatRequest& out) : out_(out) {}

  /** All of "v" (1), "type" and "id" (non-empty strings) were seen. */
  bool complete() const { return saw_version_ && !out_.type.empty() && !out_.id.empty(); }

  bool null() override { return scalar(FlatValue::Kind::Null); }
  bool boolean(bool value) override {
    if (!scalar(FlatValue::Kind::Bool)) {
      return false;
    }
    if (value_ != nullptr) {
      value_->flag = value;
    }
    return true;
  }
  bool number_integer(number_integer_t value) override {
    // nlohmann reports integers >= 0 through number_unsigned().
    if (depth_ == 1 && key_ == "v") {
      return false;  // a version we do not speak: bad_version on the general path
    }
    static_cast<void>(value);
    return scalar(FlatValue::Kind::Other);
  }
  bool number_unsigned(number_unsigned_t value) override {
    if (depth_ == 1 && key_ == "v") {
      if (value != static_cast<uint64_t>(kProtocolVersion) || saw_version_) {
        return false;
      }
      saw_version_ = true;
      return true;
    }
    if (!scalar(FlatValue::Kind::Unsigned)) {
      return false;
    }
    if (value_ != nullptr) {
      value_->number = value;
    }
    return true;
  }
  bool number_float(number_float_t /*value*/, const string_t& /*text*/) override {
    if (depth_ == 1 && key_ == "v") {
      return false;
    }
    return scalar(FlatValue::Kind::Other);
  }
  bool string(string_t& value) override {
    if (depth_ == 1) {
      std::string* field = key_ == "type" ? &out_.type : key_ == "id" ? &out_.id : nullptr;
      if (key_ == "v" || key_ == "body") {
        return false;  // wrong type: bad_envelope on the general path
      }
      if (field != nullptr) {
        if (!field->empty() || value.empty()) {
          return false;  // duplicate, or empty: the general path decides
        }
        *field = std::move(value);
      }
      return true;  // other top-level members are ignored, as decodeRequest() does
    }
    if (!scalar(FlatValue::Kind::String)) {
      return false;
    }
    if (value_ != nullptr) {
      value_->text = std::move(value);
    }
    return true;
  }
  bool binary(binary_t& /*value*/) override { return false; }
  bool start_object(std::size_t /*size*/) override {
    if (depth_ == 0) {
      depth_ = 1;
      return true;
    }
    if (depth_ == 1 && key_ == "body" && !saw_body_) {
      saw_body_ = true;
      depth_ = 2;
      return true;
    }
    return false;  // nested deeper, or an object where the envelope wants a scalar
  }
  bool key(string_t& value) override {
    if (depth_ == 2) {
      for (size_t i = 0; i < used_; ++i) {
        if (out_.body[i].first == value) {
          return false;  // duplicate key
        }
      }
    }
    key_ = std::move(value);
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t /*size*/) override { return false; }
  bool end_array() override { return false; }
  bool parse_error(std::size_t /*position*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*error*/) override {
    return false;
  }

  /** Drops the members of the previous message that this one did not reuse. */
  void finish() { out_.body.resize(used_); }

private:
  // A scalar member: in the body, appended (reusing a slot); at the top
  // level, ignored unless it is one of the envelope's own keys.
  bool scalar(FlatValue::Kind kind) {
    value_ = nullptr;
    if (depth_ != 1 && depth_ != 2) {
      return false;  // the message itself is not an object
    }
    if (depth_ == 1) {
      return key_ != "v" && key_ != "type" && key_ != "id" && key_ != "body";
    }
    if (used_ == out_.body.size()) {
      out_.body.emplace_back();
    }
    auto& [name, value] = out_.body[used_++];
    name.swap(key_);
    value.kind = kind;
    value_ = &value;
    return true;
  }

  FlatRequest& out_;
  std::string key_;
  FlatValue* value_ = nullptr;  ///< the member being read
  size_t used_ = 0;             ///< body slots filled by this message
  int depth_ = 0;
  bool saw_version_ = false;
  bool saw_body_ = false;
};

}  // namespace

const FlatValue* FlatRequest::find(std::string_view key) const {
  for (const auto& [name, value] : body) {
    if (name == key) {
      return &value;
    }
  }
  return nullptr;
}

bool decodeFlatRequest(std::string_view bytes, FlatRequest& out) {
  if (bytes.size() > kMaxMessageBytes) {
    return false;
  }
  out.type.clear();
  out.id.clear();
  FlatReader reader(out);
  bool ok = false;
  try {
    ok = json::sax_parse(bytes, &reader, json::input_format_t::json, /*strict=*/true);
  } catch (const std::exception&) {
    return false;  // allocation failure: the general path will say so
  }
  reader.finish();
  return ok && reader.complete();
}

}  // namespace qos::control
