// The fast path (decodeFlatRequest + decodeFlat<Body>) against the general
// one (decodeRequest + decodeObject<Body>): whatever the fast
// path accepts, the general path accepts and reads identically; and the
// messages clients really send do take the fast path.  The fast path reads
// with simdjson and the general one with nlohmann: the cases below aim at
// where the two parsers could differ.
#include "control/protocol/flat_request.h"

#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/protocol/envelope.h"
#include "control/protocol/fields.h"
#include "control/protocol/messages.h"
#include "test/fakes/flat_agreement.h"

namespace qos::control {
namespace {

using nlohmann::json;

json body() {
  return {{"app", "voip"},   {"src", "198.18.1.10"}, {"sport", 40000}, {"dst", "198.19.1.20"},
          {"dport", 5004},   {"proto", "udp"},       {"bidir", false}, {"lease", 30},
          {"client", "h-a"}, {"request_id", "r-1"}};
}

std::string message(const json& b, const std::string& type = "provision") {
  return json{{"v", 1}, {"type", type}, {"id", "m-1"}, {"body", b}}.dump();
}

/**
 * Checks the two paths on @p text, decoding into @p flat (which may hold a
 * previous message, as the server's does); returns whether the fast path
 * took it (for a provision: whether it read the body too).
 */
bool fastAgreesWithGeneral(const std::string& text, control::FlatRequest& flat) {
  const test::FlatAgreement result = test::compareFlatWithGeneral(text, flat);
  EXPECT_FALSE(result.disagreement) << *result.disagreement << ": " << text;
  return result.taken;
}

bool fastAgreesWithGeneral(const std::string& text) {
  control::FlatRequest flat;
  return fastAgreesWithGeneral(text, flat);
}

/** A release of flow 7 whose body also holds @p members (text, as sent). */
std::string release(const std::string& members) {
  return R"({"v":1,"type":"release","id":"r","body":{"flow_id":7)" +
         (members.empty() ? "" : "," + members) + "}}";
}

TEST(FlatRequestTest, RealRequestsTakeTheFastPathAndReadTheSame) {
  std::vector<json> bodies = {body()};
  json b = body();
  b.erase("app");
  b.erase("sport");
  b.erase("bidir");
  b.erase("lease");
  bodies.push_back(b);
  b = body();
  b["app"] = nullptr;
  b["lease"] = nullptr;
  b["bidir"] = true;
  b["src"] = "2001:db8::1";
  b["dst"] = "2001:db8:1::2";
  b["proto"] = "sctp";
  b["sport"] = 65535;
  b["lease"] = 4294967295ULL;
  bodies.push_back(b);
  b = body();
  b["app"] = "";  // optional strings may be empty
  b["request_id"] = "r-\u00e9\u20ac";
  bodies.push_back(b);
  for (const json& each : bodies) {
    EXPECT_TRUE(fastAgreesWithGeneral(message(each))) << each.dump();
  }
  // Release, with unknown scalars at the top level (ignored by both paths).
  const std::string release =
      R"({"v":1,"extra":true,"type":"release","id":"x","body":{"flow_id":7},"z":null})";
  control::FlatRequest flat;
  ASSERT_TRUE(control::decodeFlatRequest(release, flat));
  ASSERT_NE(flat.find("flow_id"), nullptr);
  EXPECT_EQ(flat.find("flow_id")->number, 7u);
  fastAgreesWithGeneral(release);
}

TEST(FlatRequestTest, EverythingElseIsLeftToTheGeneralPath) {
  std::vector<std::string> texts;
  // Body fields of the wrong kind, out of range, missing, unknown.
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, json>>{{"src", 5},
                                                 {"src", "not-an-address"},
                                                 {"src", nullptr},
                                                 {"sport", -1},
                                                 {"sport", 65536},
                                                 {"sport", 1.5},
                                                 {"sport", "80"},
                                                 {"dport", true},
                                                 {"proto", "icmp"},
                                                 {"proto", 17},
                                                 {"proto", nullptr},
                                                 {"bidir", 1},
                                                 {"bidir", "yes"},
                                                 {"lease", 4294967296ULL},
                                                 {"client", 7},
                                                 {"request_id", 5},
                                                 {"app", 7},
                                                 {"unknown", 1},
                                                 {"unknown", nullptr},
                                                 {"src", json::array()},
                                                 {"lease", json::object()}}) {
    json b = body();
    b[key] = value;
    texts.push_back(message(b));
  }
  for (const char* key : {"src", "dst", "proto", "request_id"}) {
    json b = body();
    b.erase(key);
    texts.push_back(message(b));
  }
  // Envelopes the general path refuses or reads differently.  A release,
  // whose body the fast path takes as it is, so that only the envelope is
  // left to refuse them (a provision with an empty body would be refused by
  // decodeFlat<AdmissionRequest>() whatever decodeFlatRequest() did).
  const std::string good = message(body());
  texts.insert(texts.end(),
               {
                   R"({"type":"release","id":"a","body":{"flow_id":7}})",        // no version
                   R"({"v":2,"type":"release","id":"a","body":{"flow_id":7}})",  // another version
                   R"({"v":0,"type":"release","id":"a","body":{"flow_id":7}})",
                   R"({"v":"1","type":"release","id":"a","body":{"flow_id":7}})",  // a string
                   R"({"v":null,"type":"release","id":"a","body":{"flow_id":7}})",
                   R"({"v":true,"type":"release","id":"a","body":{"flow_id":7}})",
                   R"({"v":1.0,"type":"release","id":"a","body":{"flow_id":7}})",
                   R"({"v":-1,"type":"release","id":"a","body":{"flow_id":7}})",
                   R"({"v":[1],"type":"release","id":"a","body":{"flow_id":7}})",
                   R"({"v":1,"v":1,"type":"release","id":"a","body":{"flow_id":7}})",  // duplicate
                   R"({"v":1,"v":2,"type":"release","id":"a","body":{"flow_id":7}})",
                   R"({"v":2,"v":1,"type":"release","id":"a","body":{"flow_id":7}})",
                   R"({"v":1,"type":"","id":"a","body":{"flow_id":7}})",
                   R"({"v":1,"type":"release","id":"","body":{"flow_id":7}})",
                   R"({"v":1,"id":"a","body":{"flow_id":7}})",
                   R"({"v":1,"type":"release","body":{"flow_id":7}})",
                   R"({"v":1,"type":"release","id":7,"body":{"flow_id":7}})",
                   R"({"v":1,"type":null,"id":"a","body":{"flow_id":7}})",
                   R"({"v":1,"type":"release","id":"a","body":[]})",
                   R"({"v":1,"type":"release","id":"a","body":5})",
                   R"({"v":1,"type":"release","id":"a","body":"{}"})",
                   R"({"v":1,"type":"release","id":"a","body":null})",
                   R"({"v":1,"type":"release","id":"a","body":{"flow_id":7,"a":{"b":1}}})",
                   R"({"v":1,"type":"release","id":"a","body":{"flow_id":7,"flow_id":8}})",
                   R"({"v":1,"type":"release","id":"a","extra":{"x":1},"body":{"flow_id":7}})",
                   R"({"v":1,"type":"provision","id":"a","body":{}})",
                   R"({"v":1,"type":"provision","id":"a","body":{"a":{"b":1}}})",
                   R"([1,2])",
                   R"("text")",
                   R"(5)",
                   R"(null)",
                   R"({})",
                   "",
                   good + "x",
                   good.substr(0, good.size() - 1),
                   "{\"v\":1,\"type\":\"provision\",\"id\":\"\xff\",\"body\":{}}",
                   std::string(control::kMaxMessageBytes + 1, ' '),
               });
  for (const std::string& text : texts) {
    EXPECT_FALSE(fastAgreesWithGeneral(text)) << text;
  }
}

// Messages the general path accepts but the fast path leaves to it: where
// simdjson and nlohmann could read the same text differently, or where the
// fast path does not follow nlohmann (which keeps the last duplicate key).
TEST(FlatRequestTest, WhatTheParsersCouldReadDifferentlyIsLeftToTheGeneralPath) {
  const std::string good = release("");
  const std::vector<std::string> texts = {
      // Numbers nlohmann reads as a float or a signed integer, not unsigned.
      release(R"("n":1.0)"),
      release(R"("n":1e2)"),
      release(R"("n":1E2)"),
      release(R"("n":0.0)"),
      release(R"("n":-0)"),
      release(R"("n":-1)"),
      release(R"("n":-9223372036854775808)"),
      release(R"("n":18446744073709551616)"),   // 2^64
      release(R"("n":99999999999999999999)"),   // 20 digits, above 2^64 - 1
      release(R"("n":100000000000000000000)"),  // 21 digits
      R"({"v":1,"type":"release","id":"r","body":{"flow_id":7.0}})",
      R"({"v":1,"type":"release","id":"r","extra":-1,"body":{"flow_id":7}})",
      // Escapes: in values, keys, the envelope, ignored members.
      release(R"("s":"\u0000")"),
      release(R"("s":"\ud83d\ude00")"),
      release(R"("s":"a\"b")"),
      release(R"("s":"a\\b")"),
      release(R"("s":"a\/b")"),
      release(R"("s":"\n")"),
      release(R"("\u0000":1)"),
      R"({"v":1,"type":"release","id":"r","body":{"fl\u006fw_id":7}})",
      R"({"v":1,"type":"rel\u0065ase","id":"r","body":{"flow_id":7}})",
      R"({"v":1,"type":"release","id":"\u0072","body":{"flow_id":7}})",
      R"({"\u0076":1,"type":"release","id":"r","body":{"flow_id":7}})",
      R"({"v":1,"type":"release","id":"r","x":"\t","body":{"flow_id":7}})",
      // An empty key in the body.
      release(R"("":1)"),
      // Duplicate keys, at every level.
      release(R"("flow_id":8)"),
      release(R"("a":1,"b":2,"a":3)"),
      R"({"v":1,"type":"release","type":"release","id":"r","body":{"flow_id":7}})",
      R"({"v":1,"type":"release","id":"r","id":"s","body":{"flow_id":7}})",
      R"({"v":1,"type":"","type":"release","id":"r","body":{"flow_id":7}})",
      R"({"v":1,"type":"release","id":"","id":"r","body":{"flow_id":7}})",
      R"({"v":1,"type":"release","id":"r","body":{},"body":{"flow_id":7}})",
      // Nested values other than the body.
      release(R"("a":[])"),
      release(R"("a":{})"),
      release(R"("a":[1,{"b":2}])"),
      R"({"v":1,"type":"release","id":"r","x":[1],"body":{"flow_id":7}})",
      R"({"v":1,"type":"release","id":"r","x":{},"body":{"flow_id":7}})",
      // A UTF-8 byte order mark, which nlohmann skips.
      "\xEF\xBB\xBF" + good,
      // A NUL byte after the object: nlohmann stops there as at the end of
      // the text, and accepts whatever follows.
      good + std::string(1, '\0'),
      good + std::string(1, '\0') + "{garbage",
  };
  for (const std::string& text : texts) {
    EXPECT_TRUE(control::decodeRequest(text).ok()) << "meant as a valid request: " << text;
    EXPECT_FALSE(fastAgreesWithGeneral(text)) << text;
  }
}

// Messages nlohmann refuses, aimed at the checks simdjson makes in its place
// (UTF-8, control characters, literals, numbers, structure, trailing text).
TEST(FlatRequestTest, WhatNlohmannRefusesSimdjsonRefusesToo) {
  const std::string good = release("");
  const std::string nul(1, '\0');
  const std::vector<std::string> texts = {
      // Invalid UTF-8: a stray byte, a lone continuation byte, an overlong
      // form, a UTF-16 surrogate, beyond U+10FFFF, a sequence cut short; in
      // a value, a key, the envelope, and outside strings.
      release("\"s\":\"\xFF\""),
      release("\"s\":\"\x80\""),
      release("\"s\":\"\xC0\xAF\""),
      release("\"s\":\"\xED\xA0\x80\""),
      release("\"s\":\"\xF4\x90\x80\x80\""),
      release("\"s\":\"\xE2\x82\""),
      release("\"\xFF\":1"),
      "{\"v\":1,\"type\":\"release\",\"id\":\"r\xC3\",\"body\":{\"flow_id\":7}}",
      release("\"n\":1\xC3\xA9"),
      // Control characters, which JSON strings must escape; NUL bytes.
      release("\"s\":\"a\x01z\""),
      release("\"s\":\"a\x1Fz\""),
      release("\"s\":\"a\tz\""),
      release("\"s\":\"a\nz\""),
      release("\"s\":\"a" + nul + "z\""),
      release("\"n\":1" + nul),
      release("\"a" + nul + "\":1"),
      nul + good,
      // Whitespace JSON does not know.
      release("\"n\":\f1"),
      release("\"n\":\v1"),
      release(std::string("\"n\":\xC2\xA0") + "1"),  // U+00A0, no-break space
      "\f" + good,
      good + "\f",
      // Literals and numbers.
      release("\"b\":tru"),
      release("\"b\":truee"),
      release("\"b\":True"),
      release("\"b\":fals"),
      release("\"b\":nul"),
      release("\"b\":nulll"),
      release("\"n\":01"),
      release("\"n\":00"),
      release("\"n\":+1"),
      release("\"n\":.5"),
      release("\"n\":1."),
      release("\"n\":1e"),
      release("\"n\":0x1"),
      release("\"n\":1e400"),
      release("\"n\":-"),
      release("\"n\":Infinity"),
      release("\"n\":NaN"),
      release("\"n\":1 2"),
      release("\"n\":1a"),
      R"({"v":01,"type":"release","id":"r","body":{"flow_id":7}})",
      // Structure: commas, colons, brackets, quotes.
      release("\"n\":1,"),
      R"({"v":1,"type":"release","id":"r","body":{,"flow_id":7}})",
      R"({"v":1 "type":"release","id":"r","body":{"flow_id":7}})",
      R"({"v":1,,"type":"release","id":"r","body":{"flow_id":7}})",
      R"({"v":1,"type":"release","id":"r","body":{"flow_id":7}]})",
      R"({"v":1,"type":"release","id":"r","body":{"flow_id":7]})",
      release("\"n\" 1"),
      release("\"n\"::1"),
      release("\"n\":"),
      release("\"n\":1 \"m\":2"),
      release("n:1"),
      release("'n':1"),
      release("\"s\":\"abc"),
      release("\"s:1"),
      good.substr(0, good.size() - 1),
      good.substr(0, good.size() - 1) + "]",
      // Text after the object.
      good + "}",
      good + "]",
      good + "x",
      good + " 5",
      good + "\"s\"",
      good + "{}",
      good + good,
  };
  for (const std::string& text : texts) {
    EXPECT_FALSE(control::decodeRequest(text).ok()) << "meant as an invalid request: " << text;
    EXPECT_FALSE(fastAgreesWithGeneral(text)) << text;
  }
}

// Valid, unusual, and plain enough for the fast path: it takes them, and
// reads them as the general path does.
TEST(FlatRequestTest, UnusualButPlainMessagesTakeTheFastPath) {
  // JSON's four whitespace characters, wherever they may go.
  const std::string spaced =
      " \t\r\n{ \"v\" :\t1 ,\r\n\"type\"\n:\"release\" , \"id\" : \"r\" ,\"body\" : { "
      "\"flow_id\" : 7 ,\"b\"\t:\ttrue\n,\"n\" : null ,\"s\"\r:\r\"x\"\t} }\n\t ";
  // Top-level scalars, which both paths ignore, "" among their keys; and the
  // envelope's keys inside the body.
  const std::string scalars = R"({"":0,"v":1,"x":null,"type":"release","y":"s","id":"r","z":false,)"
                              R"("body":{"flow_id":7,"v":2,"type":"t","id":"","body":"b"}})";
  const std::vector<std::string> texts = {
      spaced,
      scalars,
      json::parse(release(R"("b":false,"n":null,"s":"x")")).dump(2),
      // Unsigned integers at both ends of the range.
      release(R"("n":0)"),
      release(R"("n":18446744073709551615)"),
      // Strings: empty; DEL; 2-, 3- and 4-byte UTF-8 and U+FFFF; JSON's
      // punctuation inside.
      release(R"("s":"")"),
      release("\"s\":\"\x7F\""),
      release("\"s\":\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xEF\xBF\xBF\""),
      release("\"\xC3\xA9\":1"),
      release(R"("s":"{[:,]}' /")"),
      // No body: the general path reads {}.
      R"({"v":1,"type":"release","id":"r"})",
  };
  for (const std::string& text : texts) {
    EXPECT_TRUE(fastAgreesWithGeneral(text)) << text;
  }
}

// The size limit is decodeRequest()'s, to the byte.
TEST(FlatRequestTest, MessagesUpToTheSizeLimitOnly) {
  std::string text = release(R"("s":"")");
  text.insert(text.size() - 3, control::kMaxMessageBytes - text.size(), 'x');
  ASSERT_EQ(text.size(), control::kMaxMessageBytes);
  EXPECT_TRUE(fastAgreesWithGeneral(text));
  text.insert(text.size() - 3, 1, 'x');
  EXPECT_FALSE(control::decodeRequest(text).ok());
  EXPECT_FALSE(fastAgreesWithGeneral(text));
}

// One FlatRequest for every message, as the server keeps it: nothing of one
// message shows in the next, whether that is shorter, longer (the buffers
// grow past their first 4 KiB) or refused.
TEST(FlatRequestTest, AReusedFlatRequestKeepsNothingOfThePreviousMessage) {
  const std::string big = release(R"("s":")" + std::string(10000, 'x') + "\"");
  const std::string small = R"({"v":1,"type":"stats","id":"q"})";
  const std::string refused = R"({"v":1,"type":"release","id":"r","body":{"flow_id":7,"a":[]}})";
  control::FlatRequest flat;
  for (const std::string& text : {big, small, message(body()), refused, small, big, release("")}) {
    fastAgreesWithGeneral(text, flat);
  }
  ASSERT_TRUE(control::decodeFlatRequest(big, flat));
  EXPECT_EQ(flat.body.size(), 2u);
  EXPECT_FALSE(control::decodeFlatRequest(refused, flat));
  ASSERT_TRUE(control::decodeFlatRequest(small, flat));
  EXPECT_EQ(flat.type, "stats");
  EXPECT_EQ(flat.id, "q");
  EXPECT_TRUE(flat.body.empty());

  // A copy holds the same message, and decodes the next on its own.
  ASSERT_TRUE(control::decodeFlatRequest(release(""), flat));
  control::FlatRequest copy = flat;
  ASSERT_TRUE(control::decodeFlatRequest(small, copy));
  EXPECT_EQ(flat.type, "release");
  ASSERT_NE(flat.find("flow_id"), nullptr);
  EXPECT_EQ(flat.find("flow_id")->number, 7u);
  EXPECT_EQ(copy.type, "stats");
}

TEST(FlatRequestTest, MutatedMessagesNeverDisagree) {
  std::mt19937 rng(11);
  const std::vector<std::string> seeds = {
      message(body()), message({{"flow_id", 12}}, "release"),
      R"({"v":1,"type":"provision","id":"q","body":{"src":"2001:db8::1","dst":"2001:db8::2","proto":"tcp","client":"c","request_id":"r"}})",
      // Whitespace between every token (newlines and tabs).
      json{{"v", 1}, {"type", "release"}, {"id", "w"}, {"body", {{"flow_id", 3}, {"b", true}}}}
          .dump(1, '\t')};
  // JSON's tokens, escapes, whitespace and what is not (\f, \v, NUL), a
  // control character, UTF-8 (valid, a byte order mark, a surrogate) and bytes
  // that are never UTF-8.
  std::string alphabet =
      "{}[]\",:0123456789-+.eE truefalsnul\\/uabcxyz\t\n\r\f\v\x01\x7f"
      "\xc3\xa9\xef\xbb\xbf\xed\xa0\x80\xc0\xff";
  alphabet += '\0';
  control::FlatRequest flat;  // one for all, as the server keeps it
  size_t taken = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text = seeds[rng() % seeds.size()];
    for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) {
      const size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          text.erase(at, 1);
          break;
        default:
          text.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
      }
      if (text.empty()) {
        text = "{";
      }
    }
    taken += fastAgreesWithGeneral(text, flat) ? 1 : 0;
  }
  // Some mutations leave a valid request (a changed digit or letter): the
  // comparison above covered real cases, not only refusals.
  EXPECT_GT(taken, 100u);
}

}  // namespace
}  // namespace qos::control
