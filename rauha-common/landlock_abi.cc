#include "rauha-common/landlock_abi.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif

namespace rauha {

int LandlockAbi(int* error) {
  static const std::pair<int, int> probe = [] {
    constexpr unsigned kCreateRulesetVersion = 1u << 0;
    long v = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
    return v < 0 ? std::pair<int, int>{0, errno} : std::pair<int, int>{static_cast<int>(v), 0};
  }();
  if (error != nullptr) *error = probe.second;
  return probe.first;
}

}  // namespace rauha
