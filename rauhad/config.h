// Everything a rauhad instance needs to know about where it lives. Every path is a flag, so
// tests run private daemons side by side.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rauha {

// The largest request message rauhad reads (gRPC refuses a larger one with RESOURCE_EXHAUSTED
// before parsing it): a RunSandbox carries at most a 1 MiB policy and 1 MiB of stdin, the rest
// of any request is kilobytes.
inline constexpr int kMaxRequestBytes = 3 << 20;

struct DaemonConfig {
  std::string socket_path = "/run/rauha/rauhad.sock";
  std::string run_dir = "/run/rauha";        // shim sockets and per-zone scratch
  std::string state_dir = "/var/lib/rauha";  // metadata database
  std::string cgroup_parent = "rauha";       // relative: below rauhad's own cgroup
  std::string shim_path;                     // default: rauha-shim beside rauhad
  std::string default_policy_file;           // default: built-in standard policy
  uint64_t output_limit = 1u << 20;          // bytes kept of each stream per task
  // A container's log is rotated to "<log>.1" when it would pass this (--container-log-max).
  uint64_t container_log_max_bytes = 10u << 20;
  uint32_t shim_start_timeout_ms = 5000;
  // Zones of the run dir with a live shim that the database does not hold (it was lost or
  // replaced): false refuses to start, true stops and removes them.
  bool remove_orphans = false;
  std::string bpf_pin_dir;  // bpffs directory of this instance; default: DefaultPinDir(state_dir)
  // --repo-root: when set, a host path a request names must lie beneath one (real paths).
  std::vector<std::string> repo_roots;
  uint32_t max_watchers = 256;  // concurrent WatchEvents streams
  // Zone operations (create, delete, apply policy, verify, a sandbox's zone set-up): how many
  // run at once and how many more wait in line before RESOURCE_EXHAUSTED.
  uint32_t max_zone_ops = 4;
  uint32_t zone_op_queue = 32;
  // RunSandbox and WaitTask calls in progress (each holds a thread while its task runs);
  // more are refused with RESOURCE_EXHAUSTED at once.
  uint32_t max_task_calls = 64;
  // --warm-zones: zones kept ready per pooled policy (pool/warm_pool.h); 0: no pool.
  uint32_t warm_zones = 2;
  // --warm-zones-max: the most kept ready per policy once calls found its pool empty.
  uint32_t warm_zones_max = 8;
  // --warm-zones-shrink-after: seconds without calls after which a policy is back at warm_zones.
  uint32_t warm_zones_shrink_after_s = 30;
  // --userns-range: host ids handed to zones' user namespaces, 65536 per zone (userns_ranges.h).
  // userns_count 0: off ("--userns-range off"); zones keep the host's ids.
  uint32_t userns_first = 100000000;
  uint32_t userns_count = 65536u * 4096u;

  std::string DatabasePath() const { return state_dir + "/rauha.db"; }
  std::string ZoneRunDir(const std::string& zone_id) const { return run_dir + "/zones/" + zone_id; }
  // Where shims spool the kept output of running tasks (shim::TaskOutputSpoolPath): outside
  // the zones' run dirs, which are removed when a shim dies.
  std::string TaskOutputSpoolDir() const { return run_dir + "/task-output"; }
  // rauhad's own files, which no zone may see (see host_path.h).
  std::vector<std::string> DaemonPaths() const { return {socket_path, run_dir, state_dir}; }
  std::string ShimSocket(const std::string& zone_id) const {
    return ZoneRunDir(zone_id) + "/shim.sock";
  }
};

}  // namespace rauha
