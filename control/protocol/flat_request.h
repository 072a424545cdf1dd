// FlatRequest: the fast way in for the messages a daemon gets most, a request
// whose body is one level of scalars ({"flow_id":7}, a provisioning body).
//
// decodeRequest() parses into an nlohmann::json tree (a std::map node and a
// heap string per member) that the caller then reads once and frees; under
// load that was qosmgr's largest cost after the grant's encoding.  This reads
// the same text with nlohmann's SAX parser into a flat list of members that
// keeps its capacity from one message to the next.
//
// It is an accelerator, never a second set of rules: it accepts a subset of
// what decodeRequest() accepts and reads it identically, and says "not mine"
// (false) for everything else, including every message decodeRequest()
// refuses, nested bodies, duplicate keys, and numbers that are not unsigned
// integers.  The caller then takes the general path, which gives the
// canonical answer and error message.  A test holds the two paths equal.
#pragma once

#include <cstdint>
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
    Other,  ///< a negative or fractional number: the general path names the error
  };
  Kind kind = Kind::Null;
  bool flag = false;
  uint64_t number = 0;
  std::string text;
};

struct FlatRequest {
  std::string type;
  std::string id;
  std::vector<std::pair<std::string, FlatValue>> body;  ///< members in order, keys distinct

  /** The member named @p key, or nullptr. */
  const FlatValue* find(std::string_view key) const;
};

/**
 * Reads @p bytes into @p out (reusing its capacity) if it is a request that
 * decodeRequest() accepts, with protocol version 1, a body of scalars only,
 * no duplicate keys and no scalar at the top level other than those
 * decodeRequest() reads ("v", "type", "id") or ignores.  Never throws.
 * @return false: not a message for this path (out is then unspecified).
 */
bool decodeFlatRequest(std::string_view bytes, FlatRequest& out);

}  // namespace qos::control
