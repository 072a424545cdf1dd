// The control messages (control/protocol/messages.h) written and read from
// their one description: every field round-trips, units are in the keys,
// and every bad field is named.
#include "control/protocol/messages.h"

#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/common/ip_prefix.h"
#include "control/protocol/error_codes.h"
#include "control/protocol/fields.h"

namespace qos::control {
namespace {

using nlohmann::json;

std::string encodeGrant(const Grant& grant) { return encodeObject(grant); }
Result<Grant> grantFromJson(const json& j) {
  return decodeObject<Grant>(j, Unknown::Ignore, "grant");
}
Result<AdmissionRequest> requestFromJson(const json& j) {
  return decodeObject<AdmissionRequest>(j, Unknown::Reject, "request body");
}
template <typename T>
json toJson(const T& message) {
  return json::parse(encodeObject(message));
}
Result<Denial> denialFromJson(const json& j) {
  return decodeObject<Denial>(j, Unknown::Ignore, "denial");
}

IpAddress address(const char* text) {
  const Result<IpAddress> parsed = parseIpAddress(text);
  EXPECT_TRUE(parsed.ok()) << text;
  return parsed.ok() ? *parsed : IpAddress{};
}

/** A grant where every field differs from its default. */
Grant fullGrant() {
  Grant grant;
  grant.flow_id = 123456789012345ULL;
  grant.application = "voip";
  grant.profile_index = 2;
  grant.profile = Profile{"AF41", 2'500'000, 12'000};
  grant.flow.src = address("198.18.1.10");
  grant.flow.dst = address("198.19.1.20");
  grant.flow.src_port = 40000;
  grant.flow.dst_port = 5004;
  grant.flow.protocol = 17;
  grant.bidirectional = true;
  grant.dscp = 34;
  grant.reverse_dscp = 36;
  grant.path = {"site-a", "wan", "site-b"};
  grant.reverse_path = {"site-b", "wan2", "site-a"};
  grant.meter = MeterParams{2'500'000, 12'000, 24'000};
  grant.expires_at_ms = 1'700'000'030'123ULL;
  grant.client_id = "host-a";
  grant.request_id = "r-1";
  return grant;
}

json provisionBody() {
  return json::parse(R"({"app":"voip","src":"198.18.1.10","sport":40000,"dst":"198.19.1.20",
      "dport":5004,"proto":"udp","bidir":false,"lease":30,"client":"host-a","request_id":"r-1"})");
}

/** Decodes a grant expecting success, through text as the store and the wire do. */
Grant roundTrip(const Grant& grant) {
  const json decoded_text = json::parse(encodeGrant(grant));
  const Result<Grant> decoded = grantFromJson(decoded_text);
  EXPECT_TRUE(decoded.ok()) << decoded.error().message;
  return decoded.ok() ? *decoded : Grant{};
}

TEST(MessagesTest, GrantRoundTripKeepsEveryField) {
  const Grant grant = fullGrant();
  EXPECT_EQ(roundTrip(grant), grant);

  // And each field on its own, so a field dropped by the codec cannot hide
  // behind a default that happens to match.
  Grant base;
  base.profile = Profile{"EF", 1, 1};
  base.flow.src = address("2001:db8::1");
  base.flow.dst = address("2001:db8:1::2");
  base.flow.protocol = 6;
  base.path = {"only"};
  EXPECT_EQ(roundTrip(base), base);
  const Grant full = fullGrant();
  for (int field = 0; field < 18; ++field) {
    Grant g = base;
    switch (field) {
      case 0:
        g.flow_id = full.flow_id;
        break;
      case 1:
        g.application = full.application;
        break;
      case 2:
        g.profile_index = full.profile_index;
        break;
      case 3:
        g.profile = full.profile;
        break;
      case 4:
        g.flow.src = full.flow.src;
        g.flow.dst = full.flow.dst;
        break;
      case 5:
        g.flow.src_port = full.flow.src_port;
        break;
      case 6:
        g.flow.dst_port = full.flow.dst_port;
        break;
      case 7:
        g.flow.protocol = 132;
        break;
      case 8:
        g.bidirectional = true;
        break;
      case 9:
        g.dscp = 63;
        break;
      case 10:
        g.reverse_dscp = 0;
        break;
      case 11:
        g.path = full.path;
        break;
      case 12:
        g.reverse_path = full.reverse_path;
        break;
      case 13:
        g.meter.cir_bps = 1;
        break;
      case 14:
        g.meter.cbs_bytes = full.meter.cbs_bytes;
        break;
      case 15:
        g.meter.ebs_bytes = full.meter.ebs_bytes;
        break;
      case 16:
        g.expires_at_ms = std::numeric_limits<uint64_t>::max();
        break;
      case 17:
        g.client_id = "c";
        g.request_id = "r";
        break;
    }
    EXPECT_EQ(roundTrip(g), g) << "field " << field << ": " << encodeGrant(g);
  }
}

TEST(MessagesTest, OddGrantsReadBackExactly) {
  Grant v6;
  v6.profile = Profile{"EF", 1, 1};
  v6.flow.src = address("2001:db8::1");
  v6.flow.dst = address("2001:db8:1::2");
  v6.flow.protocol = 58;  // no name: written as a number
  v6.path = {"only"};
  Grant odd = fullGrant();
  odd.client_id = "host \"a\"\n\x01";  // escaped
  odd.request_id = "\xC3\xA9";         // UTF-8 kept as it is
  for (const Grant& grant : {v6, odd}) {
    EXPECT_EQ(roundTrip(grant), grant) << encodeGrant(grant);
  }
  // Unset addresses are written as null: valid JSON, refused when read.
  const json unset = json::parse(encodeGrant(Grant{}));
  EXPECT_TRUE(unset["src"].is_null());
  EXPECT_FALSE(grantFromJson(unset).ok());
}

TEST(MessagesTest, GrantUsesUnitsInKeys) {
  const json j = json::parse(encodeGrant(fullGrant()));
  EXPECT_EQ(j["profile"]["rate_bps"], 2'500'000);
  EXPECT_EQ(j["profile"]["burst_bytes"], 12'000);
  EXPECT_EQ(j["meter"]["cir_bps"], 2'500'000);
  EXPECT_EQ(j["expires_at_ms"], 1'700'000'030'123ULL);
  EXPECT_EQ(j["proto"], "udp");
  EXPECT_EQ(j["src"], "198.18.1.10");
  EXPECT_EQ(j["reverse_dscp"], 36);
  Grant unidirectional = fullGrant();
  unidirectional.reverse_dscp.reset();
  EXPECT_TRUE(json::parse(encodeGrant(unidirectional))["reverse_dscp"].is_null());
}

TEST(MessagesTest, MeterRateRoundTripsAtItsExtremes) {
  Grant grant = fullGrant();
  for (const uint64_t cir : {uint64_t{0}, uint64_t{1}, uint64_t{7}, ~uint64_t{0}}) {
    grant.meter.cir_bps = cir;
    EXPECT_EQ(roundTrip(grant).meter.cir_bps, cir);
  }
}

TEST(MessagesTest, GrantIgnoresUnknownKeysButNamesBadFields) {
  json j = json::parse(encodeGrant(fullGrant()));
  j["added_by_a_newer_manager"] = 1;
  EXPECT_TRUE(grantFromJson(j).ok());

  struct Case {
    const char* pointer;
    json value;
    const char* field;
  };
  for (const Case& c : {
           Case{"/flow_id", "7", "flow_id"},
           Case{"/flow_id", -1, "flow_id"},
           Case{"/profile/rate_bps", "fast", "profile.rate_bps"},
           Case{"/profile/class", "", "profile.class"},
           Case{"/profile", json::array(), "profile"},
           Case{"/meter/cir_bps", 1.5, "meter.cir_bps"},
           Case{"/dscp", 64, "dscp"},
           Case{"/reverse_dscp", "ef", "reverse_dscp"},
           Case{"/path/1", 5, "path[1]"},
           Case{"/path", "wan", "path"},
           Case{"/src", "300.1.1.1", "src"},
           Case{"/dport", 65536, "dport"},
           Case{"/proto", "ICMP", "proto"},
           Case{"/proto", 256, "proto"},
           Case{"/bidir", 1, "bidir"},
           Case{"/expires_at_ms", nullptr, "expires_at_ms"},
       }) {
    json bad = json::parse(encodeGrant(fullGrant()));
    bad[json::json_pointer(c.pointer)] = c.value;
    const Result<Grant> grant = grantFromJson(bad);
    ASSERT_FALSE(grant.ok()) << c.pointer;
    EXPECT_EQ(grant.error().message.rfind(std::string(c.field) + ": ", 0), 0U)
        << c.pointer << " -> " << grant.error().message;
  }
  EXPECT_FALSE(grantFromJson(json::array()).ok());
}

TEST(MessagesTest, ReadsProvisionBody) {
  const Result<AdmissionRequest> request = requestFromJson(provisionBody());
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->application, "voip");
  EXPECT_EQ(request->flow.src, address("198.18.1.10"));
  EXPECT_EQ(request->flow.dst, address("198.19.1.20"));
  EXPECT_EQ(request->flow.src_port, 40000);
  EXPECT_EQ(request->flow.dst_port, 5004);
  EXPECT_EQ(request->flow.protocol, 17);
  EXPECT_FALSE(request->bidirectional);
  EXPECT_EQ(request->lease_sec, 30U);
  EXPECT_EQ(request->client_id, "host-a");
  EXPECT_EQ(request->request_id, "r-1");
}

TEST(MessagesTest, ProvisionBodyOptionalFields) {
  json body = provisionBody();
  for (const char* key : {"app", "sport", "dport", "bidir", "lease"}) {
    body.erase(key);
  }
  body["src"] = "2001:db8::10";
  body["dst"] = "2001:db8:1::20";
  body["proto"] = "sctp";
  const Result<AdmissionRequest> request = requestFromJson(body);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->application, "");
  EXPECT_EQ(request->flow.src_port, 0);
  EXPECT_EQ(request->flow.dst_port, 0);
  EXPECT_EQ(request->flow.protocol, 132);
  EXPECT_EQ(request->flow.src.family, 6);
  EXPECT_EQ(request->lease_sec, 0U);
}

TEST(MessagesTest, RequestRoundTrip) {
  AdmissionRequest request;
  request.application = "video";
  request.flow.src = address("2001:db8::1");
  request.flow.dst = address("2001:db8::2");
  request.flow.src_port = 1;
  request.flow.dst_port = 65535;
  request.flow.protocol = 6;
  request.bidirectional = true;
  request.lease_sec = 4'000'000'000U;
  request.client_id = "agent-7";
  request.request_id = "r-99";
  const Result<AdmissionRequest> decoded = requestFromJson(json::parse(toJson(request).dump()));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->application, request.application);
  EXPECT_EQ(decoded->flow, request.flow);
  EXPECT_EQ(decoded->bidirectional, request.bidirectional);
  EXPECT_EQ(decoded->lease_sec, request.lease_sec);
  EXPECT_EQ(decoded->client_id, request.client_id);
  EXPECT_EQ(decoded->request_id, request.request_id);
}

TEST(MessagesTest, EveryMalformedRequestFieldIsNamed) {
  struct Case {
    const char* key;
    json value;  // null: remove the key
  };
  for (const Case& c : {
           Case{"app", 5},
           Case{"src", nullptr},
           Case{"src", "198.18.1"},
           Case{"src", 198},
           Case{"dst", "::g"},
           Case{"sport", -1},
           Case{"sport", 70000},
           Case{"sport", "40000"},
           Case{"dport", 5004.5},
           Case{"proto", "UDP"},
           Case{"proto", 17},
           Case{"proto", nullptr},
           Case{"bidir", "yes"},
           Case{"lease", -30},
           Case{"lease", 5'000'000'000LL},
           Case{"client", 7},
           Case{"request_id", json::array()},
           Case{"request_id", nullptr},
           Case{"dprt", 5004},
       }) {
    json body = provisionBody();
    if (c.value.is_null()) {
      body.erase(c.key);
    } else {
      body[c.key] = c.value;
    }
    const Result<AdmissionRequest> request = requestFromJson(body);
    ASSERT_FALSE(request.ok()) << c.key << " = " << c.value.dump();
    EXPECT_EQ(request.error().message.rfind(std::string(c.key) + ": ", 0), 0U)
        << c.key << " = " << c.value.dump() << " -> " << request.error().message;
  }
  const Result<AdmissionRequest> not_object = requestFromJson(json::array({1}));
  ASSERT_FALSE(not_object.ok());
  EXPECT_NE(not_object.error().message.find("request body must be an object"), std::string::npos)
      << not_object.error().message;
}

TEST(MessagesTest, ClientIsOptional) {
  json body = provisionBody();
  body.erase("client");
  const Result<AdmissionRequest> request = requestFromJson(body);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->client_id, "");
}

TEST(MessagesTest, NullOptionalFieldsReadAsAbsent) {
  json body = provisionBody();
  body["app"] = nullptr;
  body["sport"] = nullptr;
  const Result<AdmissionRequest> request = requestFromJson(body);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->application, "");
  EXPECT_EQ(request->flow.src_port, 0);
}

TEST(MessagesTest, ClassUsage) {
  ClassUsage network;
  network.owner = "wan";
  network.network = "wan";
  network.class_name = "EF";
  network.dscp = 46;
  network.capacity_bps = 10'000'000;
  network.reserved_bps = 2'500'000;
  network.available_bps = 7'500'000;
  network.flows = 3;
  EXPECT_EQ(toJson(network), json::parse(R"({"owner":"wan","kind":"network","network":"wan",
      "class":"EF","dscp":46,"capacity_bps":10000000,"reserved_bps":2500000,
      "available_bps":7500000,"flows":3})"));

  ClassUsage sla;
  sla.owner = "carrier-x";
  sla.kind = UsageKind::Sla;
  sla.network = "wan";
  sla.class_name = "AF41";
  sla.reserved_bps = 64'000;
  sla.flows = 1;
  const json j = toJson(sla);
  EXPECT_EQ(j["kind"], "sla");
  EXPECT_TRUE(j["dscp"].is_null());
  EXPECT_TRUE(j["capacity_bps"].is_null());
  EXPECT_TRUE(j["available_bps"].is_null());
  EXPECT_EQ(j["reserved_bps"], 64'000);
}

TEST(MessagesTest, DenialRoundTripForEveryReason) {
  for (const DenyReason reason :
       {DenyReason::BadRequest, DenyReason::UnknownApplication, DenyReason::NoSourceNetwork,
        DenyReason::NoDestinationNetwork, DenyReason::NoPath, DenyReason::ClassUnavailable,
        DenyReason::NoCapacity}) {
    const Denial denial{reason, "network wan: class EF has 0 bps left"};
    const json j = toJson(denial);
    EXPECT_EQ(j["reason"], denyReasonName(reason));
    const Result<Denial> decoded = denialFromJson(j);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(decoded->reason, reason);
    EXPECT_EQ(decoded->message, denial.message);
  }
  EXPECT_EQ(denyReasonName(DenyReason::NoCapacity), "no_capacity");
  EXPECT_EQ(denyReasonName(DenyReason::NoDestinationNetwork), "no_destination_network");
  for (const EnumName<DenyReason>& row : kDenyReasons) {
    EXPECT_EQ(errorCodeOfWire(row.name),
              row.value == DenyReason::BadRequest ? ErrorCode::Invalid : ErrorCode::Denied)
        << row.name;
  }
  const Result<Denial> unknown = denialFromJson(json{{"reason", "tired"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message.rfind("reason: ", 0), 0U);
}

}  // namespace
}  // namespace qos::control
