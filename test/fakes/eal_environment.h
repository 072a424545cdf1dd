// A GoogleTest environment that starts EAL once per test binary, the way
// DPDK's own test_sched.c does: no hugepages, no PCI, two lcores (the main
// one for the test body and the control thread, one worker; QOS_TEST_LCORES
// gives more, for the tests of several workers), and a file
// prefix unique to the binary and process so tests may run side by side.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include <rte_eal.h>

namespace qos::test {

class EalEnvironment : public ::testing::Environment {
public:
  explicit EalEnvironment(std::string name) : name_(std::move(name)) {}

  void SetUp() override {
#ifdef QOS_TEST_LCORES  // lcores mapped onto this machine's CPUs, e.g. "0@0,1@1,2@1"
    const std::string lcores = "--lcores=" QOS_TEST_LCORES;
#else
    const std::string lcores = "-l0-1";
#endif
    std::vector<std::string> args = {name_,
                                     "--no-huge",
                                     "-m",
                                     "512",
                                     "--no-pci",
                                     lcores,
                                     "--file-prefix=" + name_ + "_" + std::to_string(getpid()),
                                     "--log-level=lib.eal:error",
                                     "--log-level=pmd.net.ring:error"};
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    ASSERT_GE(rte_eal_init(static_cast<int>(argv.size()), argv.data()), 0) << "rte_eal_init failed";
  }

  void TearDown() override {
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    // EAL leaves its runtime directory (/var/run/dpdk/<prefix>) behind.
    std::error_code ignored;
    std::filesystem::remove_all(runtime_dir, ignored);
  }

private:
  std::string name_;
};

}  // namespace qos::test
