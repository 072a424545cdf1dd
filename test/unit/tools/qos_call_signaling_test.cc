// qos-call's call set-up lines: what is read back as written, and what is refused.
#include <string>

#include <gtest/gtest.h>

#include "tools/qos-call/signaling.h"

namespace qos::call {
namespace {

TEST(QosCallSignalingTest, AMessageReadsBackAsWritten) {
  const Message invite{"INVITE", "ab12", {{"media", "198.18.1.10:40000"}, {"rate", "64000"}}};
  const std::string line = formatMessage(invite);
  EXPECT_EQ(line, "INVITE call=ab12 media=198.18.1.10:40000 rate=64000");
  Result<Message> back = parseMessage(line);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->verb, "INVITE");
  EXPECT_EQ(back->call_id, "ab12");
  EXPECT_EQ(back->fields, invite.fields);
  EXPECT_EQ(*numberField(*back, "rate", 100'000), 64000u);
}

TEST(QosCallSignalingTest, MalformedLinesAreRefusedWithAReason) {
  EXPECT_NE(parseMessage("HELLO call=1").error().message.find("unknown message"),
            std::string::npos);
  EXPECT_NE(parseMessage("ACK reverse_dscp=40").error().message.find("without call=ID"),
            std::string::npos);
  EXPECT_NE(parseMessage("ACK call=1 junk").error().message.find("not KEY=VALUE"),
            std::string::npos);
  EXPECT_FALSE(parseMessage("").ok());
  EXPECT_FALSE(parseMessage(std::string(600, 'A')).ok());
  const Message ack{"ACK", "1", {{"reverse_dscp", "64"}}};
  EXPECT_FALSE(numberField(ack, "reverse_dscp", 63).ok());
  EXPECT_FALSE(numberField(ack, "missing", 63).ok());
  const Message none{"ACK", "1", {{"reverse_dscp", "none"}}};
  EXPECT_FALSE(numberField(none, "reverse_dscp", 63).ok()) << "no DSCP: the callee goes unmarked";
}

TEST(QosCallSignalingTest, EndpointsBothFamilies) {
  Result<Endpoint> v4 = parseEndpoint("198.19.1.20:5060");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(formatEndpoint(*v4), "198.19.1.20:5060");
  Result<Endpoint> v6 = parseEndpoint("[2001:db8:1::20]:5060");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(formatEndpoint(*v6), "[2001:db8:1::20]:5060");
  EXPECT_FALSE(parseEndpoint("198.19.1.20").ok());
  EXPECT_FALSE(parseEndpoint("198.19.1.20:0").ok());
  EXPECT_FALSE(parseEndpoint("198.19.1.20:70000").ok());
  EXPECT_FALSE(parseEndpoint("[2001:db8::1:5060").ok());
}

}  // namespace
}  // namespace qos::call
