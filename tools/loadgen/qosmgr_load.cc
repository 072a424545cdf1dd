// qosmgr-load: keeps many requests in flight against a running qosmgr over
// ZeroMQ and prints admissions/s, releases/s and latency percentiles.
//
//   qosmgr-load --endpoint tcp://127.0.0.1:7700 --preload 100000 --requests 100000
//
// Phases: (1) preload: admit --preload flows with a long lease and keep them,
// so the measured phases run against that many live reservations; (2) admit
// --requests more flows; (3) release those.  Each phase pipelines
// --connections DEALER sockets with --window requests in flight on each.
// Latency is from send to reply, per request, measured here.  CPU time per
// request, of this program and (with --server-pid) of qosmgr, is printed too:
// on a shared machine it is the figure other work disturbs least.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>
#include <simdjson.h>
#include <unistd.h>
#include <zmq.hpp>

#include "control/common/daemon.h"
#include "control/protocol/envelope.h"
#include "control/protocol/fields.h"
#include "control/protocol/messages.h"
#include "tools/loadgen/bench_requests.h"

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

namespace {

/** CPU seconds (user + system) a process has used; -1 if unreadable. */
double processCpuSeconds(int pid) {
  if (pid <= 0) {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) {
    return -1;
  }
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) {  // utime, stime
      ticks += std::stod(field);
    }
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/**
 * What the load generator needs of a reply: its id, status, error and the
 * body's flow_id.  simdjson validates the whole reply and reads these in
 * well under a microsecond; nlohmann's SAX parser took four, as much as a
 * third of what qosmgr spends answering, on the same two CPUs, and the
 * time a reply waits behind others here is counted in its latency.  The
 * replies come from the manager under test: the envelope's own checks
 * (control/protocol) are its tests' business, not this program's.
 */
class ReplyReader {
public:
  struct Summary {
    std::string_view id;
    std::string_view status;
    std::string_view error_code;
    std::string_view error_message;
    std::optional<uint64_t> flow_id;
  };

  /**
   * Reads @p bytes into @p out; false if they are not a JSON object with a
   * string status.  The views point into this reader and last until the
   * next read.
   */
  bool read(std::string_view bytes, Summary& out) {
    out = Summary();
    simdjson::dom::object reply;
    if (parser_.parse(bytes.data(), bytes.size()).get(reply) != simdjson::SUCCESS ||
        reply["status"].get(out.status) != simdjson::SUCCESS) {
      return false;
    }
    out.id = stringOrEmpty(reply, "id");
    simdjson::dom::object error;
    if (reply["error"].get(error) == simdjson::SUCCESS) {
      out.error_code = stringOrEmpty(error, "code");
      out.error_message = stringOrEmpty(error, "message");
    }
    uint64_t flow = 0;
    if (reply.at_pointer("/body/flow_id").get(flow) == simdjson::SUCCESS) {
      out.flow_id = flow;
    }
    return true;
  }

private:
  static std::string_view stringOrEmpty(simdjson::dom::object object, std::string_view key) {
    std::string_view value;
    return object[key].get(value) == simdjson::SUCCESS ? value : std::string_view();
  }

  simdjson::dom::parser parser_;
};

struct PhaseResult {
  double client_cpu_s = 0;
  double server_cpu_s = -1;  ///< -1: not measured
  size_t ok = 0;
  size_t denied = 0;
  size_t errors = 0;
  double seconds = 0;
  std::vector<double> latency_ms;
  std::vector<uint64_t> flow_ids;
};

class Pipeline {
public:
  Pipeline(zmq::context_t& ctx, const std::string& endpoint, int connections, int window,
           int server_pid)
      : window_(window), server_pid_(server_pid) {
    for (int c = 0; c < connections; ++c) {
      sockets_.emplace_back(ctx, zmq::socket_type::dealer);
      sockets_.back().set(zmq::sockopt::linger, 0);
      sockets_.back().set(zmq::sockopt::sndhwm, 0);
      sockets_.back().set(zmq::sockopt::rcvhwm, 0);
      sockets_.back().connect(endpoint);
      inflight_.push_back(0);
    }
  }

  // Sends n requests made by make(i) and collects every reply.  The requests
  // are encoded before the clock starts: the figures are the manager's, not
  // this program's JSON encoder's.  Each reply is answered at once by the
  // next request on its connection, so every connection keeps its window
  // full.  A request's id is its index in this phase, so its send time is
  // found without hashing.
  template <typename Make>
  PhaseResult run(size_t n, const std::string& type, Make make) {
    PhaseResult result;
    result.latency_ms.reserve(n);
    std::vector<std::string> payloads;
    payloads.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      payloads.push_back(
          qos::control::encodeRequest({.type = type,
                                       .id = std::to_string(i),
                                       .body_json = qos::control::encodeObject(make(i))}));
    }
    std::vector<Clock::time_point> sent_at(n);
    std::vector<bool> answered(n, false);
    size_t next = 0;
    size_t done = 0;
    const auto sendNext = [&](size_t c) {
      sockets_[c].send(zmq::message_t(), zmq::send_flags::sndmore);
      sockets_[c].send(zmq::buffer(payloads[next]), zmq::send_flags::none);
      sent_at[next] = Clock::now();
      ++inflight_[c];
      ++next;
    };
    const double client_cpu_start = processCpuSeconds(0);
    const double server_cpu_start = server_pid_ > 0 ? processCpuSeconds(server_pid_) : -1;
    const auto start = Clock::now();
    auto last_progress = start;
    ReplyReader reader;
    ReplyReader::Summary reply;
    std::vector<zmq::pollitem_t> items;
    for (auto& s : sockets_) {
      items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
    }
    for (size_t c = 0; c < sockets_.size(); ++c) {
      while (inflight_[c] < window_ && next < n) {
        sendNext(c);
      }
    }
    while (done < n) {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
      for (size_t c = 0; c < sockets_.size(); ++c) {
        if ((items[c].revents & ZMQ_POLLIN) == 0) {
          continue;
        }
        zmq::message_t empty;
        while (sockets_[c].recv(empty, zmq::recv_flags::dontwait)) {
          zmq::message_t payload;
          (void)sockets_[c].recv(payload, zmq::recv_flags::none);
          const auto now = Clock::now();
          last_progress = now;
          --inflight_[c];
          ++done;
          if (next < n) {
            sendNext(c);
          }
          size_t index = n;
          if (!reader.read(payload.to_string_view(), reply) ||
              std::from_chars(reply.id.data(), reply.id.data() + reply.id.size(), index).ec !=
                  std::errc() ||
              index >= next || answered[index]) {
            ++result.errors;
            continue;
          }
          answered[index] = true;
          result.latency_ms.push_back(
              std::chrono::duration<double, std::milli>(now - sent_at[index]).count());
          if (reply.status == "ok") {
            ++result.ok;
            if (reply.flow_id) {
              result.flow_ids.push_back(*reply.flow_id);
            }
          } else if (reply.status == "denied") {
            ++result.denied;
          } else if (result.errors++ == 0) {
            std::fprintf(stderr, "qosmgr-load: first error: %.*s: %.*s: %.*s\n",
                         static_cast<int>(reply.status.size()), reply.status.data(),
                         static_cast<int>(reply.error_code.size()), reply.error_code.data(),
                         static_cast<int>(reply.error_message.size()), reply.error_message.data());
          }
        }
      }
      if (Clock::now() - last_progress > std::chrono::seconds(10)) {
        std::fprintf(stderr, "qosmgr-load: no reply for 10 s (%zu of %zu done); giving up\n", done,
                     n);
        result.errors += n - done;
        break;
      }
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    result.client_cpu_s = processCpuSeconds(0) - client_cpu_start;
    if (server_cpu_start >= 0) {
      result.server_cpu_s = processCpuSeconds(server_pid_) - server_cpu_start;
    }
    return result;
  }

private:
  std::vector<zmq::socket_t> sockets_;
  std::vector<int> inflight_;
  int window_;
  int server_pid_;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) {
    return 0;
  }
  const auto k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void report(const char* name, PhaseResult& r, size_t n) {
  std::printf("%-8s %8zu requests: %8zu ok %6zu denied %6zu errors in %6.2f s = %9.0f/s", name, n,
              r.ok, r.denied, r.errors, r.seconds, static_cast<double>(n) / r.seconds);
  std::printf("   latency ms p50 %.3f p99 %.3f p999 %.3f max %.3f\n", percentile(r.latency_ms, 0.5),
              percentile(r.latency_ms, 0.99), percentile(r.latency_ms, 0.999),
              percentile(r.latency_ms, 1.0));
  const double per_request_us = 1e6 / static_cast<double>(n == 0 ? 1 : n);
  std::printf("%-8s CPU per request: load generator %.1f us", "", r.client_cpu_s * per_request_us);
  if (r.server_cpu_s >= 0) {
    std::printf(", qosmgr %.1f us", r.server_cpu_s * per_request_us);
  }
  std::printf("\n");
}

}  // namespace

int runMain(int argc, char** argv) {
  po::options_description desc("Usage: qosmgr-load [options]\n\nOptions");
  desc.add_options()("help,h", "print this help")(
      "endpoint", po::value<std::string>()->default_value("tcp://127.0.0.1:7700"),
      "qosmgr endpoint")("preload", po::value<size_t>()->default_value(100000),
                         "flows admitted first and kept")(
      "requests", po::value<size_t>()->default_value(100000), "flows admitted, then released")(
      "connections", po::value<int>()->default_value(4), "DEALER sockets")(
      "window", po::value<int>()->default_value(10), "requests in flight per socket")(
      "app", po::value<std::string>()->default_value("bulk"), "application name to request")(
      "server-pid", po::value<int>()->default_value(0),
      "qosmgr's process id, to report its CPU time per request (Linux /proc)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "qosmgr-load: %s\n", e.what());
    return 2;
  }
  if (vm.count("help") != 0) {
    std::printf("%s", (std::ostringstream() << desc).str().c_str());
    return 0;
  }
  const auto endpoint = vm["endpoint"].as<std::string>();
  const auto preload = vm["preload"].as<size_t>();
  const auto requests = vm["requests"].as<size_t>();
  const auto app = vm["app"].as<std::string>();
  zmq::context_t ctx(1);
  Pipeline pipe(ctx, endpoint, vm["connections"].as<int>(), vm["window"].as<int>(),
                vm["server-pid"].as<int>());
  std::printf("qosmgr-load: %s, %d connections x %d in flight, app %s\n", endpoint.c_str(),
              vm["connections"].as<int>(), vm["window"].as<int>(), app.c_str());

  PhaseResult pre = pipe.run(preload, "provision",
                             [&](size_t i) { return qos::bench::benchProvision(i, app, 3600); });
  report("preload", pre, preload);
  PhaseResult adm = pipe.run(requests, "provision", [&](size_t i) {
    return qos::bench::benchProvision(preload + i, app, 3600);
  });
  report("admit", adm, requests);
  const std::vector<uint64_t> ids = adm.flow_ids;
  PhaseResult rel =
      pipe.run(ids.size(), "release", [&](size_t i) { return qos::control::FlowRef{ids[i]}; });
  report("release", rel, ids.size());
  const bool clean = pre.errors + adm.errors + rel.errors == 0 && pre.denied + adm.denied == 0;
  if (!clean) {
    std::printf("qosmgr-load: some requests failed or were denied (see above)\n");
  }
  return clean ? 0 : 1;
}

int main(int argc, char** argv) {
  return qos::daemon::runGuarded("qosmgr-load", [&] { return runMain(argc, argv); });
}
