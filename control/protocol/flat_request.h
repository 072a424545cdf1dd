// FlatRequest: the fast way in for the messages a daemon gets most, a request
// whose body is one level of scalars ({"flow_id":7}, a provisioning body).
//
// decodeRequest() parses into an nlohmann::json tree (a std::map node and a
// heap string per member) that the caller then reads once and frees; under
// load that was qosmgr's largest cost after the grant's encoding.  This reads
// the same text with simdjson's On-Demand parser (SIMD stage 1: structure,
// UTF-8 and control characters checked over the whole text at once) into a
// flat list of members that keeps its capacity from one message to the next,
// as do the parser and the padded copy of the text it needs.
//
// It is an accelerator, never a second set of rules: it accepts a subset of
// what decodeRequest() accepts and reads it identically, and says "not mine"
// (false) for everything else, including every message decodeRequest()
// refuses, nested bodies, duplicate keys, and numbers that are not unsigned
// integers.  The caller then takes the general path, which gives the
// canonical answer and error message.  A test holds the two paths equal.
//
// The subset stops short wherever simdjson and nlohmann could read the same
// valid text differently, or where following nlohmann would take more code
// than the case is worth: a message with a backslash anywhere (so no string
// or key has an escape: \u0000, surrogate pairs), a number other than a
// plain unsigned integer (1.0, 1e2, -0, 18446744073709551616), a duplicate
// or empty body key, a duplicate envelope key (nlohmann keeps the last), an
// object or array besides the envelope and its body, a byte order mark or a
// NUL byte.  What qosctl, libqosclient and qosmgr-load send holds none of
// these, unless a string in it needs escaping; each costs a trip through the
// general path, no more.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qos::control {

/** A body member's value. */
struct FlatValue {
  enum class Kind : uint8_t {
    Null,
    Bool,
    Unsigned,  ///< an integer >= 0
    String,
  };
  Kind kind = Kind::Null;
  bool flag = false;
  uint64_t number = 0;
  std::string text;
};

/** decodeFlatRequest()'s parser and padded text; defined in flat_request.cc. */
class FlatParser;

/**
 * One decoded message, and the memory to decode the next one into.  Keep
 * one per thread that decodes and reuse it: after the first few messages a
 * decode allocates nothing.  A copy holds the same message but makes its own
 * parser when it first decodes.
 */
struct FlatRequest {
  FlatRequest();
  ~FlatRequest();
  FlatRequest(const FlatRequest& other);
  FlatRequest& operator=(const FlatRequest& other);
  FlatRequest(FlatRequest&& other) noexcept;
  FlatRequest& operator=(FlatRequest&& other) noexcept;

  std::string type;
  std::string id;
  std::vector<std::pair<std::string, FlatValue>> body;  ///< members in order, keys distinct

  /** The member named @p key, or nullptr. */
  const FlatValue* find(std::string_view key) const;

private:
  friend bool decodeFlatRequest(std::string_view bytes, FlatRequest& out);

  std::unique_ptr<FlatParser> parser_;  ///< made by the first decode, then reused
};

/**
 * Reads @p bytes into @p out (reusing its capacity) if it is a request that
 * decodeRequest() accepts, with protocol version 1, a body of scalars only,
 * no duplicate keys and no scalar at the top level other than those
 * decodeRequest() reads ("v", "type", "id") or ignores; and within the
 * subset described at the top of this file (no escapes, unsigned integers
 * only, no empty body key).  @p bytes need no padding: they are copied.
 * Never throws.
 * @return false: not a message for this path (out is then unspecified).
 */
bool decodeFlatRequest(std::string_view bytes, FlatRequest& out);

}  // namespace qos::control
