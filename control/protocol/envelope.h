// The versioned envelope every control message travels in, whatever its type.
//
//   request: {"v":1,"type":"provision","id":"<request id>","body":{...}}
//   reply:   {"v":1,"type":"reply","id":"<same id>","status":"ok"|"denied"|"error",
//             "error":{"code":"...","message":"..."},"body":{...}}
//
// "error" is present exactly when status is not "ok"; a denial carries its
// reason code and message there too.  "body" is always an object; a request
// may leave it out (read as {}).  Unknown top-level keys are ignored, so a
// field can be added within version 1 without breaking older peers.  What the
// body of each type holds, and whether a type exists at all, is not the
// envelope's business: the server answers an unknown type with "unknown_type".
//
// Decoding never throws and never recurses on attacker-controlled depth: the
// size is checked first, then a linear scan refuses nesting deeper than
// kMaxNestingDepth before the JSON parser ever sees the text.
//
// Error codes of a request that cannot be decoded (the machine-readable part
// of the error reply):
//   too_large     more than kMaxMessageBytes
//   too_deep      arrays/objects nested deeper than kMaxNestingDepth
//   bad_json      not JSON (or not UTF-8)
//   bad_envelope  not an object, or "v", "type", "id" or "body" missing or of the wrong type
//   bad_version   "v" is an integer this build does not speak
// A decode failure comes back as a qos::Error whose message is "CODE: detail"
// (e.g. "bad_version: protocol version 2 is not supported; supported: 1");
// wireErrorOf() splits it and decodeFailureReply() builds the whole reply.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/common/result.h"

namespace qos::control {

/** The only envelope version this build speaks. */
inline constexpr int64_t kProtocolVersion = 1;
/** Largest request accepted, in bytes of encoded JSON. */
inline constexpr size_t kMaxMessageBytes = size_t{64} * 1024;
/** Largest reply accepted (listings of many flows are bigger than any request). */
inline constexpr size_t kMaxReplyBytes = size_t{16} * 1024 * 1024;
/** Deepest nesting of arrays and objects accepted; the envelope itself is depth 1. */
inline constexpr size_t kMaxNestingDepth = 32;

/** Machine-readable error codes the envelope layer produces. */
inline constexpr std::string_view kCodeTooLarge = "too_large";
inline constexpr std::string_view kCodeTooDeep = "too_deep";
inline constexpr std::string_view kCodeBadJson = "bad_json";
inline constexpr std::string_view kCodeBadEnvelope = "bad_envelope";
inline constexpr std::string_view kCodeBadVersion = "bad_version";

struct Request {
  std::string type;                                ///< e.g. "provision"; never empty
  std::string id;                                  ///< the client's request id; never empty
  nlohmann::json body = nlohmann::json::object();  ///< always an object
  /**
   * The body already encoded as a JSON object (fields.h encodeObject()); when
   * not empty, encodeRequest() sends it instead of @ref body.  decodeRequest()
   * never sets it.
   */
  std::string body_json;
};

enum class ReplyStatus { Ok, Denied, Error };

/** The "error" member of a reply: a snake_case code and a sentence for humans. */
struct WireError {
  std::string code;     ///< e.g. "bad_json", "no_capacity", "unknown_type"
  std::string message;  ///< one line, already with its context
  bool operator==(const WireError&) const = default;
};

struct Reply {
  std::string id;  ///< the request's id; empty when the request had none we could read
  ReplyStatus status = ReplyStatus::Ok;
  WireError error;                                 ///< encoded only when status != Ok
  nlohmann::json body = nlohmann::json::object();  ///< always an object
  /**
   * The body already encoded as a JSON object (see json_writer.h); when not
   * empty, encodeReply() sends it instead of @ref body.  decodeReply() never
   * sets it.
   */
  std::string body_json;
};

/** "ok", "denied" or "error". */
const char* replyStatusName(ReplyStatus status);

/**
 * Decodes a request.  Never throws.
 * @return the request, or an Error whose message is "CODE: detail" with CODE
 *         one of the codes listed at the top of this file.
 */
Result<Request> decodeRequest(std::string_view bytes);

/** Encodes a request.  Invalid UTF-8 in strings is replaced, never thrown. */
std::string encodeRequest(const Request& request);

/** Encodes a reply.  Invalid UTF-8 in strings is replaced, never thrown. */
std::string encodeReply(const Reply& reply);
/** The same into @p out, replacing what it held: a caller that reuses it allocates no more. */
void encodeReply(const Reply& reply, std::string& out);

/**
 * Decodes a reply (at most kMaxReplyBytes, nesting at most kMaxNestingDepth).
 * Never throws.  @return the reply, or an Error "CODE: detail" as for requests.
 */
Result<Reply> decodeReply(std::string_view bytes);

/**
 * Splits an Error from decodeRequest()/decodeReply() into its code and
 * message.  An error without a known code prefix becomes {"internal", message}.
 */
WireError wireErrorOf(const Error& error);

/**
 * The error reply for a request that decodeRequest() refused with @p error.
 * It echoes the request's "id" when @p bytes hold one that can be read (a
 * JSON object with a string "id"), and "" otherwise.
 */
Reply decodeFailureReply(std::string_view bytes, const Error& error);

}  // namespace qos::control
