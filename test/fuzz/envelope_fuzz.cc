// Fuzz target for the control envelope: decodeRequest() and decodeReply()
// on any bytes never crash, never recurse on the input's depth, and what
// they accept encodes back to text that decodes to the same message.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "control/protocol/envelope.h"

namespace {

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "envelope_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto request = qos::control::decodeRequest(bytes)) {
    check(!request->type.empty() && !request->id.empty(), "a request without type or id");
    check(request->body.is_object(), "a request body that is not an object");
    auto again = qos::control::decodeRequest(qos::control::encodeRequest(*request));
    check(again.ok(), "a decoded request does not decode once encoded");
    check(again->type == request->type && again->id == request->id && again->body == request->body,
          "a request changed through encode and decode");
  } else {
    const qos::control::Reply reply = qos::control::decodeFailureReply(bytes, request.error());
    check(reply.status == qos::control::ReplyStatus::Error, "a refusal that is not an error");
    check(!reply.error.code.empty(), "a refusal without a code");
  }
  if (auto reply = qos::control::decodeReply(bytes)) {
    auto again = qos::control::decodeReply(qos::control::encodeReply(*reply));
    check(again.ok(), "a decoded reply does not decode once encoded");
    check(again->id == reply->id && again->status == reply->status &&
              again->error.code == reply->error.code && again->body == reply->body,
          "a reply changed through encode and decode");
  }
  return 0;
}
