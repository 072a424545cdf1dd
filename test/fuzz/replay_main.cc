// Replays a fuzz corpus through LLVMFuzzerTestOneInput without libFuzzer, so
// every build (gcc included) runs the corpus, and each crash once found and
// added to it, as a regression test (Envoy's fuzz test runner).
//
// Usage: <target>_replay PATH...  where each PATH is a file or a directory
// whose regular files are replayed in name order.  Exits 1 if a path cannot
// be read or nothing was replayed, so a mistyped corpus path fails the test.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

bool readFile(const fs::path& path, std::vector<uint8_t>& bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return false;
  }
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

bool replayFile(const fs::path& path, size_t& n_inputs) {
  std::vector<uint8_t> bytes;
  if (!readFile(path, bytes)) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  // Give the target an exactly-sized heap copy, as libFuzzer does, so a read
  // one byte past the end is caught by AddressSanitizer.
  const std::vector<uint8_t> input(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(input.data(), input.size());
  ++n_inputs;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n_inputs = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const fs::path path(argv[i]);
    std::error_code error;
    if (fs::is_directory(path, error)) {
      std::vector<fs::path> files;
      for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
        if (entry.is_regular_file(error)) {
          files.push_back(entry.path());
        }
      }
      if (error) {
        std::fprintf(stderr, "replay: cannot list %s: %s\n", path.c_str(), error.message().c_str());
        ok = false;
        continue;
      }
      std::sort(files.begin(), files.end());
      for (const fs::path& file : files) {
        ok = replayFile(file, n_inputs) && ok;
      }
    } else if (fs::is_regular_file(path, error)) {
      ok = replayFile(path, n_inputs) && ok;
    } else {
      std::fprintf(stderr, "replay: %s is neither a file nor a directory\n", path.c_str());
      ok = false;
    }
  }
  std::printf("replayed %zu inputs\n", n_inputs);
  return ok && n_inputs > 0 ? 0 : 1;
}
