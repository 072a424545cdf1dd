#include "control/transport/zap_handler.h"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "control/transport/curve_keys.h"

namespace qos::control {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

/** How long a handshake on the loopback may take before a test gives up on it. */
constexpr milliseconds kPatience{5000};
/** How long a test watches for a message that must not come. */
constexpr milliseconds kQuietPeriod{300};

CurveKeyPair newKeys() {
  Result<CurveKeyPair> pair = generateCurveKeyPair();
  EXPECT_TRUE(pair.ok());
  return pair ? *pair : CurveKeyPair{};
}

/** A message a CURVE server received, with the peer name the ZAP handler gave its sender. */
struct Received {
  std::string payload;
  std::string user_id;  ///< "(none)" when the message has no User-Id
};

/** A ROUTER with CURVE server options on a loopback TCP port, as qosmgr's would be. */
class CurveServer {
public:
  CurveServer(zmq::context_t& context, const CurveKeyPair& keys, const std::string& domain)
      : socket_(context, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::curve_server, true);
    socket_.set(zmq::sockopt::curve_secretkey, keys.secret_z85);
    socket_.set(zmq::sockopt::zap_domain, domain);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }

  const std::string& endpoint() const { return endpoint_; }

  /** The next [identity][payload] message within @p timeout, if one comes. */
  std::optional<Received> receive(milliseconds timeout) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, timeout);
    if ((item.revents & ZMQ_POLLIN) == 0) {
      return std::nullopt;
    }
    zmq::message_t identity;
    zmq::message_t payload;
    if (!socket_.recv(identity) || !identity.more() || !socket_.recv(payload)) {
      return std::nullopt;
    }
    const char* user_id = zmq_msg_gets(payload.handle(), "User-Id");
    return Received{payload.to_string(), user_id != nullptr ? user_id : "(none)"};
  }

private:
  zmq::socket_t socket_;
  std::string endpoint_;
};

/** A DEALER that speaks CURVE with @p keys to a server whose public key is @p server_public. */
zmq::socket_t curveClient(zmq::context_t& context, const std::string& endpoint,
                          const std::string& server_public, const CurveKeyPair& keys) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::curve_serverkey, server_public);
  socket.set(zmq::sockopt::curve_publickey, keys.public_z85);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_z85);
  socket.connect(endpoint);
  return socket;
}

/** Waits until @p condition holds or @p timeout passes; @return whether it held. */
template <typename Condition>
bool eventually(Condition condition, milliseconds timeout) {
  const SteadyClock::time_point deadline = SteadyClock::now() + timeout;
  while (!condition()) {
    if (SteadyClock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

class ZapHandlerTest : public ::testing::Test {
protected:
  std::unique_ptr<ZapHandler> startHandler(std::map<std::string, std::string> keys,
                                           std::string domain = "qos") {
    Result<std::unique_ptr<ZapHandler>> handler =
        ZapHandler::start(context_, std::move(keys), std::move(domain));
    EXPECT_TRUE(handler.ok()) << handler.error().message;
    return handler ? std::move(*handler) : nullptr;
  }

  /** Sends "hello from NAME" over a fresh CURVE client and @return what the server received. */
  std::optional<Received> sendAs(CurveServer& server, const CurveKeyPair& keys,
                                 const std::string& name, milliseconds timeout = kPatience) {
    zmq::socket_t client = curveClient(context_, server.endpoint(), server_keys_.public_z85, keys);
    // Without ZMQ_IMMEDIATE the message waits in the client until a handshake succeeds.
    EXPECT_TRUE(client.send(zmq::buffer("hello from " + name), zmq::send_flags::dontwait));
    return server.receive(timeout);
  }

  zmq::context_t context_{1};
  CurveKeyPair server_keys_ = newKeys();
  CurveKeyPair alice_ = newKeys();
  CurveKeyPair mallory_ = newKeys();
};

TEST_F(ZapHandlerTest, KnownKeyGetsThroughWithItsPeerNameAsUserId) {
  const std::unique_ptr<ZapHandler> handler = startHandler({{alice_.public_z85, "alice"}});
  ASSERT_NE(handler, nullptr);
  CurveServer server(context_, server_keys_, "qos");

  const std::optional<Received> received = sendAs(server, alice_, "alice");
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ(received->payload, "hello from alice");
  EXPECT_EQ(received->user_id, "alice");
  EXPECT_EQ(handler->counts().accepted, 1U);
  EXPECT_EQ(handler->counts().refused, 0U);
  EXPECT_EQ(handler->lastRefusedKey(), "");
}

TEST_F(ZapHandlerTest, UnknownKeyNeverDeliversAMessage) {
  const std::unique_ptr<ZapHandler> handler = startHandler({{alice_.public_z85, "alice"}});
  ASSERT_NE(handler, nullptr);
  CurveServer server(context_, server_keys_, "qos");

  zmq::socket_t client =
      curveClient(context_, server.endpoint(), server_keys_.public_z85, mallory_);
  ASSERT_TRUE(client.send(zmq::str_buffer("let me in"), zmq::send_flags::dontwait));
  EXPECT_TRUE(eventually([&] { return handler->counts().refused >= 1; }, kPatience));
  EXPECT_FALSE(server.receive(kQuietPeriod).has_value());
  EXPECT_EQ(handler->counts().accepted, 0U);
  EXPECT_EQ(handler->lastRefusedKey(), mallory_.public_z85);
}

TEST_F(ZapHandlerTest, WrongDomainIsRefused) {
  const std::unique_ptr<ZapHandler> handler = startHandler({{alice_.public_z85, "alice"}});
  ASSERT_NE(handler, nullptr);
  CurveServer server(context_, server_keys_, "some-other-service");

  EXPECT_FALSE(sendAs(server, alice_, "alice", kQuietPeriod).has_value());
  EXPECT_TRUE(eventually([&] { return handler->counts().refused >= 1; }, kPatience));
  EXPECT_EQ(handler->lastRefusedKey(), alice_.public_z85);
}

TEST_F(ZapHandlerTest, EmptyDomainLetsInEveryDomain) {
  const std::unique_ptr<ZapHandler> handler = startHandler({{alice_.public_z85, "alice"}}, "");
  ASSERT_NE(handler, nullptr);
  CurveServer server(context_, server_keys_, "whatever");
  const std::optional<Received> received = sendAs(server, alice_, "alice");
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ(received->user_id, "alice");
}

TEST_F(ZapHandlerTest, SetKeysRevokesAndGrantsForNewConnections) {
  const std::unique_ptr<ZapHandler> handler = startHandler({{alice_.public_z85, "alice"}});
  ASSERT_NE(handler, nullptr);
  CurveServer server(context_, server_keys_, "qos");

  zmq::socket_t connected =
      curveClient(context_, server.endpoint(), server_keys_.public_z85, alice_);
  ASSERT_TRUE(connected.send(zmq::str_buffer("before"), zmq::send_flags::dontwait));
  const std::optional<Received> before = server.receive(kPatience);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->user_id, "alice");

  // Revoked, and the same key given to somebody else: a new connection with
  // alice's key is refused.
  handler->setKeys({{mallory_.public_z85, "mallory"}});
  EXPECT_FALSE(sendAs(server, alice_, "alice", kQuietPeriod).has_value());
  EXPECT_TRUE(eventually([&] { return handler->counts().refused >= 1; }, kPatience));
  EXPECT_EQ(handler->lastRefusedKey(), alice_.public_z85);

  // A connection let in before stays: ZAP is asked once, at the handshake.
  ASSERT_TRUE(connected.send(zmq::str_buffer("after"), zmq::send_flags::dontwait));
  const std::optional<Received> after = server.receive(kPatience);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->payload, "after");

  const std::optional<Received> mallory = sendAs(server, mallory_, "mallory");
  ASSERT_TRUE(mallory.has_value());
  EXPECT_EQ(mallory->user_id, "mallory");
}

// What the header warns of, and the second line it asks servers for: with
// no handler libzmq 4.3.4 lets any CURVE client in, but its messages carry
// no User-Id.
TEST_F(ZapHandlerTest, WithoutAHandlerAnyKeyGetsInButHasNoUserId) {
  CurveServer server(context_, server_keys_, "qos");
  const std::optional<Received> received = sendAs(server, mallory_, "mallory");
  ASSERT_TRUE(received.has_value()) << "if libzmq now keeps them out, the header can say so";
  EXPECT_EQ(received->user_id, "(none)");
}

TEST_F(ZapHandlerTest, SecondHandlerOnOneContextFails) {
  const std::unique_ptr<ZapHandler> first = startHandler({});
  ASSERT_NE(first, nullptr);
  const Result<std::unique_ptr<ZapHandler>> second = ZapHandler::start(context_, {}, "qos");
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("inproc://zeromq.zap.01"), std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find("another ZAP handler"), std::string::npos)
      << second.error().message;

  zmq::context_t other_context(1);
  EXPECT_TRUE(ZapHandler::start(other_context, {}, "qos").ok()) << "one per context";
}

TEST_F(ZapHandlerTest, StartRefusesAKeyThatIsNotAKey) {
  const Result<std::unique_ptr<ZapHandler>> handler =
      ZapHandler::start(context_, {{"not a key", "alice"}}, "qos");
  ASSERT_FALSE(handler.ok());
  EXPECT_EQ(handler.error().code, ErrorCode::Invalid);
  EXPECT_NE(handler.error().message.find("alice"), std::string::npos);
  // Nothing stayed bound.
  EXPECT_TRUE(ZapHandler::start(context_, {}, "qos").ok());
}

/** Talks to the handler directly, as libzmq does, but with any frames a test likes. */
class RawZapPeer {
public:
  explicit RawZapPeer(zmq::context_t& context) : socket_(context, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(std::string(ZapHandler::kEndpoint));
  }

  void send(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      const auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      ASSERT_TRUE(socket_.send(zmq::buffer(frames[i]), flags));
    }
  }

  /** The next reply's frames, without the empty delimiter; empty if none came. */
  std::vector<std::string> receive(milliseconds timeout) {
    std::vector<std::string> frames;
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, timeout);
    if ((item.revents & ZMQ_POLLIN) == 0) {
      return frames;
    }
    zmq::message_t frame;
    do {
      if (!socket_.recv(frame)) {
        break;
      }
      frames.push_back(frame.to_string());
    } while (frame.more());
    if (!frames.empty() && frames.front().empty()) {
      frames.erase(frames.begin());
    }
    return frames;
  }

private:
  zmq::socket_t socket_;
};

/** A request with every frame RFC 27 asks for, then @p credentials. */
std::vector<std::string> request(const std::string& version, const std::string& id,
                                 const std::string& mechanism,
                                 const std::vector<std::string>& credentials) {
  std::vector<std::string> frames = {"", version, id, "qos", "127.0.0.1", "", mechanism};
  frames.insert(frames.end(), credentials.begin(), credentials.end());
  return frames;
}

TEST_F(ZapHandlerTest, MalformedRequestsAreAnsweredOrDroppedAndNeverStopIt) {
  const std::unique_ptr<ZapHandler> handler = startHandler({{alice_.public_z85, "alice"}});
  ASSERT_NE(handler, nullptr);
  RawZapPeer peer(context_);
  const auto alice_key = decodeZ85Key(alice_.public_z85);
  ASSERT_TRUE(alice_key.ok());
  const std::string alice_bytes(alice_key->begin(), alice_key->end());

  struct Case {
    std::vector<std::string> frames;
    std::string status;  ///< empty: no answer expected
  };
  const std::vector<Case> cases = {
      {{"garbage without a delimiter"}, ""},
      {{"", "1.0"}, ""},  // no request id to answer to
      {{"", "1.0", "2", "qos"}, "500"},
      {request("2.0", "3", "CURVE", {alice_bytes}), "500"},
      {request("1.0", "4", "CURVE", {"short"}), "500"},
      {request("1.0", "5", "CURVE", {}), "500"},
      {request("1.0", "6", "CURVE", std::vector<std::string>(20, alice_bytes)), "500"},
      {request("1.0", "7", "PLAIN", {"alice", "secret"}), "400"},
      {request("1.0", "8", "NULL", {}), "400"},
      {request("1.0", "9", std::string(300, '\x01'), {}), "400"},
      {request("1.0", "10", "CURVE", {alice_bytes}), "200"},
  };
  for (const Case& c : cases) {
    peer.send(c.frames);
    if (c.status.empty()) {
      continue;  // Checked below: the next answer is for the next request.
    }
    const std::vector<std::string> reply = peer.receive(kPatience);
    ASSERT_EQ(reply.size(), 6U) << "answer to request " << c.frames[2];
    EXPECT_EQ(reply[0], "1.0");
    EXPECT_EQ(reply[1], c.frames[2]) << "the request id comes back";
    EXPECT_EQ(reply[2], c.status) << "request " << c.frames[2] << ": " << reply[3];
    EXPECT_FALSE(reply[3].empty()) << "a status text";
    EXPECT_EQ(reply[4], c.status == "200" ? "alice" : "");
    EXPECT_EQ(reply[5], "") << "no metadata";
  }
  EXPECT_EQ(handler->counts().accepted, 1U);
  EXPECT_EQ(handler->counts().refused, 10U);

  // And real handshakes are still served.
  CurveServer server(context_, server_keys_, "qos");
  const std::optional<Received> received = sendAs(server, alice_, "alice");
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ(received->user_id, "alice");
}

}  // namespace
}  // namespace qos::control
