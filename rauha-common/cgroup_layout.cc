#include "rauha-common/cgroup_layout.h"

#include <cerrno>
#include <fstream>
#include <sstream>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

// v1 controllers we recognise in super options; anything else there ("rw", "noprefix",
// "release_agent=...", "name=systemd") is an option or a named hierarchy, not a controller.
const std::set<std::string, std::less<>> kV1Controllers = {
    "blkio",  "cpu",     "cpuacct",  "cpuset",     "devices", "freezer", "hugetlb",
    "memory", "net_cls", "net_prio", "perf_event", "pids",    "rdma",    "misc"};

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n'; }

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoStatus(errno, StrCat("open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string_view ToString(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kUnified:
      return "unified";
    case CgroupMode::kHybrid:
      return "hybrid";
    case CgroupMode::kLegacy:
      return "legacy";
  }
  return "unknown";
}

CgroupMode ClassifyCgroups(const CgroupLayout& layout) {
  if (layout.unified_mount.empty()) return CgroupMode::kLegacy;
  if (layout.unified_controllers.count("memory") || layout.v1_mounts.empty()) {
    return CgroupMode::kUnified;
  }
  return CgroupMode::kHybrid;
}

CgroupLayout ParseCgroupMounts(std::string_view mountinfo, std::string_view unified_controllers) {
  CgroupLayout layout;
  for (std::string_view line : Split(mountinfo, '\n')) {
    std::vector<std::string_view> f = Fields(line);
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTS
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 1 >= f.size()) continue;
    std::string_view fstype = f[dash + 1];
    std::string root = Unescape(f[3]);
    std::string mount_point = Unescape(f[4]);
    if (fstype == "cgroup2") {
      if (layout.unified_mount.empty()) {
        layout.unified_mount = mount_point;
        layout.unified_root = root;
      }
    } else if (fstype == "cgroup") {
      std::string_view super_opts = dash + 3 < f.size() ? f[dash + 3] : std::string_view();
      for (std::string_view opt : Split(super_opts, ',')) {
        auto it = kV1Controllers.find(opt);
        if (it == kV1Controllers.end() || layout.v1_mounts.count(*it)) continue;
        layout.v1_mounts[*it] = mount_point;
        layout.v1_roots[*it] = root;
      }
    }
  }
  for (std::string_view c : Fields(unified_controllers)) {
    layout.unified_controllers.insert(std::string(c));
  }
  layout.mode = ClassifyCgroups(layout);
  return layout;
}

absl::StatusOr<std::string> ParseProcCgroup(std::string_view proc_cgroup,
                                            std::string_view controller) {
  for (std::string_view line : Split(proc_cgroup, '\n')) {
    // "4:memory:/process_api/x", "0::/"; the path itself may contain ':'.
    size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view id = line.substr(0, c1);
    std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string_view path = line.substr(c2 + 1);
    bool match = false;
    if (controller.empty()) {
      match = id == "0" && controllers.empty();
    } else {
      for (std::string_view c : Split(controllers, ',')) match = match || c == controller;
    }
    if (match) return std::string(path);
  }
  if (controller.empty()) {
    return absl::NotFoundError("no cgroup2 line (0::/...) in /proc/<pid>/cgroup");
  }
  return absl::NotFoundError(
      StrCat("no line for cgroup controller ", controller, " in /proc/<pid>/cgroup"));
}

std::string CgroupDir(std::string_view mount, std::string_view root, std::string_view path) {
  std::string_view rel = path;
  if (root != "/" && !root.empty() && path.substr(0, root.size()) == root &&
      (path.size() == root.size() || path[root.size()] == '/')) {
    rel = path.substr(root.size());
  }
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  while (!rel.empty() && rel.back() == '/') rel.remove_suffix(1);
  if (rel.empty()) return std::string(mount);
  return StrCat(mount, "/", rel);
}

absl::StatusOr<CgroupLayout> DetectCgroupLayout() {
  RAUHA_ASSIGN_OR_RETURN(std::string mountinfo, ReadFile("/proc/self/mountinfo"));
  CgroupLayout layout = ParseCgroupMounts(mountinfo, "");
  if (layout.unified_mount.empty() && layout.v1_mounts.empty()) {
    return absl::FailedPreconditionError(
        "no cgroup filesystem is mounted (no cgroup2 or cgroup entry in /proc/self/mountinfo): "
        "mount cgroup2 on /sys/fs/cgroup");
  }
  if (!layout.unified_mount.empty()) {
    std::string controllers_file = StrCat(layout.unified_mount, "/cgroup.controllers");
    absl::StatusOr<std::string> controllers = ReadFile(controllers_file);
    if (!controllers.ok()) return controllers.status();
    layout = ParseCgroupMounts(mountinfo, *controllers);
  }
  return layout;
}

absl::StatusOr<std::string> OwnCgroupPath(std::string_view controller, int pid) {
  std::string file = pid == 0 ? "/proc/self/cgroup" : StrCat("/proc/", pid, "/cgroup");
  RAUHA_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  absl::StatusOr<std::string> path = ParseProcCgroup(text, controller);
  if (!path.ok()) return Annotate(path.status(), file);
  return path;
}

}  // namespace rauha
