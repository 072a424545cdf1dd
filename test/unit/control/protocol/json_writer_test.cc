#include "control/protocol/json_writer.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qos::control {
namespace {

using nlohmann::json;

std::string written(const std::string& text) {
  std::string out;
  JsonWriter w(out);
  w.value(text);
  return out;
}

TEST(JsonWriterTest, NestingAndCommas) {
  std::string out;
  JsonWriter w(out);
  w.beginObject();
  w.key("a");
  w.value(uint64_t{1});
  w.key("empty");
  w.beginObject();
  w.endObject();
  w.key("list");
  w.beginArray();
  w.value("x");
  w.null();
  w.value(true);
  w.beginArray();
  w.endArray();
  w.raw(R"({"k":[1,2]})");
  w.endArray();
  w.member("max", std::numeric_limits<uint64_t>::max());
  w.member("no", false);
  w.endObject();
  EXPECT_EQ(out, R"({"a":1,"empty":{},"list":["x",null,true,[],{"k":[1,2]}],)"
                 R"("max":18446744073709551615,"no":false})");
  EXPECT_EQ(json::parse(out)["max"].get<uint64_t>(), std::numeric_limits<uint64_t>::max());
}

TEST(JsonWriterTest, EscapesLikeNlohmann) {
  for (const std::string& text :
       {std::string("plain"), std::string("quote\" backslash\\ slash/"), std::string("\b\f\n\r\t"),
        std::string("\x01\x1f\x7f", 3), std::string("nul\0in", 6),
        std::string("\xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), std::string()}) {
    EXPECT_EQ(written(text), json(text).dump()) << text;
  }
}

TEST(JsonWriterTest, InvalidUtf8BecomesReplacementCharacters) {
  const std::string replacement = "\xEF\xBF\xBD";
  // Stray continuation, overlong, surrogate, beyond U+10FFFF, cut short, bad lead.
  for (const std::string& bad :
       {std::string("\x80"), std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
        std::string("\xF4\x90\x80\x80"), std::string("\xE2\x82"), std::string("\xFF")}) {
    const std::string out = written("a" + bad + "b");
    const json parsed = json::parse(out);  // always valid JSON
    const std::string text = parsed.get<std::string>();
    EXPECT_EQ(text.front(), 'a');
    EXPECT_EQ(text.back(), 'b');
    EXPECT_NE(text.find(replacement), std::string::npos) << out;
  }
}

TEST(JsonWriterTest, RandomBytesAlwaysGiveValidJsonThatKeepsValidText) {
  std::mt19937 rng(7);
  for (int round = 0; round < 5000; ++round) {
    std::string text(rng() % 24, '\0');
    for (char& c : text) {
      c = static_cast<char>(rng() % 256);
    }
    const std::string out = written(text);
    json parsed;
    ASSERT_NO_THROW(parsed = json::parse(out)) << out;
    // Where nlohmann accepts the bytes as they are, both must agree exactly.
    try {
      EXPECT_EQ(out, json(text).dump());
      EXPECT_EQ(parsed.get<std::string>(), text);
    } catch (const json::type_error&) {
      // invalid UTF-8: only the validity above is promised
    }
  }
}

}  // namespace
}  // namespace qos::control
