// The container tests' fixture on a rauhad with a warm pool of one zone (--warm-zones 1), and
// how a test learns which pooled zones are ready.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/container_fixture.h"

namespace rauha::testing {

class PooledContainerTest : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    TearDownDaemon();
    StartDaemon({"--warm-zones", "1"});
  }

  // The names of the zones the pool has said are ready so far, once there are at least `n`
  // (a condition with a deadline).
  std::vector<std::string> PoolReady(size_t n) {
    std::vector<std::string> names;
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      names.clear();
      std::istringstream log(daemon_->log());
      const std::string marker = "warm pool: zone ";
      for (std::string line; std::getline(log, line);) {
        size_t at = line.find(marker);
        if (at == std::string::npos || !line.ends_with(" ready")) continue;
        at += marker.size();
        names.push_back(line.substr(at, line.size() - 6 - at));
      }
      if (names.size() >= n) return names;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "the pool never had " << n << " zones ready; log:\n" << daemon_->log();
    return names;
  }
};

}  // namespace rauha::testing
