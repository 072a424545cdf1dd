// main() of the DPDK in-process test binaries: EAL once, then every test.
#include <string>

#include <gtest/gtest.h>

#include "test/fakes/eal_environment.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::string name = argv[0];
  name = name.substr(name.find_last_of('/') + 1);
  ::testing::AddGlobalTestEnvironment(new qos::test::EalEnvironment(name));
  return RUN_ALL_TESTS();
}
