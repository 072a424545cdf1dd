// The fast path (control::decodeFlatRequest + requestFromFlatBody) against the
// general one (control::decodeRequest + requestFromJson): whatever the fast
// path accepts, the general path accepts and reads identically; and the
// messages clients really send do take the fast path.
#include "control/protocol/flat_request.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/protocol/envelope.h"
#include "manager/codec/json_codec.h"

namespace qos::manager {
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

void expectSameRequest(const AdmissionRequest& a, const AdmissionRequest& b) {
  EXPECT_EQ(a.application, b.application);
  EXPECT_EQ(a.flow, b.flow);
  EXPECT_EQ(a.bidirectional, b.bidirectional);
  EXPECT_EQ(a.lease_sec, b.lease_sec);
  EXPECT_EQ(a.client_id, b.client_id);
  EXPECT_EQ(a.request_id, b.request_id);
}

/** Checks the two paths on @p text; returns whether the fast path took it. */
bool fastAgreesWithGeneral(const std::string& text) {
  control::FlatRequest flat;
  if (!control::decodeFlatRequest(text, flat)) {
    return false;
  }
  auto general = control::decodeRequest(text);
  EXPECT_TRUE(general.ok()) << "fast path accepted what the general path refuses: " << text;
  if (!general.ok()) {
    return true;
  }
  EXPECT_EQ(flat.type, general->type) << text;
  EXPECT_EQ(flat.id, general->id) << text;
  EXPECT_EQ(flat.body.size(), general->body.size()) << text;
  if (flat.type != "provision") {
    return true;
  }
  const std::optional<AdmissionRequest> fast = requestFromFlatBody(flat);
  const Result<AdmissionRequest> slow = requestFromJson(general->body);
  if (fast) {
    EXPECT_TRUE(slow.ok()) << "fast path read a body the general path refuses: " << text;
    if (slow.ok()) {
      expectSameRequest(*fast, *slow);
    }
  }
  return fast.has_value();
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
                                                 {"client", ""},
                                                 {"client", nullptr},
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
  for (const char* key : {"src", "dst", "proto", "client", "request_id"}) {
    json b = body();
    b.erase(key);
    texts.push_back(message(b));
  }
  // Envelopes the general path refuses or reads differently.
  const std::string good = message(body());
  texts.insert(texts.end(),
               {
                   R"({"type":"provision","id":"a","body":{}})",          // no version
                   R"({"v":2,"type":"provision","id":"a","body":{}})",    // another version
                   R"({"v":"1","type":"provision","id":"a","body":{}})",  // version as a string
                   R"({"v":1.0,"type":"provision","id":"a","body":{}})",
                   R"({"v":-1,"type":"provision","id":"a","body":{}})",
                   R"({"v":1,"v":1,"type":"provision","id":"a","body":{}})",  // duplicate key
                   R"({"v":1,"type":"","id":"a","body":{}})",
                   R"({"v":1,"type":"provision","body":{}})",
                   R"({"v":1,"type":"provision","id":7,"body":{}})",
                   R"({"v":1,"type":"provision","id":"a","body":[]})",
                   R"({"v":1,"type":"provision","id":"a","body":5})",
                   R"({"v":1,"type":"provision","id":"a","body":{"a":{"b":1}}})",
                   R"({"v":1,"type":"provision","id":"a","body":{"a":1,"a":2}})",
                   R"({"v":1,"type":"provision","id":"a","extra":{"x":1},"body":{}})",
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

TEST(FlatRequestTest, MutatedMessagesNeverDisagree) {
  std::mt19937 rng(11);
  const std::vector<std::string> seeds = {
      message(body()), message({{"flow_id", 12}}, "release"),
      R"({"v":1,"type":"provision","id":"q","body":{"src":"2001:db8::1","dst":"2001:db8::2","proto":"tcp","client":"c","request_id":"r"}})"};
  const std::string alphabet = "{}[]\",:0123456789-.eE truefalsnul\\abcxyz\x01\xc3\xa9";
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
    taken += fastAgreesWithGeneral(text) ? 1 : 0;
  }
  // Some mutations leave a valid request (a changed digit or letter): the
  // comparison above covered real cases, not only refusals.
  EXPECT_GT(taken, 100u);
}

}  // namespace
}  // namespace qos::manager
