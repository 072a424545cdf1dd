#include "control/transport/client.h"

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.hpp>

#include "control/protocol/envelope.h"
#include "control/transport/curve_keys.h"
#include "control/transport/zap_handler.h"

namespace qos::control {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

/**
 * A ROUTER server on its own thread, speaking the envelope.
 *   Echo:      answers every request at once with its body.
 *   Silent:    reads requests, never answers.
 *   HoldFirst: keeps the first request unanswered; when the second comes,
 *              answers the first (now stale) and then the second.
 *   Noise:     before each answer sends a frame without the empty delimiter
 *              and a reply with somebody else's id.
 *   Garbage:   answers every request with a payload that is not a reply.
 */
class TestServer {
public:
  enum class Mode { Echo, Silent, HoldFirst, Noise, Garbage };

  /** With @p curve, a CURVE server in ZAP domain "qos" with that key pair. */
  TestServer(zmq::context_t& context, const std::string& endpoint, Mode mode,
             const CurveKeyPair* curve = nullptr)
      : socket_(context, zmq::socket_type::router), mode_(mode) {
    socket_.set(zmq::sockopt::linger, 0);
    if (curve != nullptr) {
      socket_.set(zmq::sockopt::curve_server, true);
      socket_.set(zmq::sockopt::curve_secretkey, curve->secret_z85);
      socket_.set(zmq::sockopt::zap_domain, "qos");
    }
    socket_.bind(endpoint);
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    // The socket moves to the server thread; thread creation is the barrier
    // ZeroMQ asks for when a socket changes threads.
    thread_ = std::thread([this] { run(); });
  }

  ~TestServer() {
    stop_.store(true);
    thread_.join();
  }

  const std::string& endpoint() const { return endpoint_; }
  int requestsSeen() const { return requests_seen_.load(); }

private:
  using Frames = std::vector<zmq::message_t>;

  void run() {
    std::optional<Frames> held;
    while (!stop_.load()) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(10));
      if ((item.revents & ZMQ_POLLIN) == 0) {
        continue;
      }
      Frames frames;
      do {
        zmq::message_t frame;
        if (!socket_.recv(frame, zmq::recv_flags::dontwait)) {
          break;
        }
        frames.push_back(std::move(frame));
      } while (frames.back().more());
      if (frames.size() != 3 || frames[1].size() != 0) {
        continue;
      }
      ++requests_seen_;
      switch (mode_) {
        case Mode::Silent:
          break;
        case Mode::Echo:
          answer(frames);
          break;
        case Mode::Noise:
          sendNoise(frames[0]);
          answer(frames);
          break;
        case Mode::Garbage:
          send(frames[0], "this is not a reply");
          break;
        case Mode::HoldFirst:
          if (!held) {
            held = std::move(frames);
          } else {
            answer(*held);
            answer(frames);
          }
          break;
      }
    }
  }

  void send(const zmq::message_t& identity, const std::string& payload, bool delimiter = true) {
    socket_.send(zmq::buffer(identity.data(), identity.size()), zmq::send_flags::sndmore);
    if (delimiter) {
      socket_.send(zmq::message_t(), zmq::send_flags::sndmore);
    }
    socket_.send(zmq::buffer(payload), zmq::send_flags::none);
  }

  void answer(const Frames& frames) {
    const std::string bytes = frames[2].to_string();
    const Result<Request> request = decodeRequest(bytes);
    Reply reply;
    if (request) {
      reply.id = request->id;
      reply.body = request->body;
    } else {
      reply = decodeFailureReply(bytes, request.error());
    }
    send(frames[0], encodeReply(reply));
  }

  void sendNoise(const zmq::message_t& identity) {
    Reply foreign;
    foreign.id = "somebody-else-1";
    foreign.body = json{{"noise", true}};
    send(identity, encodeReply(foreign), /*delimiter=*/false);
    send(identity, encodeReply(foreign));
  }

  zmq::socket_t socket_;
  const Mode mode_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_seen_{0};
  std::thread thread_;
};

/**
 * A loopback TCP port that is bound but not listening, so that connections
 * to it are refused for as long as the object lives, and nobody else can
 * take the port.  (A ZeroMQ socket bound and closed to find a free port does
 * not do: ZeroMQ closes its listener in the background, and a client that
 * connects at once may still be accepted by it.)
 */
class RefusingPort {
public:
  RefusingPort() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    auto* generic = reinterpret_cast<sockaddr*>(&address);
    EXPECT_EQ(bind(fd_, generic, length), 0);
    EXPECT_EQ(getsockname(fd_, generic, &length), 0);
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  }
  ~RefusingPort() { close(fd_); }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;

  const std::string& endpoint() const { return endpoint_; }

private:
  int fd_;
  std::string endpoint_;
};

/**
 * A loopback TCP listener that accepts every connection and closes it at
 * once, before a word is said: what a ZeroMQ client sees of a server that
 * drops its handshakes.
 */
class ClosingPort {
public:
  ClosingPort() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    auto* generic = reinterpret_cast<sockaddr*>(&address);
    EXPECT_EQ(bind(fd_, generic, length), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    EXPECT_EQ(getsockname(fd_, generic, &length), 0);
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
    closer_ = std::thread([this] {
      while (!stop_.load()) {
        const int conn = accept(fd_, nullptr, nullptr);
        if (conn >= 0) {
          close(conn);
          accepted_.fetch_add(1);
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      }
    });
  }
  ~ClosingPort() {
    stop_.store(true);
    closer_.join();
    close(fd_);
  }
  ClosingPort(const ClosingPort&) = delete;
  ClosingPort& operator=(const ClosingPort&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  int accepted() const { return accepted_.load(); }

private:
  int fd_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread closer_;
};

class ClientTest : public ::testing::Test {
protected:
  zmq::context_t context_{1};
};

TEST_F(ClientTest, CallRoundTripInproc) {
  TestServer server(context_, "inproc://echo", TestServer::Mode::Echo);
  RequestClient client(context_);
  ASSERT_TRUE(client.connect(server.endpoint(), 2000).ok());
  for (int i = 0; i < 20; ++i) {
    const json body = {{"n", i}, {"app", "voip"}};
    const Result<Reply> reply = client.call("provision", body);
    ASSERT_TRUE(reply.ok()) << reply.error().message;
    EXPECT_EQ(reply->status, ReplyStatus::Ok);
    EXPECT_EQ(reply->body, body);
  }
}

TEST_F(ClientTest, CallRoundTripOverTcpWithOwnContext) {
  TestServer server(context_, "tcp://127.0.0.1:*", TestServer::Mode::Echo);
  RequestClient client;
  ASSERT_TRUE(client.connect(server.endpoint(), 2000).ok());
  const Result<Reply> reply = client.call("flows", json::object());
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->status, ReplyStatus::Ok);
  EXPECT_TRUE(reply->body.empty());
}

/** Calls once with @p timeout_ms and checks the error and how long it took. */
void expectTimeout(RequestClient& client, int timeout_ms) {
  const SteadyClock::time_point start = SteadyClock::now();
  const Result<Reply> reply = client.call("provision", json{{"x", 1}});
  const auto elapsed = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::Unavailable) << reply.error().message;
  const std::string expected =
      "no reply from " + client.endpoint() + " within " + std::to_string(timeout_ms) + " ms";
  EXPECT_EQ(reply.error().message.rfind(expected, 0), 0U) << reply.error().message;
  EXPECT_GE(elapsed.count(), timeout_ms - 5);
  EXPECT_LT(elapsed.count(), timeout_ms + 1000) << "the deadline must hold";
}

TEST_F(ClientTest, TimesOutWhenNoServerListens) {
  const RefusingPort port;
  RequestClient client(context_);
  ASSERT_TRUE(client.connect(port.endpoint(), 200).ok());
  expectTimeout(client, 200);
  expectTimeout(client, 200);  // And again: nothing got stuck in the socket.
}

TEST_F(ClientTest, TimesOutWhenServerNeverAnswers) {
  TestServer server(context_, "inproc://silent", TestServer::Mode::Silent);
  RequestClient client(context_);
  ASSERT_TRUE(client.connect(server.endpoint(), 150).ok());
  expectTimeout(client, 150);
  EXPECT_EQ(server.requestsSeen(), 1);
}

TEST_F(ClientTest, StaleReplyFromTimedOutCallIsIgnored) {
  TestServer server(context_, "inproc://hold", TestServer::Mode::HoldFirst);
  RequestClient client(context_);
  ASSERT_TRUE(client.connect(server.endpoint(), 150).ok());
  const Result<Reply> first = client.call("provision", json{{"n", 1}});
  ASSERT_FALSE(first.ok());
  // The server now answers the first call, then the second: the client must
  // skip the late answer and return the one for its current call.
  const Result<Reply> second = client.call("provision", json{{"n", 2}});
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->body, json({{"n", 2}}));
}

TEST_F(ClientTest, ForeignRepliesAndMalformedFramesAreSkipped) {
  TestServer server(context_, "inproc://noise", TestServer::Mode::Noise);
  RequestClient client(context_);
  ASSERT_TRUE(client.connect(server.endpoint(), 2000).ok());
  const Result<Reply> reply = client.call("provision", json{{"n", 3}});
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->body, json({{"n", 3}}));
}

TEST_F(ClientTest, UndecodableReplyIsAnInternalError) {
  TestServer server(context_, "inproc://garbage", TestServer::Mode::Garbage);
  RequestClient client(context_);
  ASSERT_TRUE(client.connect(server.endpoint(), 2000).ok());
  const Result<Reply> reply = client.call("stats", json::object());
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::Internal);
  EXPECT_NE(reply.error().message.find("undecodable reply"), std::string::npos)
      << reply.error().message;
}

TEST_F(ClientTest, CallRawDeliversGarbageAndReturnsTheErrorReply) {
  TestServer server(context_, "inproc://raw", TestServer::Mode::Echo);
  RequestClient client(context_);
  ASSERT_TRUE(client.connect(server.endpoint(), 2000).ok());
  const Result<Reply> reply = client.callRaw("this is not json");
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->status, ReplyStatus::Error);
  EXPECT_EQ(reply->error.code, "bad_json");
  EXPECT_EQ(reply->id, "");

  const Result<Reply> versioned = client.callRaw(R"({"v":3,"type":"provision","id":"mine"})");
  ASSERT_TRUE(versioned.ok()) << versioned.error().message;
  EXPECT_EQ(versioned->id, "mine");
  EXPECT_EQ(versioned->error.code, "bad_version");
}

TEST_F(ClientTest, CallRawSkipsLateRepliesToEarlierCalls) {
  TestServer server(context_, "inproc://hold-raw", TestServer::Mode::HoldFirst);
  RequestClient client(context_);
  ASSERT_TRUE(client.connect(server.endpoint(), 150).ok());
  ASSERT_FALSE(client.call("provision", json{{"n", 1}}).ok());
  const Result<Reply> reply = client.callRaw(R"({"v":1,"type":"stats","id":"raw-1"})");
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->id, "raw-1");
}

TEST_F(ClientTest, RefusesMisuseWithoutThrowing) {
  RequestClient unconnected(context_);
  const Result<Reply> reply = unconnected.call("stats", json::object());
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.error().message.find("not connected"), std::string::npos);
  EXPECT_EQ(reply.error().code, ErrorCode::Invalid);

  RequestClient client(context_);
  const Result<void> bad_transport = client.connect("no-such-transport://x", 100);
  ASSERT_FALSE(bad_transport.ok());
  EXPECT_EQ(bad_transport.error().code, ErrorCode::Invalid);
  const Result<void> no_timeout = client.connect("inproc://x", 0);
  ASSERT_FALSE(no_timeout.ok());
  EXPECT_EQ(no_timeout.error().code, ErrorCode::Invalid);

  TestServer server(context_, "inproc://big", TestServer::Mode::Echo);
  ASSERT_TRUE(client.connect(server.endpoint(), 1000).ok());
  const Result<Reply> too_big =
      client.call("provision", json{{"blob", std::string(kMaxMessageBytes, 'x')}});
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.error().message.find("exceeds the limit"), std::string::npos);
  EXPECT_EQ(too_big.error().code, ErrorCode::Invalid);
  EXPECT_EQ(server.requestsSeen(), 0);
}

TEST_F(ClientTest, MovedClientKeepsWorking) {
  TestServer server(context_, "inproc://move", TestServer::Mode::Echo);
  RequestClient client(context_);
  ASSERT_TRUE(client.connect(server.endpoint(), 2000).ok());
  RequestClient moved = std::move(client);
  const Result<Reply> reply = moved.call("stats", json{{"k", "v"}});
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->body, json({{"k", "v"}}));
}

CurveKeyPair newKeys() {
  Result<CurveKeyPair> pair = generateCurveKeyPair();
  EXPECT_TRUE(pair.ok());
  return pair ? *pair : CurveKeyPair{};
}

/**
 * CURVE servers on the loopback whose ZAP handler knows alice's key only.
 * The handler starts before any server binds, as it must.
 */
class CurveClientTest : public ClientTest {
protected:
  void SetUp() override {
    Result<std::unique_ptr<ZapHandler>> handler =
        ZapHandler::start(context_, {{alice_.public_z85, "alice"}}, "qos");
    ASSERT_TRUE(handler.ok()) << handler.error().message;
    handler_ = std::move(*handler);
  }

  CurveClientKeys keysOf(const CurveKeyPair& client) const {
    return CurveClientKeys{client.public_z85, client.secret_z85, server_keys_.public_z85};
  }

  /** Calls once; @return the error, and how long the call took. */
  static std::pair<Error, milliseconds> failingCall(RequestClient& client) {
    const SteadyClock::time_point start = SteadyClock::now();
    const Result<Reply> reply = client.call("stats", json::object());
    const auto elapsed = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
    EXPECT_FALSE(reply.ok());
    return {reply.ok() ? Error{} : reply.error(), elapsed};
  }

  static bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }

  CurveKeyPair server_keys_ = newKeys();
  CurveKeyPair alice_ = newKeys();
  CurveKeyPair mallory_ = newKeys();
  std::unique_ptr<ZapHandler> handler_;  ///< after context_, so it stops before the context goes
};

/** Timeout for calls that must fail well before it. */
constexpr int kLongTimeoutMs = 5000;

TEST_F(CurveClientTest, KnownKeyGetsReplies) {
  TestServer server(context_, "tcp://127.0.0.1:*", TestServer::Mode::Echo, &server_keys_);
  RequestClient client;  // Its own context: ZAP is the server's business.
  const CurveClientKeys keys = keysOf(alice_);
  ASSERT_TRUE(client.connect(server.endpoint(), kLongTimeoutMs, &keys).ok());
  for (int i = 0; i < 5; ++i) {
    const Result<Reply> reply = client.call("provision", json{{"n", i}});
    ASSERT_TRUE(reply.ok()) << reply.error().message;
    EXPECT_EQ(reply->body, json({{"n", i}}));
  }
  EXPECT_EQ(handler_->counts().accepted, 1U) << "one handshake for all calls";

  RequestClient moved = std::move(client);
  const Result<Reply> reply = moved.call("stats", json{{"k", "v"}});
  ASSERT_TRUE(reply.ok()) << reply.error().message;
}

TEST_F(CurveClientTest, UnknownKeyIsUnauthorizedAtOnce) {
  TestServer server(context_, "tcp://127.0.0.1:*", TestServer::Mode::Echo, &server_keys_);
  RequestClient client(context_);
  const CurveClientKeys keys = keysOf(mallory_);
  ASSERT_TRUE(client.connect(server.endpoint(), kLongTimeoutMs, &keys).ok());
  // Twice: the second call opens a new socket, since libzmq gave up the first.
  for (int i = 0; i < 2; ++i) {
    const auto [error, elapsed] = failingCall(client);
    EXPECT_EQ(error.code, ErrorCode::Unauthorized) << error.message;
    EXPECT_EQ(error.message,
              "the server at " + server.endpoint() + " refused this key (ZAP status 400)");
    EXPECT_LT(elapsed.count(), 1000) << "must not wait for the " << kLongTimeoutMs << " ms";
  }
  EXPECT_EQ(server.requestsSeen(), 0);
  EXPECT_EQ(handler_->lastRefusedKey(), mallory_.public_z85);
}

TEST_F(CurveClientTest, RefusalBeforeTheFirstCallIsSeenByIt) {
  TestServer server(context_, "tcp://127.0.0.1:*", TestServer::Mode::Echo, &server_keys_);
  RequestClient client(context_);
  const CurveClientKeys keys = keysOf(mallory_);
  ASSERT_TRUE(client.connect(server.endpoint(), kLongTimeoutMs, &keys).ok());
  // The handshake is refused before the call, and libzmq does not try again:
  // only a monitor that was on from connect() can tell the call.
  const SteadyClock::time_point give_up = SteadyClock::now() + milliseconds(kLongTimeoutMs);
  while (handler_->counts().refused == 0 && SteadyClock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  ASSERT_EQ(handler_->counts().refused, 1U);
  const auto [error, elapsed] = failingCall(client);
  EXPECT_EQ(error.code, ErrorCode::Unauthorized) << error.message;
  EXPECT_LT(elapsed.count(), 1000);
}

TEST_F(CurveClientTest, RefusedKeyWorksOnceTheServerKnowsIt) {
  TestServer server(context_, "tcp://127.0.0.1:*", TestServer::Mode::Echo, &server_keys_);
  RequestClient client(context_);
  const CurveClientKeys keys = keysOf(mallory_);
  ASSERT_TRUE(client.connect(server.endpoint(), kLongTimeoutMs, &keys).ok());
  EXPECT_EQ(failingCall(client).first.code, ErrorCode::Unauthorized);

  handler_->setKeys({{mallory_.public_z85, "mallory"}});
  const Result<Reply> reply = client.call("stats", json{{"now", "known"}});
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->body, json({{"now", "known"}}));
}

TEST_F(CurveClientTest, WrongServerKeyIsUnauthorizedBeforeTheTimeout) {
  TestServer server(context_, "tcp://127.0.0.1:*", TestServer::Mode::Echo, &server_keys_);
  RequestClient client(context_);
  CurveClientKeys keys = keysOf(alice_);
  keys.server_public_z85 = mallory_.public_z85;  // Not the server's.
  ASSERT_TRUE(client.connect(server.endpoint(), kLongTimeoutMs, &keys).ok());
  const auto [error, elapsed] = failingCall(client);
  EXPECT_EQ(error.code, ErrorCode::Unauthorized) << error.message;
  EXPECT_TRUE(contains(error.message, "cannot authenticate the server at " + server.endpoint() +
                                          ": wrong server public key?"))
      << error.message;
  EXPECT_LT(elapsed.count(), kLongTimeoutMs / 2);
  EXPECT_EQ(server.requestsSeen(), 0);
  EXPECT_EQ(handler_->counts().accepted, 0U) << "the handshake never got as far as ZAP";
}

TEST_F(CurveClientTest, ServerWithoutCurveIsUnauthorized) {
  TestServer server(context_, "tcp://127.0.0.1:*", TestServer::Mode::Echo);
  RequestClient client(context_);
  const CurveClientKeys keys = keysOf(alice_);
  ASSERT_TRUE(client.connect(server.endpoint(), kLongTimeoutMs, &keys).ok());
  const auto [error, elapsed] = failingCall(client);
  EXPECT_EQ(error.code, ErrorCode::Unauthorized) << error.message;
  EXPECT_TRUE(contains(error.message, "does not use CURVE")) << error.message;
  EXPECT_LT(elapsed.count(), 1000);
  EXPECT_EQ(server.requestsSeen(), 0);
}

TEST_F(CurveClientTest, NoKeyAgainstACurveServerIsUnauthorizedEveryTime) {
  // The server closes a keyless handshake; whether the client reads the
  // server's greeting first (a mechanism mismatch) or sees the connection
  // closed first (no detail) is a race, so try it many times.
  TestServer server(context_, "tcp://127.0.0.1:*", TestServer::Mode::Echo, &server_keys_);
  for (int i = 0; i < 20; ++i) {
    RequestClient client(context_);
    ASSERT_TRUE(client.connect(server.endpoint(), kLongTimeoutMs).ok());
    const auto [error, elapsed] = failingCall(client);
    EXPECT_EQ(error.code, ErrorCode::Unauthorized) << "try " << i << ": " << error.message;
    EXPECT_TRUE(contains(error.message, "requires CURVE")) << error.message;
    EXPECT_LT(elapsed.count(), kLongTimeoutMs / 2);
  }
  EXPECT_EQ(server.requestsSeen(), 0);
}

TEST_F(CurveClientTest, AServerThatClosesEveryHandshakeIsUnauthorizedWithOrWithoutKeys) {
  const ClosingPort port;
  RequestClient keyless(context_);
  ASSERT_TRUE(keyless.connect(port.endpoint(), kLongTimeoutMs).ok());
  const auto [plain_error, plain_elapsed] = failingCall(keyless);
  EXPECT_EQ(plain_error.code, ErrorCode::Unauthorized) << plain_error.message;
  EXPECT_TRUE(contains(plain_error.message, "requires CURVE, or is not a ZeroMQ server"))
      << plain_error.message;
  EXPECT_LT(plain_elapsed.count(), kLongTimeoutMs / 2);

  RequestClient keyed(context_);
  const CurveClientKeys keys = keysOf(alice_);
  ASSERT_TRUE(keyed.connect(port.endpoint(), kLongTimeoutMs, &keys).ok());
  const auto [curve_error, curve_elapsed] = failingCall(keyed);
  EXPECT_EQ(curve_error.code, ErrorCode::Unauthorized) << curve_error.message;
  EXPECT_TRUE(contains(curve_error.message, "wrong server public key?")) << curve_error.message;
  EXPECT_LT(curve_elapsed.count(), kLongTimeoutMs / 2);
  EXPECT_GE(port.accepted(), 4);
}

TEST_F(CurveClientTest, NoServerIsUnavailableAtTheDeadline) {
  const RefusingPort port;
  RequestClient client(context_);
  const CurveClientKeys keys = keysOf(alice_);
  ASSERT_TRUE(client.connect(port.endpoint(), 300, &keys).ok());
  expectTimeout(client, 300);
  expectTimeout(client, 300);
}

TEST_F(CurveClientTest, ConnectRefusesKeysThatAreNotKeys) {
  RequestClient client(context_);
  CurveClientKeys keys = keysOf(alice_);
  keys.server_public_z85 = "too short";
  Result<void> result = client.connect("tcp://127.0.0.1:1", 100, &keys);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::Invalid);
  EXPECT_TRUE(contains(result.error().message, "server's CURVE public key"))
      << result.error().message;

  keys = keysOf(alice_);
  keys.public_z85 = mallory_.public_z85;
  result = client.connect("tcp://127.0.0.1:1", 100, &keys);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::Invalid);
  EXPECT_TRUE(contains(result.error().message, "not the one of its secret key"))
      << result.error().message;
  EXPECT_FALSE(contains(result.error().message, alice_.secret_z85));
}

}  // namespace
}  // namespace qos::control
