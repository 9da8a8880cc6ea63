// A zone's cgroups. On a unified host: one v2 directory holding identity and limits. On a
// hybrid host (this machine): one v2 directory for identity (its inode is the cgroup id that
// keys BPF maps; CLONE_INTO_CGROUP needs it) plus one directory per v1 hierarchy for limits.
// Every directory lives under the daemon's cgroup parent, which by default is a child of the
// daemon's own cgroup in each hierarchy: we never move processes beside the host's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rauha-common/cgroup_layout.h"

namespace rauha::cgroup {

struct ZoneCgroup {
  std::string v2_path;                // identity directory in the cgroup2 tree ("" if none)
  uint64_t id = 0;                    // cgroup2 id (inode of v2_path), 0 if none
  std::vector<std::string> v1_paths;  // one directory per v1 hierarchy in use (hybrid/legacy)
  // Where each resource's files live: a v1 directory, or v2_path on unified hosts.
  std::string memory_path, pids_path, cpu_path, cpuacct_path, blkio_path, freezer_path;
  bool memory_v2 = false, pids_v2 = false, cpu_v2 = false, io_v2 = false, freezer_v2 = false;

  // Every directory, v2 first.
  std::vector<std::string> AllPaths() const;
};

// A limit value that writes "max" (unbounded): a policy's "max", and what undoes an earlier
// limit when a policy is applied to a live zone.
inline constexpr uint64_t kUnlimited = ~uint64_t{0};

// nullopt leaves a control as it is.
struct Limits {
  std::optional<uint64_t> memory_bytes;  // or kUnlimited
  std::optional<uint64_t> pids_max;      // or kUnlimited
  std::optional<uint64_t> cpu_shares;    // v1 cpu.shares scale; converted to cpu.weight on v2
  std::optional<uint32_t> io_weight;     // 1..10000; clamped to blkio.weight's 10..1000 on v1
  std::optional<uint64_t> cpu_quota_us;  // per cpu_period_us, or kUnlimited
  uint64_t cpu_period_us = 100000;
};

// One control's outcome: applied, or why not ("no blkio.weight on this kernel").
struct LimitReport {
  std::string control;  // "memory_limit", "pids_max", "cpu_shares", "io_weight", "cpu_quota"
  bool applied = false;
  std::string detail;  // file written and value, or the reason it is unavailable
};

struct Stats {
  uint64_t memory_current = 0;
  uint64_t memory_peak = 0;
  uint64_t memory_limit = 0;  // the zone's own limit; 0: unlimited
  // What bounds the zone's memory: the smallest limit of the zone and its ancestors, and the
  // host's memory (MemTotal) when none is lower. Never 0 where memory is accounted.
  uint64_t memory_limit_in_force = 0;
  uint64_t pids_current = 0;
  uint64_t pids_max = 0;  // 0: unlimited
  uint64_t cpu_usage_ns = 0;
  uint64_t cpu_user_ns = 0;
  uint64_t cpu_system_ns = 0;
  uint64_t oom_kills = 0;
};

class Manager {
 public:
  // `parent` is a relative name ("rauha") placed under the daemon's own cgroup in each
  // hierarchy, or an absolute cgroup path ("/rauha-test-1") used as is in each hierarchy.
  // Creates the parent directories (and on unified hosts enables the controllers for them).
  static absl::StatusOr<std::unique_ptr<Manager>> Create(const CgroupLayout& layout,
                                                         std::string parent);

  // mkdir of the zone's directory in every hierarchy; AlreadyExists if present.
  absl::StatusOr<ZoneCgroup> CreateZone(std::string_view zone_id);
  // The zone's paths whether or not they exist (recovery after a restart).
  ZoneCgroup ZonePaths(std::string_view zone_id) const;
  // Zone ids that have a directory under the parent (to find leftovers).
  std::vector<std::string> ListZoneIds() const;
  // rmdir of the parent directories; FailedPrecondition while zones remain.
  absl::Status RemoveParent();

  const CgroupLayout& layout() const { return layout_; }

 private:
  Manager(CgroupLayout layout) : layout_(std::move(layout)) {}
  // Unified host: enables our controllers in each of `chain`'s subtree_control.
  absl::Status EnableControllers(const std::vector<std::string>& chain, const std::string& own_dir);
  std::vector<std::string> ParentDirs() const;

  CgroupLayout layout_;
  std::string v2_parent_;
  std::vector<std::pair<std::string, std::string>> v1_parents_;  // controller, parent dir
  std::set<std::string> v2_controllers_;  // unified host: controllers zones get
};

// Writes every limit that is set; a control the kernel lacks is reported, not an error.
// A value the kernel rejects is an error (InvalidArgument) naming file and value.
absl::StatusOr<std::vector<LimitReport>> ApplyLimits(const ZoneCgroup& cg, const Limits& limits);
absl::StatusOr<Stats> ReadStats(const ZoneCgroup& cg);
// Stats::oom_kills alone (one file, not ReadStats' dozen): a task's baseline, read on the
// sandbox call's path. 0 without a memory controller.
absl::StatusOr<uint64_t> ReadOomKills(const ZoneCgroup& cg);
// What a task's result takes from its zone's cgroup when it ends: Stats::memory_peak and
// Stats::oom_kills (two files, not ReadStats' dozen; 0 without a memory controller).
struct TaskEndStats {
  uint64_t memory_peak = 0;
  uint64_t oom_kills = 0;
};
absl::StatusOr<TaskEndStats> ReadTaskEndStats(const ZoneCgroup& cg);
// Freezes (true) or thaws every process in the zone; returns once the kernel says FROZEN.
absl::Status SetFrozen(const ZoneCgroup& cg, bool frozen);
// Pids in any of the zone's directories.
std::vector<pid_t> Pids(const ZoneCgroup& cg);
// Freezes, SIGKILLs every process, thaws and waits (bounded) until the zone is empty.
absl::Status KillAll(const ZoneCgroup& cg);
// rmdir of every directory, after KillAll if any still holds a process. Idempotent: missing
// directories are fine.
absl::Status Remove(const ZoneCgroup& cg);

}  // namespace rauha::cgroup
