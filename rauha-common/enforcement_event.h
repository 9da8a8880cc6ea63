// One enforcement decision, as rauhad hands it to task results, WatchEvents and counters,
// whichever layer produced it: the BPF ring buffer (LSM, cgroup-bpf, the Landlock observer)
// or the shim (seccomp user notifications). The shim sends it as JSON in its event frames.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rauha {

struct EnforcementEvent {
  int64_t time_ns = 0;      // CLOCK_REALTIME
  std::string zone_id;      // the zone the acting process is in
  uint64_t cgroup_id = 0;   // its cgroup v2 id (0 when the source does not know it)
  uint64_t pidns_ino = 0;   // inode of its pid namespace: tells concurrent tasks apart
  uint32_t pid = 0;         // host pid (tgid)
  std::string comm;         // task comm, <= 15 bytes
  std::string layer;        // "lsm", "cgroup-bpf", "landlock", "seccomp"
  std::string hook;         // "lsm/file_open", "cgroup/connect4", "landlock", "seccomp"
  std::string action;       // "open", "exec", "connect", "bind", "sendmsg", "socket", "device",
                            // "sysctl", "signal", "ptrace", "mount", "bpf", "syscall", ...
  std::string decision;     // "deny" (allow decisions are not events), "error"
  std::string object;       // "/etc/shadow (write)", "10.0.0.1:80/tcp", "c 1:5 rw", "unshare"
  std::string target_zone;  // signal/ptrace/connect into another zone: its id; else ""
  std::string message;      // one human sentence
};

nlohmann::json ToJson(const EnforcementEvent& e);
// Strict: wrong types are InvalidArgument naming the field; missing optional fields default.
absl::StatusOr<EnforcementEvent> EnforcementEventFromJson(const nlohmann::json& j);

}  // namespace rauha
