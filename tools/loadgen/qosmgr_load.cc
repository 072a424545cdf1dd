// qosmgr-load: keeps many requests in flight against a running qosmgr over
// ZeroMQ and prints admissions/s, releases/s and latency percentiles.
//
//   qosmgr-load --endpoint tcp://127.0.0.1:7700 --preload 100000 --requests 50000
//
// Phases: (1) preload: admit --preload flows with a long lease and keep them,
// so the measured phases run against that many live reservations; (2) admit
// --requests more flows; (3) release those.  Each phase pipelines
// --connections DEALER sockets with --window requests in flight on each.
// Latency is from send to reply, per request, measured here.  CPU time per
// request, of this program and (with --server-pid) of qosmgr, is printed too:
// on a shared machine it is the figure other work disturbs least.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/program_options.hpp>
#include <unistd.h>
#include <zmq.hpp>

#include "control/common/daemon.h"
#include "control/protocol/envelope.h"

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
 * body's flow_id, read with nlohmann's SAX parser, without building the
 * reply's tree (that cost this program more CPU than qosmgr spent answering).
 * The replies come from the manager under test: the envelope's own checks
 * (control/protocol) are its tests' business, not this program's.
 */
class ReplySummary : public nlohmann::json_sax<nlohmann::json> {
public:
  std::string id;
  std::string status;
  std::string error_code;
  std::string error_message;
  std::optional<uint64_t> flow_id;

  /** Reads @p bytes; false if they are not a JSON object with a string status. */
  bool read(std::string_view bytes) {
    *this = ReplySummary();
    return nlohmann::json::sax_parse(bytes, this) && !status.empty();
  }

  bool null() override { return true; }
  bool boolean(bool /*value*/) override { return true; }
  bool number_integer(number_integer_t /*value*/) override { return true; }
  bool number_unsigned(number_unsigned_t value) override {
    if (depth_ == 2 && in_body_ && key_ == "flow_id") {
      flow_id = value;
    }
    return true;
  }
  bool number_float(number_float_t /*value*/, const string_t& /*text*/) override { return true; }
  bool string(string_t& value) override {
    if (depth_ == 1 && key_ == "id") {
      id = std::move(value);
    } else if (depth_ == 1 && key_ == "status") {
      status = std::move(value);
    } else if (depth_ == 2 && in_error_ && key_ == "code") {
      error_code = std::move(value);
    } else if (depth_ == 2 && in_error_ && key_ == "message") {
      error_message = std::move(value);
    }
    return true;
  }
  bool binary(binary_t& /*value*/) override { return true; }
  bool start_object(std::size_t /*size*/) override {
    ++depth_;
    if (depth_ == 2) {
      in_body_ = key_ == "body";
      in_error_ = key_ == "error";
    }
    return true;
  }
  bool key(string_t& value) override {
    key_ = std::move(value);
    return true;
  }
  bool end_object() override {
    if (depth_ == 2) {
      in_body_ = in_error_ = false;
    }
    --depth_;
    return true;
  }
  bool start_array(std::size_t /*size*/) override {
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*error*/) override {
    return false;
  }

private:
  int depth_ = 0;
  bool in_body_ = false;
  bool in_error_ = false;
  std::string key_;
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

// The i-th flow: unique 5-tuple inside lan-a -> lan-b of the bench config.
nlohmann::json provisionBody(uint64_t i, const std::string& app, uint32_t lease_sec) {
  const std::string src =
      "198.18." + std::to_string(1 + (i >> 24) % 200) + "." + std::to_string(1 + (i >> 16) % 250);
  return {{"app", app},
          {"src", src},
          {"sport", 1024 + (i & 0xFFFF) % 60000},
          {"dst", "198.19.1." + std::to_string(1 + (i >> 8) % 250)},
          {"dport", 5004},
          {"proto", "udp"},
          {"lease", lease_sec},
          {"client", "loadgen"},
          {"request_id", "load-" + std::to_string(i)}};
}

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
  // this program's JSON encoder's.
  template <typename Make>
  PhaseResult run(size_t n, const std::string& type, Make make) {
    PhaseResult result;
    result.latency_ms.reserve(n);
    std::vector<std::string> payloads;
    std::vector<std::string> ids;
    payloads.reserve(n);
    ids.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      qos::control::Request req{type, std::to_string(seq_++), make(i)};
      payloads.push_back(qos::control::encodeRequest(req));
      ids.push_back(std::move(req.id));
    }
    std::unordered_map<std::string, Clock::time_point> sent_at;
    sent_at.reserve(n);
    size_t next = 0;
    size_t done = 0;
    const double client_cpu_start = processCpuSeconds(0);
    const double server_cpu_start = server_pid_ > 0 ? processCpuSeconds(server_pid_) : -1;
    const auto start = Clock::now();
    auto last_progress = start;
    ReplySummary reply;
    std::vector<zmq::pollitem_t> items;
    for (auto& s : sockets_) {
      items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
    }
    while (done < n) {
      for (size_t c = 0; c < sockets_.size(); ++c) {
        while (inflight_[c] < window_ && next < n) {
          sockets_[c].send(zmq::message_t(), zmq::send_flags::sndmore);
          sockets_[c].send(zmq::buffer(payloads[next]), zmq::send_flags::none);
          sent_at.emplace(ids[next], Clock::now());
          ++inflight_[c];
          ++next;
        }
      }
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
      for (size_t c = 0; c < sockets_.size(); ++c) {
        if ((items[c].revents & ZMQ_POLLIN) == 0) {
          continue;
        }
        while (true) {
          zmq::message_t empty;
          if (!sockets_[c].recv(empty, zmq::recv_flags::dontwait)) {
            break;
          }
          zmq::message_t payload;
          (void)sockets_[c].recv(payload, zmq::recv_flags::none);
          const auto now = Clock::now();
          last_progress = now;
          --inflight_[c];
          ++done;
          if (!reply.read(payload.to_string_view())) {
            ++result.errors;
            continue;
          }
          if (auto it = sent_at.find(reply.id); it != sent_at.end()) {
            result.latency_ms.push_back(
                std::chrono::duration<double, std::milli>(now - it->second).count());
            sent_at.erase(it);
          }
          if (reply.status == "ok") {
            ++result.ok;
            if (reply.flow_id) {
              result.flow_ids.push_back(*reply.flow_id);
            }
          } else if (reply.status == "denied") {
            ++result.denied;
          } else if (result.errors++ == 0) {
            std::fprintf(stderr, "qosmgr-load: first error: %s: %s: %s\n", reply.status.c_str(),
                         reply.error_code.c_str(), reply.error_message.c_str());
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
  uint64_t seq_ = 1;
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
      "requests", po::value<size_t>()->default_value(50000), "flows admitted, then released")(
      "connections", po::value<int>()->default_value(4), "DEALER sockets")(
      "window", po::value<int>()->default_value(16), "requests in flight per socket")(
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

  PhaseResult pre =
      pipe.run(preload, "provision", [&](size_t i) { return provisionBody(i, app, 3600); });
  report("preload", pre, preload);
  PhaseResult adm = pipe.run(requests, "provision",
                             [&](size_t i) { return provisionBody(preload + i, app, 3600); });
  report("admit", adm, requests);
  const std::vector<uint64_t> ids = adm.flow_ids;
  PhaseResult rel = pipe.run(ids.size(), "release", [&](size_t i) {
    return nlohmann::json{{"flow_id", ids[i]}};
  });
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
