// control::decodeFlatRequest() timed alone: qosmgr's cost to read one
// provision message on its fast path, without ZeroMQ, admission or the
// store.  For comparing two versions of the decoder quickly; the benchmark of
// record is tools/bench/qosmgr_bench.sh.  The general path (decodeRequest(),
// an nlohmann tree) is timed too, as a yardstick.
//
//   flat_request_bench [--messages N] [--seconds S] [--repeats R]
//
// The messages are what qosmgr-load sends (tools/loadgen/qosmgr_load.cc):
// encodeRequest() of a provision body with a distinct 5-tuple and request id
// each, about 230 bytes.  Each repeat decodes them round-robin, into one
// reused FlatRequest as the server does, for S seconds; prints the median and
// the best repeat in ns per message.  Runs on whatever CPU it is given: pin it
// (taskset) and keep the machine otherwise quiet when comparing.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/protocol/envelope.h"
#include "control/protocol/fields.h"
#include "control/protocol/flat_request.h"
#include "control/protocol/messages.h"
#include "tools/loadgen/bench_requests.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  size_t n_messages = 1024;
  double seconds = 0.5;
  int repeats = 9;
};

bool parseOptions(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--messages") == 0 && has_value) {
      options.n_messages = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--seconds") == 0 && has_value) {
      options.seconds = std::strtod(argv[++i], nullptr);
    } else if (std::strcmp(argv[i], "--repeats") == 0 && has_value) {
      options.repeats = std::atoi(argv[++i]);
    } else {
      return false;
    }
  }
  return options.n_messages > 0 && options.seconds > 0 && options.repeats > 0;
}

/**
 * Runs @p decode over @p messages round-robin for about @p seconds, in
 * rounds of whole passes so that the clock is read once per pass.
 * @return ns per message, or a negative value if @p decode refused one.
 */
template <typename Decode>
double nsPerMessage(const std::vector<std::string>& messages, double seconds, Decode decode) {
  const auto budget = std::chrono::duration<double>(seconds);
  size_t n_decoded = 0;
  const Clock::time_point start = Clock::now();
  Clock::duration elapsed{};
  do {
    for (const std::string& message : messages) {
      if (!decode(message)) {
        return -1;
      }
    }
    n_decoded += messages.size();
    elapsed = Clock::now() - start;
  } while (elapsed < budget);
  return std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(n_decoded);
}

/** Prints the median and best of @p repeats runs; false if a message was refused. */
template <typename Decode>
bool report(const char* what, const std::vector<std::string>& messages, const Options& options,
            Decode decode) {
  nsPerMessage(messages, options.seconds / 4, decode);  // warm caches, branch predictors, clock
  std::vector<double> ns;
  for (int r = 0; r < options.repeats; ++r) {
    ns.push_back(nsPerMessage(messages, options.seconds, decode));
    if (ns.back() < 0) {
      std::fprintf(stderr, "flat_request_bench: %s refused a message\n", what);
      return false;
    }
  }
  std::sort(ns.begin(), ns.end());
  std::printf("  %-34s median %7.1f ns/message, best %7.1f\n", what, ns[ns.size() / 2], ns[0]);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parseOptions(argc, argv, options)) {
    std::fprintf(stderr, "usage: flat_request_bench [--messages N] [--seconds S] [--repeats R]\n");
    return 2;
  }
  std::vector<std::string> messages;
  size_t total_bytes = 0;
  for (size_t i = 0; i < options.n_messages; ++i) {
    messages.push_back(qos::control::encodeRequest(
        {.type = "provision",
         .id = std::to_string(i),
         .body_json = qos::control::encodeObject(qos::bench::benchProvision(i, "bulk", 3600))}));
    total_bytes += messages.back().size();
  }
  std::printf("flat_request_bench: %zu provision messages of %zu bytes on average, %d x %.2f s\n",
              messages.size(), total_bytes / messages.size(), options.repeats, options.seconds);
  std::printf("  e.g. %s\n", messages[0].c_str());

  qos::control::FlatRequest flat;
  const bool ok =
      report("decodeFlatRequest (fast path)", messages, options,
             [&flat](const std::string& m) { return qos::control::decodeFlatRequest(m, flat); }) &&
      report("decodeRequest (general path)", messages, options,
             [](const std::string& m) { return qos::control::decodeRequest(m).ok(); }) &&
      report("fast path + provision body", messages, options,
             [&flat](const std::string& m) {
               return qos::control::decodeFlatRequest(m, flat) &&
                      qos::control::decodeFlat<qos::control::AdmissionRequest>(flat).has_value();
             }) &&
      report("general path + provision body", messages, options, [](const std::string& m) {
        qos::Result<qos::control::Request> request = qos::control::decodeRequest(m);
        return request.ok() && qos::control::decodeObject<qos::control::AdmissionRequest>(
                                   request->body, qos::control::Unknown::Reject, "body")
                                   .ok();
      });
  return ok ? 0 : 1;
}
