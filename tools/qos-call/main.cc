// qos-call: a VoIP phone in miniature, to show a host asking for QoS for a
// call and both ends marking their media (claim 17 of the seed).
//
//   qos-call listen --port 5060 [--bind ADDR] [--calls N] [--seconds S] [--json]
//   qos-call dial HOST:PORT --app voip --seconds 10 --rate 64kbit [--tcp]
//            [--agent ENDPOINT | --manager ENDPOINT --key FILE --manager-key FILE] [--json]
//
// The caller sends INVITE (over UDP, or TCP: signal_link.h), the callee answers with its media
// port, the caller's middleware (libqosclient, through qos-agent or straight to the manager) asks
// for a bidirectional grant for the media flow and sends the reverse DSCP to the callee in its ACK;
// both send RTP-sized datagrams at the rate, each on a socket marked with its own direction's DSCP.
// BYE (at the end, or on Ctrl-C) hangs up and the grant is released.
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
#include "tools/qos-call/signal_link.h"
#include "tools/qos-call/signaling.h"

namespace {

namespace po = boost::program_options;
using qos::call::bindTo;
using qos::call::Endpoint;
using qos::call::familyOf;
using qos::call::kRetryMs;
using qos::call::kTries;
using qos::call::localOf;
using qos::call::Message;
using qos::call::SignalLink;
using qos::call::Socket;
using qos::call::toSockaddr;
using Clock = std::chrono::steady_clock;

constexpr size_t kRtpBytes = 172;  // 12 bytes of RTP header, 160 of G.711 (20 ms)
/** No media from the other end for this long: it is gone, hang up (as RTP timeouts do). */
constexpr auto kMediaTimeout = std::chrono::seconds(4);
std::atomic<bool> g_hangup{false};

void onSignal(int) { g_hangup = true; }

// ---------------------------------------------------------------------------
// Media: RTP-sized datagrams at the rate, both ways, on one socket.

struct MediaCount {
  uint64_t sent = 0;
  uint64_t received = 0;
  bool peer_silent = false;  ///< ended because nothing came for kMediaTimeout
};

/**
 * Sends to @p peer every interval and counts what comes from it, until
 * @p seconds pass, g_hangup, nothing comes for kMediaTimeout, or @p hangup
 * (if any) brings the BYE of @p call_id (returned) or its TCP connection
 * closes.  @p tick, if any, runs between sends.
 */
std::optional<Message> runMedia(int media_fd, const Endpoint& peer, uint64_t rate_bps,
                                double seconds, MediaCount& count, SignalLink* hangup = nullptr,
                                const std::string& call_id = "",
                                const std::function<void()>& tick = {}) {
  const auto interval = std::chrono::nanoseconds(
      static_cast<int64_t>(kRtpBytes * 8 * 1e9 / static_cast<double>(rate_bps)));
  const auto end = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  auto next_send = Clock::now();
  auto last_heard = Clock::now();
  char packet[kRtpBytes] = {};
  packet[0] = static_cast<char>(0x80);  // RTP version 2
  sockaddr_storage sa{};
  const socklen_t len = toSockaddr(peer, sa);
  while (!g_hangup && Clock::now() < end) {
    if (Clock::now() - last_heard > kMediaTimeout) {
      count.peer_silent = true;
      break;
    }
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
    pollfd p[2] = {{media_fd, POLLIN, 0}, {hangup != nullptr ? hangup->fd() : -1, POLLIN, 0}};
    if (poll(p, hangup != nullptr ? 2 : 1, static_cast<int>(std::max<int64_t>(0, wait.count()))) <=
        0) {
      continue;
    }
    if ((p[0].revents & POLLIN) != 0) {
      char buf[2048];
      while (recv(media_fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
        ++count.received;
        last_heard = Clock::now();
      }
    }
    if (hangup != nullptr && (p[1].revents & (POLLIN | POLLHUP)) != 0) {
      if (auto m = hangup->receive(0); m && m->verb == "BYE" && m->call_id == call_id) {
        return m;
      }
      if (hangup->closed()) {
        return std::nullopt;
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

/**
 * Takes the call @p in (an INVITE) over @p link: answers with a media port,
 * waits for the ACK with the DSCP to mark with, sends media until the BYE.
 * @return false if the call never got going.
 */
bool serveCall(SignalLink& link, const Message& in, const Endpoint& caller,
               const qos::IpAddress& bind_addr, bool json,
               const std::function<void()>& while_busy) {
  auto media_at = in.fields.count("media") ? qos::call::parseEndpoint(in.fields.at("media"))
                                           : qos::Result<Endpoint>(qos::makeError("no media="));
  auto rate = qos::call::numberField(in, "rate", 10'000'000'000ULL);
  auto call_seconds = qos::call::numberField(in, "seconds", 86'400);
  if (!media_at || !rate || !call_seconds || *rate == 0) {
    std::cerr << "qos-call: a bad INVITE from " << qos::call::formatEndpoint(caller) << "\n";
    return false;
  }
  Socket media(familyOf(bind_addr), SOCK_DGRAM);
  bindTo(media.fd, Endpoint{bind_addr, 0});
  const uint16_t media_port = localOf(media.fd).port;
  Message ok{"OK", in.call_id, {{"media_port", std::to_string(media_port)}}};
  link.send(ok);
  // Wait for the ACK with the reverse DSCP (INVITEs repeated meanwhile get the OK again).
  std::optional<uint8_t> reverse;
  bool acked = false;
  for (int i = 0; i < kTries * 3 && !acked && !link.closed(); ++i) {
    auto got = link.receive(kRetryMs);
    if (!got || got->call_id != in.call_id) {
      continue;
    }
    if (got->verb == "INVITE") {
      link.send(ok);
    } else if (got->verb == "ACK") {
      acked = true;
      auto dscp = qos::call::numberField(*got, "reverse_dscp", 63);
      if (dscp) {
        reverse = static_cast<uint8_t>(*dscp);
      }
      link.send(Message{"ACK-OK", in.call_id, {}});
    }
  }
  if (!acked) {
    std::cerr << "qos-call: call " << in.call_id << " was never acknowledged\n";
    return false;
  }
  if (reverse) {
    if (auto marked = qos::client::markSocket(media.fd, *reverse); !marked) {
      std::cerr << "qos-call: cannot mark the media socket: " << marked.error().message << "\n";
    }
  }
  MediaCount count;
  auto bye = runMedia(media.fd, *media_at, *rate, static_cast<double>(*call_seconds) + 5, count,
                      &link, in.call_id, while_busy);
  uint64_t caller_sent = 0;
  if (bye) {
    auto sent = qos::call::numberField(*bye, "sent", UINT64_MAX);
    caller_sent = sent ? *sent : 0;
    link.send(Message{
        "BYE-OK",
        in.call_id,
        {{"sent", std::to_string(count.sent)}, {"received", std::to_string(count.received)}}});
  }
  if (json) {
    nlohmann::json out = {
        {"call", in.call_id},
        {"caller", qos::call::formatEndpoint(caller)},
        {"signaling", link.transport()},
        {"media", {{"local_port", media_port}, {"remote", qos::call::formatEndpoint(*media_at)}}},
        {"dscp", reverse ? nlohmann::json(*reverse) : nlohmann::json(nullptr)},
        {"to_caller", {{"sent", count.sent}}},
        {"from_caller", {{"sent", caller_sent}, {"received", count.received}}},
        {"caller_silent", count.peer_silent}};
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "call " << in.call_id << " from " << qos::call::formatEndpoint(caller) << " ("
              << link.transport() << "): "
              << (reverse
                      ? "media marked DSCP " + std::to_string(*reverse) + " (told by the caller)"
                      : std::string("media unmarked (best effort)"))
              << "; sent " << count.sent << ", received " << count.received << " of " << caller_sent
              << (count.peer_silent ? "; the caller's media stopped: hung up" : "") << std::endl;
  }
  return true;
}

int listen(const po::variables_map& vm) {
  const bool json = vm.count("json") != 0;
  const auto port = vm["port"].as<uint16_t>();
  qos::Result<qos::IpAddress> bind_addr = qos::parseIpAddress(vm["bind"].as<std::string>());
  if (!bind_addr) {
    std::cerr << "qos-call: --bind: " << bind_addr.error().message << "\n";
    return 2;
  }
  // Calls come over UDP or TCP, on the same port, as to a SIP server.
  Socket udp(familyOf(*bind_addr), SOCK_DGRAM);
  Socket tcp(familyOf(*bind_addr), SOCK_STREAM | SOCK_NONBLOCK);
  const int on = 1;
  setsockopt(tcp.fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (!bindTo(udp.fd, Endpoint{*bind_addr, port}) ||
      !bindTo(tcp.fd, Endpoint{*bind_addr, localOf(udp.fd).port}) || ::listen(tcp.fd, 8) != 0) {
    std::cerr << "qos-call: cannot listen on port " << port << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  const uint64_t calls = vm["calls"].as<uint64_t>();
  const double seconds = vm["seconds"].as<double>();
  const auto end = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  if (!json) {
    std::cout << "qos-call: listening on " << qos::call::formatEndpoint(localOf(udp.fd))
              << " (udp and tcp)" << std::endl;
  }
  // One call at a time, as a phone: others meanwhile are told BUSY.
  auto busy = [&](const Message& m, const Endpoint& from) {
    if (m.verb == "INVITE") {
      qos::call::sendDatagram(udp.fd, from, Message{"BUSY", m.call_id, {}});
    }
  };
  const SignalLink* current = nullptr;
  auto while_busy = [&] {
    const int conn = accept4(tcp.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn >= 0) {
      auto other = qos::call::tcpLink(conn);
      if (auto m = other->receive(100); m && m->verb == "INVITE") {
        other->send(Message{"BUSY", m->call_id, {}});
      }
    }
    // During a TCP call the UDP socket is read only here (a UDP call's link
    // answers others itself).
    if (current != nullptr && current->reliable()) {
      while (auto d = qos::call::receiveDatagram(udp.fd, 0)) {
        busy(d->first, d->second);
      }
    }
  };
  uint64_t served = 0;
  while (!g_hangup && (calls == 0 || served < calls) && (seconds == 0 || Clock::now() < end)) {
    pollfd p[2] = {{udp.fd, POLLIN, 0}, {tcp.fd, POLLIN, 0}};
    if (poll(p, 2, 200) <= 0) {
      continue;
    }
    if ((p[0].revents & POLLIN) != 0) {
      auto invite = qos::call::receiveDatagram(udp.fd, 0);
      if (invite && invite->first.verb == "INVITE") {
        auto link = qos::call::udpLink(udp.fd, invite->second, busy);
        current = link.get();
        served +=
            serveCall(*link, invite->first, invite->second, *bind_addr, json, while_busy) ? 1 : 0;
        current = nullptr;
      }
    }
    if ((p[1].revents & POLLIN) != 0) {
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      const int conn = accept4(tcp.fd, reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC);
      if (conn < 0) {
        continue;
      }
      auto link = qos::call::tcpLink(conn);
      auto invite = link->receive(kTries * kRetryMs);
      if (invite && invite->verb == "INVITE") {
        current = link.get();
        served +=
            serveCall(*link, *invite, qos::call::fromSockaddr(from), *bind_addr, json, while_busy)
                ? 1
                : 0;
        current = nullptr;
      }
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
  const bool over_tcp = vm.count("tcp") != 0;
  auto sig =
      std::make_unique<Socket>(familyOf(callee->address), over_tcp ? SOCK_STREAM : SOCK_DGRAM);
  Socket media(familyOf(callee->address), SOCK_DGRAM);
  sockaddr_storage sa{};
  const socklen_t len = toSockaddr(*callee, sa);
  // A TCP connect gives up after 3 s rather than the kernel's two minutes.
  const timeval connect_timeout{3, 0};
  setsockopt(sig->fd, SOL_SOCKET, SO_SNDTIMEO, &connect_timeout, sizeof connect_timeout);
  if (connect(sig->fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    std::cerr << "qos-call: cannot reach " << qos::call::formatEndpoint(*callee) << ": "
              << std::strerror(errno) << "\n";
    return 1;
  }
  Endpoint local = localOf(sig->fd);
  std::unique_ptr<SignalLink> link;
  if (over_tcp) {
    link = qos::call::tcpLink(sig->fd);
    sig->fd = -1;  // the link owns it now
  } else {
    link = qos::call::udpLink(sig->fd, *callee);
  }
  local.port = 0;
  bindTo(media.fd, local);
  const Endpoint media_local = localOf(media.fd);
  const std::string call_id = qos::randomHexId().substr(0, 12);

  Message invite{"INVITE",
                 call_id,
                 {{"media", qos::call::formatEndpoint(media_local)},
                  {"rate", std::to_string(*rate)},
                  {"seconds", std::to_string(static_cast<uint64_t>(seconds))}}};
  auto ok = qos::call::exchange(*link, invite, "OK", "BUSY");
  if (ok && ok->verb == "BUSY") {
    std::cerr << "qos-call: " << qos::call::formatEndpoint(*callee) << " is busy in another call\n";
    return 1;
  }
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
  if (!qos::call::exchange(*link, ack, "ACK-OK")) {
    std::cerr << "qos-call: the callee did not acknowledge the call\n";
    return 1;
  }
  if (!json) {
    std::cout << "call " << call_id << " to " << qos::call::formatEndpoint(*callee) << " ("
              << link->transport() << "): media " << qos::call::formatEndpoint(media_local)
              << " <-> " << qos::call::formatEndpoint(media_remote) << " (udp, "
              << qos::formatRate(*rate) << ", " << seconds << " s)\n"
              << qos_text << std::endl;
  }
  MediaCount count;
  bool lost_told = false;
  runMedia(media.fd, media_remote, *rate, seconds, count, nullptr, "", [&] {
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
  auto bye_ok = qos::call::exchange(
      *link, Message{"BYE", call_id, {{"sent", std::to_string(count.sent)}}}, "BYE-OK");
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
                          {"signaling", link->transport()},
                          {"media",
                           {{"local", qos::call::formatEndpoint(media_local)},
                            {"remote", qos::call::formatEndpoint(media_remote)}}},
                          {"qos", qos_json},
                          {"to_callee", {{"sent", count.sent}, {"received", callee_received}}},
                          {"from_callee", {{"sent", callee_sent}, {"received", count.received}}},
                          {"hung_up_early", g_hangup.load()},
                          {"callee_silent", count.peer_silent}};
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "hung up"
              << (g_hangup            ? " early"
                  : count.peer_silent ? " (no media from the callee for 4 s)"
                                      : "")
              << ": to the callee sent " << count.sent << ", received " << callee_received
              << "; from the callee sent " << callee_sent << ", received " << count.received
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
      "       qos-call dial HOST:PORT --app APP [--seconds S] [--rate RATE] [--tcp]\n"
      "                [--agent ENDPOINT | --manager ENDPOINT [--key FILE --manager-key FILE]] "
      "[--json]\n"
      "\n"
      "A VoIP call in miniature: the caller's middleware asks for a two-way grant for\n"
      "the media flow and tells the callee the reverse DSCP; both mark their media.\n"
      "The call set-up goes over UDP, or TCP with --tcp (a listener takes both).\n"
      "Without --agent or --manager the caller uses qos-agent's default socket.\n"
      "Exit codes as qosctl's: 0 a call with QoS, 1 unreachable, 2 bad usage,\n"
      "3 QoS denied (the call went best effort), 4 not authorized.\n";
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << usage;
    return argc < 2 ? 2 : 0;
  }
  const std::string mode = argv[1];
  po::options_description opts("Options");
  opts.add_options()("port", po::value<uint16_t>()->default_value(5060),
                     "listen: UDP and TCP port")(
      "bind", po::value<std::string>()->default_value("0.0.0.0"), "listen: address")(
      "calls", po::value<uint64_t>()->default_value(0), "listen: calls to take, 0 = no limit")(
      "to", po::value<std::string>(), "dial: HOST:PORT")(
      "tcp", "dial: the call set-up over TCP (default: UDP)")(
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
