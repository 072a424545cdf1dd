// JsonWriter: JSON text written straight into a string, for the messages a
// daemon sends on its hot path (a grant, its reply envelope, its stored row).
//
// nlohmann::json builds a tree of std::map nodes and then walks it; for a
// grant that is some 40 allocations and frees per message, which was most of
// qosmgr's time under load.  This writes the same text with none of them.
// Everything else (listings, errors, tests) keeps using nlohmann::json, and a
// test checks that both agree.
//
// The output is compact (no spaces) and always valid JSON: strings are
// escaped as RFC 8259 requires (", \ and control characters), and bytes that
// are not valid UTF-8 become U+FFFD, as nlohmann's error_handler_t::replace
// does.  The caller writes keys and values in a valid order: the writer
// inserts the commas, it does not check the nesting.
//
//   JsonWriter w(out);
//   w.beginObject();
//   w.key("flow_id"); w.value(uint64_t{7});
//   w.key("path"); w.beginArray(); w.value("lan-a"); w.endArray();
//   w.endObject();                           // {"flow_id":7,"path":["lan-a"]}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace qos::control {

class JsonWriter {
public:
  /** Appends to @p out, which it does not clear. */
  explicit JsonWriter(std::string& out) : out_(out) {}

  void beginObject() {
    separate();
    out_ += '{';
    first_ = true;
  }
  void endObject() {
    out_ += '}';
    first_ = false;
  }
  void beginArray() {
    separate();
    out_ += '[';
    first_ = true;
  }
  void endArray() {
    out_ += ']';
    first_ = false;
  }
  /** An object member's key; the next call writes its value. */
  void key(std::string_view name) {
    separate();
    appendString(name);
    out_ += ':';
    after_key_ = true;
  }

  /** A member: key(@p name), then value(@p v). */
  template <typename T>
  void member(std::string_view name, const T& v) {
    key(name);
    value(v);
  }

  void value(std::string_view text) {
    separate();
    appendString(text);
  }
  void value(const char* text) { value(std::string_view(text)); }
  void value(uint64_t number);
  void value(bool flag) {
    separate();
    out_ += flag ? "true" : "false";
  }
  void null() {
    separate();
    out_ += "null";
  }
  /** Already encoded JSON (one value), copied as is. */
  void raw(std::string_view json) {
    separate();
    out_ += json;
  }

private:
  void separate() {
    if (after_key_) {
      after_key_ = false;
    } else if (!first_) {
      out_ += ',';
    }
    first_ = false;
  }
  void appendString(std::string_view text);

  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace qos::control
