#include "control/protocol/envelope.h"

#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qos::control {
namespace {

using nlohmann::json;

/** Decodes @p bytes expecting failure; returns the split code and message. */
WireError requestFailure(std::string_view bytes) {
  const Result<Request> request = decodeRequest(bytes);
  EXPECT_FALSE(request.ok()) << "decoded: " << bytes.substr(0, 80);
  return request.ok() ? WireError{} : wireErrorOf(request.error());
}

TEST(EnvelopeTest, DecodesValidRequest) {
  const Result<Request> request = decodeRequest(
      R"({"v":1,"type":"provision","id":"r-42","body":{"app":"voip","sport":40000}})");
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->type, "provision");
  EXPECT_EQ(request->id, "r-42");
  EXPECT_EQ(request->body, json({{"app", "voip"}, {"sport", 40000}}));
}

TEST(EnvelopeTest, MissingBodyReadsAsEmptyObjectAndUnknownKeysAreIgnored) {
  const Result<Request> request = decodeRequest(R"({"v":1,"type":"flows","id":"x","later":true})");
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_TRUE(request->body.is_object());
  EXPECT_TRUE(request->body.empty());
}

TEST(EnvelopeTest, RequestRoundTrip) {
  Request request;
  request.type = "release";
  request.id = "abc-1";
  request.body = json{{"flow_id", 7}, {"nested", {{"list", {1, 2, 3}}}}};
  const std::string bytes = encodeRequest(request);
  EXPECT_EQ(bytes.rfind("{\"v\":1,", 0), 0U) << bytes;
  const Result<Request> decoded = decodeRequest(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->type, request.type);
  EXPECT_EQ(decoded->id, request.id);
  EXPECT_EQ(decoded->body, request.body);
}

TEST(EnvelopeTest, RefusesBadJson) {
  for (const std::string_view bytes :
       {std::string_view("{\"v\":1,"), std::string_view(""), std::string_view("not json"),
        std::string_view("{\"v\":1}}"), std::string_view("{\"v\":1,\"id\":\"\xff\"}")}) {
    EXPECT_EQ(requestFailure(bytes).code, "bad_json") << bytes;
  }
}

TEST(EnvelopeTest, RefusesNonObjects) {
  for (const std::string_view bytes : {"[1,2]", "42", "\"text\"", "null", "true"}) {
    const WireError error = requestFailure(bytes);
    EXPECT_EQ(error.code, "bad_envelope") << bytes;
    EXPECT_NE(error.message.find("not a JSON object"), std::string::npos) << error.message;
  }
}

TEST(EnvelopeTest, RefusesWrongVersionNamingTheSupportedOne) {
  const WireError error = requestFailure(R"({"v":2,"type":"provision","id":"a","body":{}})");
  EXPECT_EQ(error.code, "bad_version");
  EXPECT_NE(error.message.find("version 2"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("supported: 1"), std::string::npos) << error.message;
  EXPECT_EQ(requestFailure(R"({"v":-1,"type":"t","id":"a"})").code, "bad_version");
  EXPECT_EQ(requestFailure(R"({"v":1.0,"type":"t","id":"a"})").code, "bad_envelope");
  EXPECT_EQ(requestFailure(R"({"v":"1","type":"t","id":"a"})").code, "bad_envelope");
  EXPECT_EQ(requestFailure(R"({"type":"t","id":"a"})").code, "bad_envelope");
}

TEST(EnvelopeTest, RefusesMissingOrWrongTypedFields) {
  struct Case {
    const char* bytes;
    const char* field;
  };
  for (const Case& c : {
           Case{R"({"v":1,"type":"provision","body":{}})", "\"id\""},
           Case{R"({"v":1,"type":"provision","id":7,"body":{}})", "\"id\""},
           Case{R"({"v":1,"type":"provision","id":"","body":{}})", "\"id\""},
           Case{R"({"v":1,"id":"a","body":{}})", "\"type\""},
           Case{R"({"v":1,"type":["x"],"id":"a"})", "\"type\""},
           Case{R"({"v":1,"type":"provision","id":"a","body":[]})", "\"body\""},
           Case{R"({"v":1,"type":"provision","id":"a","body":null})", "\"body\""},
       }) {
    const WireError error = requestFailure(c.bytes);
    EXPECT_EQ(error.code, "bad_envelope") << c.bytes;
    EXPECT_NE(error.message.find(c.field), std::string::npos) << c.bytes << " -> " << error.message;
  }
}

TEST(EnvelopeTest, FailureReplyEchoesTheIdWhenThereIsOne) {
  const std::string bytes = R"({"v":9,"type":"provision","id":"r-7"})";
  const Result<Request> request = decodeRequest(bytes);
  ASSERT_FALSE(request.ok());
  const Reply reply = decodeFailureReply(bytes, request.error());
  EXPECT_EQ(reply.id, "r-7");
  EXPECT_EQ(reply.status, ReplyStatus::Error);
  EXPECT_EQ(reply.error.code, "bad_version");

  const std::string no_id = R"({"v":1,"type":"provision"})";
  const Reply anonymous = decodeFailureReply(no_id, decodeRequest(no_id).error());
  EXPECT_EQ(anonymous.id, "");
  EXPECT_EQ(anonymous.error.code, "bad_envelope");

  const std::string garbage = "{{{";
  EXPECT_EQ(decodeFailureReply(garbage, decodeRequest(garbage).error()).error.code, "bad_json");
}

TEST(EnvelopeTest, NestingBombIsRefusedWithoutCrashing) {
  constexpr size_t kDepth = 100000;
  const std::string arrays = std::string(kDepth, '[') + std::string(kDepth, ']');
  // Over the size limit too, so check the depth scan on its own as well.
  EXPECT_EQ(requestFailure(arrays).code, "too_large");
  const Result<Reply> reply = decodeReply(arrays);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(wireErrorOf(reply.error()).code, "too_deep");

  const std::string objects = [] {
    std::string text;
    for (size_t i = 0; i < kDepth; ++i) {
      text += "{\"a\":";
    }
    return text;  // Unterminated as well: the scan must stop it before the parser.
  }();
  EXPECT_EQ(wireErrorOf(decodeReply(objects).error()).code, "too_deep");

  // A bomb that fits in the request limit.
  const std::string small_bomb =
      "{\"v\":1,\"type\":\"t\",\"id\":\"a\",\"body\":{\"x\":" + std::string(20000, '[') +
      std::string(20000, ']') + "}}";
  ASSERT_LE(small_bomb.size(), kMaxMessageBytes);
  EXPECT_EQ(requestFailure(small_bomb).code, "too_deep");
}

TEST(EnvelopeTest, DepthLimitIsExactAndIgnoresBracketsInStrings) {
  // The envelope is depth 1 and the body depth 2, so the body may nest 30 more.
  auto nested = [](size_t depth) {
    return "{\"v\":1,\"type\":\"t\",\"id\":\"a\",\"body\":{\"x\":" + std::string(depth, '[') +
           std::string(depth, ']') + "}}";
  };
  EXPECT_TRUE(decodeRequest(nested(kMaxNestingDepth - 2)).ok());
  EXPECT_EQ(requestFailure(nested(kMaxNestingDepth - 1)).code, "too_deep");

  const std::string brackets_in_string = "{\"v\":1,\"type\":\"t\",\"id\":\"a\",\"body\":{\"s\":\"" +
                                         std::string(1000, '[') + "\\\"" + "\"}}";
  const Result<Request> request = decodeRequest(brackets_in_string);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->body["s"].get<std::string>(), std::string(1000, '[') + "\"");
}

TEST(EnvelopeTest, RefusesTooLarge) {
  const std::string filler(kMaxMessageBytes, 'x');
  const std::string bytes =
      "{\"v\":1,\"type\":\"t\",\"id\":\"a\",\"body\":{\"x\":\"" + filler + "\"}}";
  const WireError error = requestFailure(bytes);
  EXPECT_EQ(error.code, "too_large");
  EXPECT_NE(error.message.find(std::to_string(kMaxMessageBytes)), std::string::npos);

  // Exactly at the limit is fine.
  std::string at_limit = "{\"v\":1,\"type\":\"t\",\"id\":\"a\",\"body\":{\"x\":\"\"}}";
  at_limit.insert(at_limit.size() - 3, kMaxMessageBytes - at_limit.size(), 'y');
  ASSERT_EQ(at_limit.size(), kMaxMessageBytes);
  EXPECT_TRUE(decodeRequest(at_limit).ok());
}

TEST(EnvelopeTest, ReplyRoundTrip) {
  for (const ReplyStatus status : {ReplyStatus::Ok, ReplyStatus::Denied, ReplyStatus::Error}) {
    Reply reply;
    reply.id = "r-9";
    reply.status = status;
    if (status != ReplyStatus::Ok) {
      reply.error = WireError{"no_capacity", "network wan: class EF full"};
    }
    reply.body = json{{"flow_id", 12}, {"dscp", 46}};
    const std::string bytes = encodeReply(reply);
    EXPECT_EQ(bytes.find("\"error\"") != std::string::npos, status != ReplyStatus::Ok) << bytes;
    const Result<Reply> decoded = decodeReply(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(decoded->id, reply.id);
    EXPECT_EQ(decoded->status, reply.status);
    EXPECT_EQ(decoded->error, reply.error);
    EXPECT_EQ(decoded->body, reply.body);
  }
}

// The overload that reuses a string replaces what it held.
TEST(EnvelopeTest, ReplyEncodedIntoAReusedString) {
  Reply first;
  first.id = "a-much-longer-request-id-than-the-next";
  first.body_json = R"({"flow_id":1,"path":["lan-a","wan","lan-b"]})";
  Reply second;
  second.id = "b";
  second.status = ReplyStatus::Denied;
  second.error = WireError{"no_capacity", "full"};
  std::string reused = "left over";
  for (const Reply* reply : {&first, &second, &first}) {
    encodeReply(*reply, reused);
    EXPECT_EQ(reused, encodeReply(*reply));
  }
}

TEST(EnvelopeTest, ReplyEncodingNeverThrowsOnInvalidUtf8) {
  Reply reply;
  reply.id = "r\xff";
  reply.status = ReplyStatus::Error;
  reply.error = WireError{"bad_request", "invalid IPv4 address '\xc3'"};
  const std::string bytes = encodeReply(reply);
  const Result<Reply> decoded = decodeReply(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->error.code, "bad_request");
}

TEST(EnvelopeTest, RefusesMalformedReplies) {
  EXPECT_FALSE(decodeReply(R"({"v":1,"type":"provision","id":"a","status":"ok"})").ok());
  EXPECT_FALSE(decodeReply(R"({"v":1,"type":"reply","id":"a","status":"maybe"})").ok());
  EXPECT_FALSE(decodeReply(R"({"v":1,"type":"reply","id":"a","status":"denied"})").ok());
  EXPECT_FALSE(
      decodeReply(R"({"v":1,"type":"reply","id":"a","status":"error","error":{"code":1}})").ok());
  EXPECT_FALSE(decodeReply(R"({"v":1,"type":"reply","status":"ok"})").ok());
  EXPECT_FALSE(decodeReply(R"({"v":2,"type":"reply","id":"a","status":"ok"})").ok());
  // An empty id is a valid reply: the server could not read the request's.
  EXPECT_TRUE(decodeReply(R"({"v":1,"type":"reply","id":"","status":"ok"})").ok());
}

TEST(EnvelopeTest, WireErrorOfUnknownTextIsInternal) {
  EXPECT_EQ(wireErrorOf(makeError("disk full")), (WireError{"internal", "disk full"}));
  EXPECT_EQ(wireErrorOf(makeError("bad_json: oops")), (WireError{"bad_json", "oops"}));
}

}  // namespace
}  // namespace qos::control
