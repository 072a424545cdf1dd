// qos-call: a VoIP phone in miniature, to show a host asking for QoS for a
// call and both ends marking their media (claim 17 of the seed).
//
//   qos-call listen --port 5060 [--bind ADDR] [--calls N] [--seconds S] [--json]
//   qos-call dial HOST:PORT --app voip --seconds 10 --rate 64kbit
//            [--agent ENDPOINT | --manager ENDPOINT --key FILE --manager-key FILE] [--json]
//
// The caller sends INVITE, the callee answers with its media port, the
// caller's middleware (libqosclient, through qos-agent or straight to the
// manager) asks for a bidirectional grant for the media flow and sends the
// reverse DSCP to the callee in its ACK; both send RTP-sized datagrams at
// the rate, each on a socket marked with its own direction's DSCP.  BYE
// (at the end, or on Ctrl-C) hangs up and the grant is released.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <boost/program_options.hpp>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/agent/agent_config.h"
#include "control/client/session.h"
#include "control/common/daemon.h"
#include "control/common/random_id.h"
#include "control/common/units.h"
#include "control/transport/curve_keys.h"
#include "tools/qos-call/signaling.h"

namespace {

namespace po = boost::program_options;
using qos::call::Endpoint;
using qos::call::Message;
using Clock = std::chrono::steady_clock;

constexpr size_t kRtpBytes = 172;  // 12 bytes of RTP header, 160 of G.711 (20 ms)
constexpr int kTries = 5;
constexpr int kRetryMs = 400;
std::atomic<bool> g_hangup{false};

void onSignal(int) { g_hangup = true; }

// ---------------------------------------------------------------------------
// Sockets

struct Socket {
  int fd = -1;
  explicit Socket(int family) : fd(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {}
  ~Socket() {
    if (fd >= 0) {
      close(fd);
    }
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
};

int familyOf(const qos::IpAddress& a) { return a.family == 6 ? AF_INET6 : AF_INET; }

socklen_t toSockaddr(const Endpoint& e, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (e.address.family == 6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&out);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(e.port);
    std::memcpy(&s->sin6_addr, e.address.bytes.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto* s = reinterpret_cast<sockaddr_in*>(&out);
  s->sin_family = AF_INET;
  s->sin_port = htons(e.port);
  std::memcpy(&s->sin_addr, e.address.bytes.data(), 4);
  return sizeof(sockaddr_in);
}

Endpoint fromSockaddr(const sockaddr_storage& in) {
  Endpoint e;
  if (in.ss_family == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&in);
    e.address.family = 6;
    std::memcpy(e.address.bytes.data(), &s->sin6_addr, 16);
    e.port = ntohs(s->sin6_port);
  } else {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&in);
    e.address.family = 4;
    std::memcpy(e.address.bytes.data(), &s->sin_addr, 4);
    e.port = ntohs(s->sin_port);
  }
  return e;
}

bool bindTo(int fd, const Endpoint& e) {
  sockaddr_storage sa{};
  const socklen_t len = toSockaddr(e, sa);
  return bind(fd, reinterpret_cast<sockaddr*>(&sa), len) == 0;
}

Endpoint localOf(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return fromSockaddr(sa);
}

void sendLine(int fd, const Endpoint& to, const Message& m) {
  const std::string line = qos::call::formatMessage(m);
  sockaddr_storage sa{};
  const socklen_t len = toSockaddr(to, sa);
  sendto(fd, line.data(), line.size(), 0, reinterpret_cast<sockaddr*>(&sa), len);
}

/** Waits up to @p wait_ms for a message on @p fd; a malformed one is said and skipped. */
std::optional<std::pair<Message, Endpoint>> receiveLine(int fd, int wait_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count()))) <= 0) {
      return std::nullopt;
    }
    char buf[600];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) {
      continue;
    }
    qos::Result<Message> m = qos::call::parseMessage(std::string_view(buf, static_cast<size_t>(n)));
    if (!m) {
      std::cerr << "qos-call: ignored a message: " << m.error().message << "\n";
      continue;
    }
    return std::make_pair(std::move(*m), fromSockaddr(from));
  }
}

/** Sends @p m until a reply of @p verb for the same call comes. */
std::optional<Message> exchange(int fd, const Endpoint& to, const Message& m,
                                const std::string& verb) {
  for (int i = 0; i < kTries; ++i) {
    sendLine(fd, to, m);
    const auto until = Clock::now() + std::chrono::milliseconds(kRetryMs);
    while (Clock::now() < until) {
      auto got = receiveLine(fd, kRetryMs);
      if (got && got->first.verb == verb && got->first.call_id == m.call_id) {
        return got->first;
      }
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Media: RTP-sized datagrams at the rate, both ways, on one socket.

struct MediaCount {
  uint64_t sent = 0;
  uint64_t received = 0;
};

/**
 * Sends to @p peer every interval and counts what comes from it, until
 * @p seconds pass, g_hangup, or @p stop_fd brings a message (returned).
 * @p tick, if any, runs between sends.
 */
std::optional<std::pair<Message, Endpoint>> runMedia(int media_fd, const Endpoint& peer,
                                                     uint64_t rate_bps, double seconds,
                                                     MediaCount& count, int stop_fd,
                                                     const std::function<void()>& tick = {}) {
  const auto interval = std::chrono::nanoseconds(
      static_cast<int64_t>(kRtpBytes * 8 * 1e9 / static_cast<double>(rate_bps)));
  const auto end = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  auto next_send = Clock::now();
  char packet[kRtpBytes] = {};
  packet[0] = static_cast<char>(0x80);  // RTP version 2
  sockaddr_storage sa{};
  const socklen_t len = toSockaddr(peer, sa);
  while (!g_hangup && Clock::now() < end) {
    if (tick) {
      tick();
    }
    if (Clock::now() >= next_send) {
      const uint64_t seq = count.sent;
      packet[2] = static_cast<char>(seq >> 8);
      packet[3] = static_cast<char>(seq);
      if (sendto(media_fd, packet, sizeof packet, 0, reinterpret_cast<sockaddr*>(&sa), len) > 0) {
        ++count.sent;
      }
      next_send += interval;
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min(next_send, end) - Clock::now());
    pollfd p[2] = {{media_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(p, stop_fd >= 0 ? 2 : 1, static_cast<int>(std::max<int64_t>(0, wait.count()))) <= 0) {
      continue;
    }
    if ((p[0].revents & POLLIN) != 0) {
      char buf[2048];
      while (recv(media_fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
        ++count.received;
      }
    }
    if (stop_fd >= 0 && (p[1].revents & POLLIN) != 0) {
      if (auto m = receiveLine(stop_fd, 0)) {
        return m;
      }
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------

int exitOf(qos::ErrorCode code) {
  switch (code) {
    case qos::ErrorCode::Invalid:
      return 2;
    case qos::ErrorCode::Denied:
      return 3;
    case qos::ErrorCode::Unauthorized:
      return 4;
    default:
      return 1;
  }
}

int listen(const po::variables_map& vm) {
  const bool json = vm.count("json") != 0;
  const auto port = vm["port"].as<uint16_t>();
  qos::Result<qos::IpAddress> bind_addr = qos::parseIpAddress(vm["bind"].as<std::string>());
  if (!bind_addr) {
    std::cerr << "qos-call: --bind: " << bind_addr.error().message << "\n";
    return 2;
  }
  Socket sig(familyOf(*bind_addr));
  if (!bindTo(sig.fd, Endpoint{*bind_addr, port})) {
    std::cerr << "qos-call: cannot listen on port " << port << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  const uint64_t calls = vm["calls"].as<uint64_t>();
  const double seconds = vm["seconds"].as<double>();
  const auto end = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  if (!json) {
    std::cout << "qos-call: listening on " << qos::call::formatEndpoint(localOf(sig.fd))
              << std::endl;
  }
  uint64_t served = 0;
  while (!g_hangup && (calls == 0 || served < calls) && (seconds == 0 || Clock::now() < end)) {
    auto invite = receiveLine(sig.fd, 200);
    if (!invite || invite->first.verb != "INVITE") {
      continue;
    }
    const Message& in = invite->first;
    const Endpoint caller = invite->second;
    auto media_at = in.fields.count("media") ? qos::call::parseEndpoint(in.fields.at("media"))
                                             : qos::Result<Endpoint>(qos::makeError("no media="));
    auto rate = qos::call::numberField(in, "rate", 10'000'000'000ULL);
    auto call_seconds = qos::call::numberField(in, "seconds", 86'400);
    if (!media_at || !rate || !call_seconds || *rate == 0) {
      std::cerr << "qos-call: a bad INVITE from " << qos::call::formatEndpoint(caller) << "\n";
      continue;
    }
    Socket media(familyOf(*bind_addr));
    bindTo(media.fd, Endpoint{*bind_addr, 0});
    const uint16_t media_port = localOf(media.fd).port;
    Message ok{"OK", in.call_id, {{"media_port", std::to_string(media_port)}}};
    sendLine(sig.fd, caller, ok);
    // Wait for the ACK with the reverse DSCP (INVITEs repeated meanwhile get the OK again).
    std::optional<uint8_t> reverse;
    bool acked = false;
    for (int i = 0; i < kTries * 3 && !acked; ++i) {
      auto got = receiveLine(sig.fd, kRetryMs);
      if (!got || got->first.call_id != in.call_id) {
        continue;
      }
      if (got->first.verb == "INVITE") {
        sendLine(sig.fd, caller, ok);
      } else if (got->first.verb == "ACK") {
        acked = true;
        auto dscp = qos::call::numberField(got->first, "reverse_dscp", 63);
        if (dscp) {
          reverse = static_cast<uint8_t>(*dscp);
        }
        sendLine(sig.fd, caller, Message{"ACK-OK", in.call_id, {}});
      }
    }
    if (!acked) {
      std::cerr << "qos-call: call " << in.call_id << " was never acknowledged\n";
      continue;
    }
    if (reverse) {
      if (auto marked = qos::client::markSocket(media.fd, *reverse); !marked) {
        std::cerr << "qos-call: cannot mark the media socket: " << marked.error().message << "\n";
      }
    }
    MediaCount count;
    auto bye =
        runMedia(media.fd, *media_at, *rate, static_cast<double>(*call_seconds) + 5, count, sig.fd);
    uint64_t caller_sent = 0;
    if (bye && bye->first.verb == "BYE") {
      auto sent = qos::call::numberField(bye->first, "sent", UINT64_MAX);
      caller_sent = sent ? *sent : 0;
      Message bye_ok{
          "BYE-OK",
          in.call_id,
          {{"sent", std::to_string(count.sent)}, {"received", std::to_string(count.received)}}};
      sendLine(sig.fd, caller, bye_ok);
    }
    ++served;
    if (json) {
      nlohmann::json out = {
          {"call", in.call_id},
          {"caller", qos::call::formatEndpoint(caller)},
          {"media", {{"local_port", media_port}, {"remote", qos::call::formatEndpoint(*media_at)}}},
          {"dscp", reverse ? nlohmann::json(*reverse) : nlohmann::json(nullptr)},
          {"to_caller", {{"sent", count.sent}}},
          {"from_caller", {{"sent", caller_sent}, {"received", count.received}}}};
      std::cout << out.dump() << std::endl;
    } else {
      std::cout << "call " << in.call_id << " from " << qos::call::formatEndpoint(caller) << ": "
                << (reverse
                        ? "media marked DSCP " + std::to_string(*reverse) + " (told by the caller)"
                        : std::string("media unmarked (best effort)"))
                << "; sent " << count.sent << ", received " << count.received << " of "
                << caller_sent << std::endl;
    }
  }
  return 0;
}

int dial(const po::variables_map& vm) {
  const bool json = vm.count("json") != 0;
  qos::Result<Endpoint> callee = qos::call::parseEndpoint(vm["to"].as<std::string>());
  if (!callee) {
    std::cerr << "qos-call: " << callee.error().message << "\n";
    return 2;
  }
  qos::Result<uint64_t> rate = qos::parseRateBitsPerSec(vm["rate"].as<std::string>());
  if (!rate || *rate == 0) {
    std::cerr << "qos-call: --rate: " << (rate ? "must be > 0" : rate.error().message) << "\n";
    return 2;
  }
  const double seconds = vm["seconds"].as<double>();
  // Which way the middleware reaches the manager.
  qos::client::SessionOptions options;
  options.endpoint = qos::agent::kDefaultListen;
  if (vm.count("agent") != 0) {
    options.endpoint = vm["agent"].as<std::string>();
  } else if (vm.count("manager") != 0) {
    options.endpoint = vm["manager"].as<std::string>();
    if (vm.count("key") != 0) {
      auto own = qos::control::loadCurveSecretKey(vm["key"].as<std::string>());
      auto server = qos::control::loadCurvePublicKey(
          vm.count("manager-key") != 0 ? vm["manager-key"].as<std::string>() : "");
      if (!own || !server) {
        std::cerr << "qos-call: " << (!own ? own.error().message : server.error().message) << "\n";
        return 2;
      }
      options.curve = qos::control::CurveClientKeys{own->public_z85, own->secret_z85, *server};
    }
  }
  Socket sig(familyOf(callee->address));
  Socket media(familyOf(callee->address));
  sockaddr_storage sa{};
  const socklen_t len = toSockaddr(*callee, sa);
  if (connect(sig.fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    std::cerr << "qos-call: cannot reach " << qos::call::formatEndpoint(*callee) << ": "
              << std::strerror(errno) << "\n";
    return 1;
  }
  Endpoint local = localOf(sig.fd);
  local.port = 0;
  bindTo(media.fd, local);
  const Endpoint media_local = localOf(media.fd);
  const std::string call_id = qos::randomHexId().substr(0, 12);

  Message invite{"INVITE",
                 call_id,
                 {{"media", qos::call::formatEndpoint(media_local)},
                  {"rate", std::to_string(*rate)},
                  {"seconds", std::to_string(static_cast<uint64_t>(seconds))}}};
  auto ok = exchange(sig.fd, *callee, invite, "OK");
  auto media_port =
      ok ? qos::call::numberField(*ok, "media_port", 65535) : qos::Result<uint64_t>(0);
  if (!ok || !media_port || *media_port == 0) {
    std::cerr << "qos-call: " << qos::call::formatEndpoint(*callee) << " did not answer the call\n";
    return 1;
  }
  const Endpoint media_remote{callee->address, static_cast<uint16_t>(*media_port)};

  // The middleware asks for a two-way grant for the media flow.  If the
  // grant is lost during the call (an admin released it, its lease ran out
  // while the manager was unreachable), the library says so on its own
  // thread; the media loop then takes the mark off and goes on best effort.
  std::mutex lost_mutex;
  std::string lost_reason;
  std::atomic<bool> lost{false};
  auto on_lost = [&](uint64_t /*flow_id*/, const std::string& why) {
    const std::lock_guard<std::mutex> lock(lost_mutex);
    lost_reason = why;
    lost = true;
  };
  int exit_code = 0;
  nlohmann::json qos_json;
  std::shared_ptr<qos::client::HeldGrant> held;
  std::unique_ptr<qos::client::Session> session;
  qos::control::AdmissionRequest request;
  request.application = vm["app"].as<std::string>();
  request.flow.src = media_local.address;
  request.flow.src_port = media_local.port;
  request.flow.dst = media_remote.address;
  request.flow.dst_port = media_remote.port;
  request.flow.protocol = 17;
  request.bidirectional = true;
  std::string qos_text;
  auto opened = qos::client::Session::open(options);
  qos::Result<qos::client::Outcome> outcome =
      opened ? (session = std::move(*opened), session->request(request, on_lost))
             : qos::Result<qos::client::Outcome>(opened.error());
  std::optional<uint8_t> reverse;
  if (!outcome) {
    exit_code = exitOf(outcome.error().code);
    qos_json = {{"granted", false}, {"error", outcome.error().message}};
    qos_text = "QoS: " + outcome.error().message + "; the call goes best effort, unmarked";
  } else if (const auto* denial = std::get_if<qos::control::Denial>(&*outcome)) {
    exit_code = 3;
    const std::string reason(qos::control::denyReasonName(denial->reason));
    qos_json = {{"granted", false}, {"reason", reason}, {"message", denial->message}};
    qos_text =
        "QoS denied (" + reason + "): " + denial->message + "; the call goes best effort, unmarked";
  } else {
    held = std::get<std::shared_ptr<qos::client::HeldGrant>>(*outcome);
    const qos::control::Grant& g = held->grant();
    reverse = g.reverse_dscp;
    if (auto marked = held->markSocket(media.fd); !marked) {
      std::cerr << "qos-call: cannot mark the media socket: " << marked.error().message << "\n";
    }
    const std::string profile =
        g.profile_index == 0 ? "default" : "alternate " + std::to_string(g.profile_index);
    qos_json = {{"granted", true},
                {"flow_id", g.flow_id},
                {"class", g.profile.class_name},
                {"rate_bps", g.profile.rate_bps},
                {"profile", g.profile_index == 0 ? "default" : "alternate"},
                {"profile_index", g.profile_index},
                {"dscp", g.dscp},
                {"reverse_dscp", reverse ? nlohmann::json(*reverse) : nlohmann::json(nullptr)}};
    qos_text = "QoS: granted flow " + std::to_string(g.flow_id) + ", " + g.profile.class_name +
               " at " + qos::formatRate(g.profile.rate_bps) + " (" + profile + " profile); DSCP " +
               std::to_string(g.dscp) + " here, " +
               (reverse ? std::to_string(*reverse) : std::string("none")) + " at the callee";
  }
  Message ack{"ACK", call_id, {{"reverse_dscp", reverse ? std::to_string(*reverse) : "none"}}};
  if (!exchange(sig.fd, *callee, ack, "ACK-OK")) {
    std::cerr << "qos-call: the callee did not acknowledge the call\n";
    return 1;
  }
  if (!json) {
    std::cout << "call " << call_id << " to " << qos::call::formatEndpoint(*callee) << ": media "
              << qos::call::formatEndpoint(media_local) << " <-> "
              << qos::call::formatEndpoint(media_remote) << " (udp, " << qos::formatRate(*rate)
              << ", " << seconds << " s)\n"
              << qos_text << std::endl;
  }
  MediaCount count;
  bool lost_told = false;
  runMedia(media.fd, media_remote, *rate, seconds, count, -1, [&] {
    if (!held || lost_told || !lost) {
      return;
    }
    lost_told = true;
    static_cast<void>(held->release());  // a lost grant: this only takes the mark off
    const std::lock_guard<std::mutex> lock(lost_mutex);
    qos_json["lost"] = lost_reason;
    if (!json) {
      std::cout << "QoS lost during the call (" << lost_reason
                << "); the rest of the call goes best effort, unmarked" << std::endl;
    }
  });
  auto bye_ok = exchange(sig.fd, *callee,
                         Message{"BYE", call_id, {{"sent", std::to_string(count.sent)}}}, "BYE-OK");
  if (held) {
    if (auto released = held->release(); !released) {
      std::cerr << "qos-call: releasing the grant: " << released.error().message << "\n";
    }
  }
  auto counted = [&](const char* key) -> uint64_t {
    if (!bye_ok) {
      return 0;
    }
    auto n = qos::call::numberField(*bye_ok, key, UINT64_MAX);
    return n ? *n : 0;
  };
  const uint64_t callee_sent = counted("sent");
  const uint64_t callee_received = counted("received");
  if (json) {
    nlohmann::json out = {{"call", call_id},
                          {"callee", qos::call::formatEndpoint(*callee)},
                          {"media",
                           {{"local", qos::call::formatEndpoint(media_local)},
                            {"remote", qos::call::formatEndpoint(media_remote)}}},
                          {"qos", qos_json},
                          {"to_callee", {{"sent", count.sent}, {"received", callee_received}}},
                          {"from_callee", {{"sent", callee_sent}, {"received", count.received}}},
                          {"hung_up_early", g_hangup.load()}};
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "hung up" << (g_hangup ? " early" : "") << ": to the callee sent " << count.sent
              << ", received " << callee_received << "; from the callee sent " << callee_sent
              << ", received " << count.received
              << (!held       ? ""
                  : lost_told ? "; the grant had been lost"
                              : "; grant released")
              << std::endl;
  }
  return exit_code;
}

int run(int argc, char** argv) {
  const std::string usage =
      "Usage: qos-call listen --port PORT [--bind ADDR] [--calls N] [--seconds S] [--json]\n"
      "       qos-call dial HOST:PORT --app APP [--seconds S] [--rate RATE]\n"
      "                [--agent ENDPOINT | --manager ENDPOINT [--key FILE --manager-key FILE]] "
      "[--json]\n"
      "\n"
      "A VoIP call in miniature: the caller's middleware asks for a two-way grant for\n"
      "the media flow and tells the callee the reverse DSCP; both mark their media.\n"
      "Without --agent or --manager the caller uses qos-agent's default socket.\n"
      "Exit codes as qosctl's: 0 a call with QoS, 1 unreachable, 2 bad usage,\n"
      "3 QoS denied (the call went best effort), 4 not authorized.\n";
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << usage;
    return argc < 2 ? 2 : 0;
  }
  const std::string mode = argv[1];
  po::options_description opts("Options");
  opts.add_options()("port", po::value<uint16_t>()->default_value(5060), "listen: UDP port")(
      "bind", po::value<std::string>()->default_value("0.0.0.0"), "listen: address")(
      "calls", po::value<uint64_t>()->default_value(0), "listen: calls to take, 0 = no limit")(
      "to", po::value<std::string>(), "dial: HOST:PORT")(
      "app", po::value<std::string>()->default_value(""), "dial: the manager's application")(
      "seconds", po::value<double>()->default_value(10), "call length / listen time (0 = ever)")(
      "rate", po::value<std::string>()->default_value("64kbit"), "dial: media rate")(
      "agent", po::value<std::string>(), "dial: qos-agent's endpoint")(
      "manager", po::value<std::string>(), "dial: the manager's endpoint")(
      "key", po::value<std::string>(), "dial: this host's CURVE key file")(
      "manager-key", po::value<std::string>(), "dial: the manager's public key")("json",
                                                                                 "one JSON object");
  po::positional_options_description positional;
  positional.add("to", 1);
  po::variables_map vm;
  try {
    po::store(
        po::command_line_parser(argc - 1, argv + 1).options(opts).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "qos-call: " << e.what() << "\n" << usage;
    return 2;
  }
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  if (mode == "listen") {
    return listen(vm);
  }
  if (mode == "dial" && vm.count("to") != 0) {
    return dial(vm);
  }
  std::cerr << usage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  return qos::daemon::runGuarded("qos-call", [&] { return run(argc, argv); });
}
