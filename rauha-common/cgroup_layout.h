// Which cgroup hierarchies this host mounts, read from /proc/self/mountinfo.
// Unified: one cgroup2 tree with the controllers. Hybrid (this machine): cgroup2 at
// /sys/fs/cgroup/unified for identity, controllers in v1 hierarchies. Legacy: v1 only.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rauha {

enum class CgroupMode { kUnified, kHybrid, kLegacy };

struct CgroupLayout {
  CgroupMode mode = CgroupMode::kUnified;
  std::string unified_mount;                     // cgroup2 mount point, "" if none
  std::set<std::string> unified_controllers;     // cgroup.controllers of the v2 root
  std::map<std::string, std::string> v1_mounts;  // controller -> mount ("memory" -> ...)
  // The cgroup each mount shows as its root ("/" unless a subtree is bind-mounted).
  std::string unified_root = "/";
  std::map<std::string, std::string> v1_roots;  // controller -> mount root
};

std::string_view ToString(CgroupMode mode);  // "unified" | "hybrid" | "legacy"

absl::StatusOr<CgroupLayout> DetectCgroupLayout();

// The cgroup path (relative to the hierarchy root, starting with "/") that process `pid`
// (0 = self) is in for the hierarchy holding `controller`, or for the v2 tree when
// `controller` is empty. From /proc/<pid>/cgroup.
absl::StatusOr<std::string> OwnCgroupPath(std::string_view controller, int pid = 0);

// Pure parsers behind the two functions above (unit-tested with real texts).
// Mounts from /proc/<pid>/mountinfo text: the first cgroup2 mount, and each known v1
// controller ("rw,cpu,cpuacct" -> cpu and cpuacct; named hierarchies like name=systemd are
// skipped). `unified_controllers` is the text of the v2 root's cgroup.controllers ("" if
// none); it decides the mode (ClassifyCgroups).
CgroupLayout ParseCgroupMounts(std::string_view mountinfo, std::string_view unified_controllers);
// Unified if cgroup2 is mounted and holds memory (or no v1 controller is mounted); hybrid if
// cgroup2 and v1 controllers are both mounted; legacy if only v1.
CgroupMode ClassifyCgroups(const CgroupLayout& layout);
// The path for `controller` ("" = the v2 line "0::/...") in /proc/<pid>/cgroup text.
absl::StatusOr<std::string> ParseProcCgroup(std::string_view proc_cgroup,
                                            std::string_view controller);
// Absolute directory of cgroup `path` in a hierarchy mounted at `mount` showing `root`.
std::string CgroupDir(std::string_view mount, std::string_view root, std::string_view path);

}  // namespace rauha
