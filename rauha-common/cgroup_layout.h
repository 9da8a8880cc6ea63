// Which cgroup hierarchies this host mounts, read from /proc/self/mountinfo.
// Unified: one cgroup2 tree with the controllers. Hybrid (this machine): cgroup2 at
// /sys/fs/cgroup/unified for identity, controllers in v1 hierarchies. Legacy: v1 only.
#pragma once

#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"

namespace rauha {

enum class CgroupMode { kUnified, kHybrid, kLegacy };

struct CgroupLayout {
  CgroupMode mode = CgroupMode::kUnified;
  std::string unified_mount;                       // cgroup2 mount point, "" if none
  std::set<std::string> unified_controllers;       // cgroup.controllers of the v2 root
  std::map<std::string, std::string> v1_mounts;    // controller -> mount ("memory" -> ...)
};

std::string_view ToString(CgroupMode mode);  // "unified" | "hybrid" | "legacy"

absl::StatusOr<CgroupLayout> DetectCgroupLayout();

// The cgroup path (relative to the hierarchy root, starting with "/") that process `pid`
// (0 = self) is in for the hierarchy holding `controller`, or for the v2 tree when
// `controller` is empty. From /proc/<pid>/cgroup.
absl::StatusOr<std::string> OwnCgroupPath(std::string_view controller, int pid = 0);

}  // namespace rauha
