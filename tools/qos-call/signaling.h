// qos-call's call set-up, a miniature of SIP: one line per UDP datagram.
//
//   A -> B  INVITE call=ID media=ADDR:PORT rate=BPS seconds=S
//   B -> A  OK call=ID media=ADDR:PORT
//   A -> B  ACK call=ID reverse_dscp=N|none        (the DSCP B marks its media with)
//   A -> B  BYE call=ID sent=N                      (A hangs up)
//   B -> A  BYE-OK call=ID sent=N received=N
//   B -> A  BUSY call=ID                            (B is in another call)
//
// Every message is answered or sent again: A repeats INVITE, ACK and BYE
// until the answer comes (B answers an ACK with "ACK-OK").  Malformed
// lines are refused with a reason and never read past their end.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "control/common/ip_prefix.h"
#include "control/common/result.h"

namespace qos::call {

struct Endpoint {
  IpAddress address;
  uint16_t port = 0;
};

struct Message {
  std::string verb;                           ///< INVITE, OK, ACK, ACK-OK, BYE, BYE-OK
  std::string call_id;                        ///< the caller's id for the call
  std::map<std::string, std::string> fields;  ///< the rest, KEY=VALUE
};

/** One message as its line. */
std::string formatMessage(const Message& message);
/** Reads a line; refuses an unknown verb, a field without '=', a missing call id. */
Result<Message> parseMessage(std::string_view line);

/** "ADDR:PORT" ("[v6]:PORT" for IPv6) and back. */
std::string formatEndpoint(const Endpoint& endpoint);
Result<Endpoint> parseEndpoint(std::string_view text);

/** A field as an unsigned number no larger than @p max. */
Result<uint64_t> numberField(const Message& message, const std::string& key, uint64_t max);

}  // namespace qos::call
