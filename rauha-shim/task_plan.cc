#include "rauha-shim/task_plan.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <string_view>
#include <tuple>

#include "rauha-common/errors.h"
#include "rauha-common/path_open.h"
#include "rauha-common/rlimit_names.h"
#include "rauha-common/strcat.h"
#include "rauha-common/userns.h"
#include "rauha-shim/landlock.h"

namespace rauha::shim {
namespace {

enum class Area { kRoot, kSystem, kEtc, kProc, kDev, kTmp, kOther };

std::string_view FirstComponent(std::string_view p) {
  p.remove_prefix(1);
  return p.substr(0, p.find('/'));
}

bool IsUnder(std::string_view path, std::string_view dir) {
  if (dir == "/") return true;
  return path == dir ||
         (path.starts_with(dir) && path.size() > dir.size() && path[dir.size()] == '/');
}

// The task's root recreates the host's top-level symlinks (/bin -> usr/bin), so "/bin/x"
// in the task is "/usr/bin/x"; mount points are made on the resolved path.
std::string ResolveTopSymlinks(std::string path) {
  for (int hop = 0; hop < 4; ++hop) {
    std::string first = StrCat("/", FirstComponent(path));
    if (std::find(std::begin(kSystemDirs), std::end(kSystemDirs), first) == std::end(kSystemDirs)) {
      return path;
    }
    char target[PATH_MAX];
    ssize_t n = ::readlink(first.c_str(), target, sizeof(target) - 1);
    if (n <= 0) return path;
    std::string rest = path.substr(first.size());
    std::string joined = target[0] == '/' ? StrCat(std::string_view(target, n), rest)
                                          : StrCat("/", std::string_view(target, n), rest);
    auto normalized = NormalizePath(joined, "");
    if (!normalized.ok()) return path;
    path = *normalized;
  }
  return path;
}

// With an image, "/usr" and the others are the image's, not the host's: no area of their own.
Area Classify(const std::string& path, bool image) {
  if (path == "/") return Area::kRoot;
  std::string first = StrCat("/", FirstComponent(path));
  if (!image &&
      std::find(std::begin(kSystemDirs), std::end(kSystemDirs), first) != std::end(kSystemDirs)) {
    struct stat st;
    if (::lstat(first.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Area::kSystem;
    return Area::kOther;
  }
  if (first == "/etc") return Area::kEtc;
  if (first == "/proc") return Area::kProc;
  if (first == "/dev") return Area::kDev;
  if (first == "/tmp") return Area::kTmp;
  return Area::kOther;
}

// A path under a system dir is the host's own file: it must exist there with no symlink on
// the way (a symlink would be followed on the host while the task's root is being built).
bool ExistsWithoutSymlinks(const std::string& path, bool* is_dir) {
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) == nullptr || path != real) return false;
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) return false;
  *is_dir = S_ISDIR(st.st_mode);
  return true;
}

bool ValidTaskId(std::string_view id) {
  if (id.empty() || id.size() > 128 || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

void AddUnique(std::vector<std::string>& v, std::string s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

size_t Depth(std::string_view p) { return std::count(p.begin(), p.end(), '/'); }

// /dev entries the shim makes itself (devpts, shm, fd links): listing them is not an error.
bool ProvidedDevice(std::string_view dev) {
  return dev == "/dev/ptmx" || IsUnder(dev, "/dev/pts") || IsUnder(dev, "/dev/shm") ||
         dev == "/dev/fd" || dev == "/dev/stdin" || dev == "/dev/stdout" || dev == "/dev/stderr";
}

absl::Status PlanMounts(const TaskSpec& spec, TaskPlan& plan) {
  for (const auto& m : spec.mounts) {
    auto source = NormalizePath(m.source, "task.mounts[].source");
    if (!source.ok()) return source.status();
    auto target = NormalizePath(m.target, "task.mounts[].target");
    if (!target.ok()) return target.status();
    struct stat st;
    std::optional<FileIdentity> pinned;
    if (m.source_dev != 0 || m.source_ino != 0) {
      pinned = FileIdentity{m.source_dev, m.source_ino};
      auto fd = OpenPinned(*source, *pinned);
      if (!fd.ok()) return fd.status();
      if (::fstat(fd->get(), &st) < 0) return ErrnoStatus(errno, StrCat("fstat ", *source));
    } else if (::stat(source->c_str(), &st) < 0) {
      return absl::InvalidArgumentError(
          StrCat("mount source ", *source, " does not exist on the host (", strerror(errno), ")"));
    }
    bool image = !plan.image_layers.empty() || !plan.image_root.empty();
    PlannedMount pm{*source,    image ? *target : ResolveTopSymlinks(*target),
                    m.readonly, S_ISDIR(st.st_mode),
                    true,       pinned};
    Area area = Classify(pm.target, image);
    // A pod's shared /dev/shm (containerd's) replaces the task's own; kubelet's termination
    // message file (rauhad checked it: a regular file) is bound on a file the root builder
    // makes in /dev before /dev turns read-only.
    if (area == Area::kDev && image &&
        ((pm.target == "/dev/shm" && pm.is_dir) ||
         (pm.target == kTerminationLogTarget && !pm.is_dir && pinned))) {
      area = Area::kOther;
    }
    switch (area) {
      case Area::kRoot:
      case Area::kProc:
      case Area::kDev:
        return absl::InvalidArgumentError(
            StrCat("mount target ", *target,
                   ": nothing can be mounted on /, under /proc or under /dev (but a directory "
                   "on a container root's /dev/shm, or a file on its /dev/termination-log)"));
      case Area::kSystem: {
        bool is_dir = false;
        if (!ExistsWithoutSymlinks(pm.target, &is_dir) || is_dir != pm.is_dir) {
          return absl::InvalidArgumentError(StrCat(
              "mount target ", *target, " is under a read-only host system directory, so it ",
              "must already exist there as a ", pm.is_dir ? "directory" : "file",
              " (no symlinks); choose a target such as /workspace"));
        }
        pm.create = false;
        break;
      }
      default:
        break;
    }
    plan.mounts.push_back(std::move(pm));
  }
  std::stable_sort(plan.mounts.begin(), plan.mounts.end(),
                   [](const PlannedMount& a, const PlannedMount& b) {
                     return Depth(a.target) < Depth(b.target);
                   });
  return absl::OkStatus();
}

absl::Status PlanWritablePaths(const TaskSpec& spec, TaskPlan& plan) {
  for (const auto& w : spec.writable_paths) {
    auto normalized = NormalizePath(w, "task.writable_paths[]");
    if (!normalized.ok()) return normalized.status();
    bool image = !plan.image_layers.empty() || !plan.image_root.empty();
    std::string path = image ? *normalized : ResolveTopSymlinks(*normalized);
    // A mount decides for itself whether it is writable.
    if (std::any_of(plan.mounts.begin(), plan.mounts.end(),
                    [&](const PlannedMount& m) { return IsUnder(path, m.target); })) {
      continue;
    }
    switch (Classify(path, image)) {
      case Area::kRoot:
        plan.root_writable = true;
        break;
      case Area::kTmp:
        if (path != "/tmp") AddUnique(plan.tmp_dirs, path);
        break;
      case Area::kSystem: {
        bool is_dir = false;
        if (!ExistsWithoutSymlinks(path, &is_dir) || !is_dir) {
          return absl::InvalidArgumentError(StrCat(
              "writable path ", *normalized, " is under a host system directory, so it must be ",
              "an existing directory there (no symlinks); writes to it are discarded when the "
              "task ends"));
        }
        AddUnique(plan.overlay_dirs, path);
        break;
      }
      case Area::kEtc:
      case Area::kProc:
      case Area::kDev:
        return absl::InvalidArgumentError(
            StrCat("writable path ", *normalized, ": /etc, /proc and /dev cannot be made writable ",
                   "(/etc holds read-only host files); use \"/\" to make the root writable"));
      case Area::kOther:
        AddUnique(plan.scratch_dirs, path);
        break;
    }
  }
  auto by_depth = [](const std::string& a, const std::string& b) { return Depth(a) < Depth(b); };
  std::stable_sort(plan.overlay_dirs.begin(), plan.overlay_dirs.end(), by_depth);
  std::stable_sort(plan.scratch_dirs.begin(), plan.scratch_dirs.end(), by_depth);
  std::stable_sort(plan.tmp_dirs.begin(), plan.tmp_dirs.end(), by_depth);
  return absl::OkStatus();
}

absl::Status PlanDevices(const TaskSpec& spec, TaskPlan& plan) {
  for (const auto& d : spec.devices) {
    auto dev = NormalizePath(d, "task.devices[]");
    if (!dev.ok()) return dev.status();
    if (!IsUnder(*dev, "/dev") || *dev == "/dev") {
      return absl::InvalidArgumentError(StrCat("device ", d, " is not a path under /dev"));
    }
    if (ProvidedDevice(*dev)) continue;
    struct stat st;
    if (::stat(dev->c_str(), &st) < 0) {
      plan.warnings.push_back(StrCat("device ", *dev, " does not exist on this host; skipped"));
      continue;
    }
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
      plan.warnings.push_back(StrCat("device ", *dev, " is not a device node; skipped"));
      continue;
    }
    AddUnique(plan.devices, *dev);
  }
  return absl::OkStatus();
}

absl::Status PlanCapabilities(const TaskSpec& spec, TaskPlan& plan) {
  for (const auto& name : spec.capabilities) {
    cap_value_t cap;
    if (cap_from_name(name.c_str(), &cap) < 0) {
      return absl::InvalidArgumentError(
          StrCat("unknown capability \"", name, "\" (expected a name such as CAP_CHOWN)"));
    }
    if (std::find(plan.capabilities.begin(), plan.capabilities.end(), cap) ==
        plan.capabilities.end()) {
      plan.capabilities.push_back(cap);
    }
  }
  return absl::OkStatus();
}

absl::Status PlanRlimits(const TaskSpec& spec, TaskPlan& plan) {
  for (const auto& r : spec.rlimits) {
    std::optional<int> resource = RlimitResource(r.resource);
    if (!resource) {
      return absl::InvalidArgumentError(
          StrCat("unknown rlimit \"", r.resource, "\" (expected a name such as RLIMIT_NOFILE)"));
    }
    if (r.soft > r.hard) {
      return absl::InvalidArgumentError(
          StrCat("rlimit ", r.resource, ": soft limit ", r.soft, " exceeds hard limit ", r.hard));
    }
    plan.rlimits.push_back({*resource, rlimit{r.soft, r.hard}});
  }
  return absl::OkStatus();
}

// seccomp and Landlock are installed by the workload's process itself, which the kernel
// allows only under no_new_privs or with CAP_SYS_ADMIN.
absl::Status PlanKernelLayers(const TaskSpec& spec, TaskPlan& plan) {
  bool sys_admin = std::find(plan.capabilities.begin(), plan.capabilities.end(), CAP_SYS_ADMIN) !=
                   plan.capabilities.end();
  if ((spec.seccomp || spec.landlock) && !spec.no_new_privs && !sys_admin) {
    return absl::InvalidArgumentError(
        "task.seccomp and task.landlock need task.no_new_privs (or CAP_SYS_ADMIN kept): set "
        "no_new_privs, or turn both layers off");
  }
  if (spec.seccomp) {
    auto program = BuildSeccompProgram(spec.seccomp_deny);
    if (!program.ok()) return program.status();
    plan.seccomp = *std::move(program);
    plan.layers.push_back(plan.seccomp->summary);
    if (!plan.seccomp->warning.empty()) plan.warnings.push_back(plan.seccomp->warning);
  } else if (!spec.seccomp_deny.empty()) {
    return absl::InvalidArgumentError(
        "task.seccomp_deny is set but task.seccomp is false: the list would not be enforced");
  }
  if (spec.landlock) {
    int error = 0;
    plan.landlock_abi = LandlockAbi(&error);
    if (plan.landlock_abi > 0) {
      plan.layers.push_back(LandlockSummary(plan.landlock_abi));
    } else {
      plan.warnings.push_back(StrCat("landlock unavailable: ", strerror(error),
                                     " (writes are confined by read-only mounts only)"));
    }
  }
  for (const auto& e : spec.exec_allowed) {
    auto normalized = NormalizePath(e, "task.exec_allowed[]");
    if (!normalized.ok()) return normalized.status();
    plan.exec_allowed.push_back(*normalized);
  }
  if (!plan.exec_allowed.empty() && plan.landlock_abi == 0) {
    return absl::FailedPreconditionError(
        "task.exec_allowed needs Landlock, which is not applied to this task");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> NormalizePath(std::string_view path, std::string_view what) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(StrCat(what, " \"", path, "\" must be an absolute path"));
  }
  if (path.size() > 4000 || path.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat(what, " is too long or holds a NUL byte"));
  }
  std::string out;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return absl::InvalidArgumentError(StrCat(what, " \"", path, "\" must not contain \"..\""));
    }
    out += '/';
    out += part;
  }
  return out.empty() ? std::string("/") : out;
}

absl::StatusOr<TaskPlan> PlanTask(const TaskSpec& spec, const ZoneContext& zone) {
  if (!ValidTaskId(spec.task_id)) {
    return absl::InvalidArgumentError(
        StrCat("task.task_id \"", spec.task_id,
               "\" must be 1-128 characters of [A-Za-z0-9._-], not starting with '.'"));
  }
  TaskPlan plan;
  plan.task_id = spec.task_id;
  plan.argv = spec.argv;
  plan.probe = spec.probe;
  plan.probe_skip = spec.probe_skip;
  plan.env = spec.env;
  for (const auto& e : spec.env) {
    if (e.find('=') == std::string::npos || e[0] == '=') {
      return absl::InvalidArgumentError(StrCat("task.env entry \"", e, "\" must be K=V"));
    }
  }
  auto workdir = NormalizePath(spec.workdir.empty() ? "/" : spec.workdir, "task.workdir");
  if (!workdir.ok()) return workdir.status();
  plan.workdir = *workdir;
  if (!spec.cgroup_v2.empty()) {
    auto v2 = NormalizePath(spec.cgroup_v2, "task.cgroup_v2");
    if (!v2.ok()) return v2.status();
    plan.cgroup_v2 = *v2;
  }
  for (const auto& c : spec.cgroup_v1) {
    auto v1 = NormalizePath(c, "task.cgroup_v1[]");
    if (!v1.ok()) return v1.status();
    plan.cgroup_v1.push_back(*v1);
  }
  // Every task mounts its own tmpfs here, in a mount namespace of its own: a directory of its
  // own on the host would be an inode made and removed per task (on a disk file system, with
  // the inode allocator's scan past recently deleted inodes: eval/bench/README.md).
  plan.rootfs_dir = zone.state_dir;
  plan.hostname = zone.hostname;
  plan.isolated_network = zone.isolated_network;
  if (!spec.zone_address.empty()) {
    // It goes into /etc/hosts verbatim: only a plain IPv4 literal.
    in_addr parsed{};
    if (::inet_pton(AF_INET, spec.zone_address.c_str(), &parsed) != 1) {
      return absl::InvalidArgumentError(
          StrCat("task.zone_address \"", spec.zone_address, "\" is not an IPv4 address"));
    }
    plan.zone_address = spec.zone_address;
  }
  for (const auto& layer : spec.image_layers) {
    auto normalized = NormalizePath(layer, "task.image_layers[]");
    if (!normalized.ok()) return normalized.status();
    struct stat st;
    if (::stat(normalized->c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          StrCat("image layer ", *normalized, " is not a directory on the host"));
    }
    // overlayfs's option string separates with ',' and ':'.
    if (normalized->find_first_of(",:\\") != std::string::npos) {
      return absl::InvalidArgumentError(
          StrCat("image layer path ", *normalized, " holds ',', ':' or '\\'"));
    }
    plan.image_layers.push_back(*normalized);
  }
  for (auto [field, value, out] :
       {std::tuple{"task.image_upper", &spec.image_upper, &plan.image_upper},
        std::tuple{"task.log_path", &spec.log_path, &plan.log_path}}) {
    if (value->empty()) continue;
    auto normalized = NormalizePath(*value, field);
    if (!normalized.ok()) return normalized.status();
    if (normalized->find_first_of(",:\\") != std::string::npos) {
      return absl::InvalidArgumentError(StrCat(field, " ", *normalized, " holds ',', ':' or '\\'"));
    }
    *out = *normalized;
  }
  if (!plan.image_upper.empty() && plan.image_layers.empty()) {
    return absl::InvalidArgumentError("task.image_upper needs task.image_layers");
  }
  plan.image_upper_volatile = spec.image_upper_volatile && !plan.image_upper.empty();
  plan.log_max_bytes = spec.log_max_bytes;
  plan.stdin_pipe = spec.stdin_pipe;
  plan.tty = spec.tty;
  if (spec.tty_rows > 0xFFFF || spec.tty_cols > 0xFFFF) {
    return absl::InvalidArgumentError("task.tty_rows and task.tty_cols are at most 65535");
  }
  plan.tty_rows = static_cast<uint16_t>(spec.tty_rows);
  plan.tty_cols = static_cast<uint16_t>(spec.tty_cols);
  if ((spec.stdin_pipe || spec.tty) && !spec.stdin_data.empty()) {
    return absl::InvalidArgumentError("task.stdin_base64 cannot go with stdin_pipe or tty");
  }
  if (!spec.join_task.empty()) {
    if (!ValidTaskId(spec.join_task)) {
      return absl::InvalidArgumentError(
          StrCat("task.join_task \"", spec.join_task, "\" is not a task id"));
    }
    if (!spec.image_layers.empty() || !spec.mounts.empty() || spec.probe) {
      return absl::InvalidArgumentError(
          "task.join_task runs in another task's root: image_layers, mounts and probe do not "
          "apply");
    }
    plan.join_task = spec.join_task;
  }
  plan.no_new_privs = spec.no_new_privs;
  plan.timeout_ms = spec.timeout_ms;
  plan.kill_after_ms = spec.kill_after_ms;
  plan.output_limit = spec.output_limit;
  plan.stdin_data = spec.stdin_data;
  // The task runs in the zone's user namespace (if it has one) unless its root cannot be shown
  // through it. An image's layers are mounted idmapped (rootfs.cc). A root that containerd
  // mounted (task.rootfs) is bound idmapped where its filesystem allows: a plain directory
  // (containerd's native snapshotter) does, an overlayfs mount (its overlayfs snapshotter)
  // does not (mount_setattr(MOUNT_ATTR_IDMAP) is EINVAL for overlayfs up to at least 6.18);
  // such a task keeps the host's ids, and says so.
  bool zone_ids = zone.userns_fd >= 0;
  std::string rootfs_gap;
  if (zone_ids && !spec.rootfs.empty()) {
    if (auto root = NormalizePath(spec.rootfs, "task.rootfs"); root.ok()) {
      // A detached clone, dropped at once: whether rootfs.cc's idmapped bind will work.
      auto probe = IdmappedTree(AT_FDCWD, *root, zone.userns_fd, 0);
      if (!probe.ok()) {
        zone_ids = false;
        rootfs_gap =
            StrCat("zone.userns: this task's root ", *root,
                   " cannot be idmapped (an overlayfs mount, as containerd's overlayfs snapshotter "
                   "makes, cannot be: ",
                   probe.status().message(),
                   "): it has the host's ids (root is the host's root with the policy's "
                   "capabilities), not the zone's user namespace");
      }
    }
  }
  if (spec.uid != -1 || spec.gid != -1) {
    // (uid_t)-1 means "unchanged" to setresuid: never a user.
    constexpr int64_t kMaxId = 0xFFFFFFFE;
    if (spec.uid < 0 || spec.uid > kMaxId || spec.gid < 0 || spec.gid > kMaxId) {
      return absl::InvalidArgumentError(StrCat("task.uid ", spec.uid, " and task.gid ", spec.gid,
                                               " must both be set, from 0 to ", kMaxId));
    }
    plan.switch_user = true;
    plan.uid = static_cast<uid_t>(spec.uid);
    plan.gid = static_cast<gid_t>(spec.gid);
    if (zone_ids && (plan.uid >= kZoneIdCount || plan.gid >= kZoneIdCount)) {
      return absl::InvalidArgumentError(
          StrCat("task.uid ", spec.uid, " / task.gid ", spec.gid,
                 " is outside the zone's user namespace (ids 0 to ", kZoneIdCount - 1,
                 "); choose an id in that range, or run the zone with [zone] userns = false"));
    }
  }
  if (zone_ids) {
    plan.userns_fd = zone.userns_fd;
    plan.userns_first = zone.userns_first;
  } else if (!rootfs_gap.empty()) {
    plan.warnings.push_back(std::move(rootfs_gap));
  }
  if (!spec.output_dir.empty()) {
    auto dir = NormalizePath(spec.output_dir, "task.output_dir");
    if (!dir.ok()) return dir.status();
    plan.output_dir = *dir;
  }
  if (!spec.rootfs.empty()) {
    auto root = NormalizePath(spec.rootfs, "task.rootfs");
    if (!root.ok()) return root.status();
    if (*root == "/") return absl::InvalidArgumentError("task.rootfs must not be the host's /");
    if (!plan.image_layers.empty()) {
      return absl::InvalidArgumentError("task.rootfs and task.image_layers exclude each other");
    }
    plan.image_root = *root;
    plan.root_writable = true;  // the container's own writable layer
  }
  for (auto [from, to, what] :
       {std::tuple{&spec.stdin_path, &plan.stdin_path, "task.stdin_path"},
        std::tuple{&spec.stdout_path, &plan.stdout_path, "task.stdout_path"},
        std::tuple{&spec.stderr_path, &plan.stderr_path, "task.stderr_path"}}) {
    if (from->empty()) continue;
    auto path = NormalizePath(*from, what);
    if (!path.ok()) return path.status();
    *to = *path;
  }
  plan.stdin_is_terminal = spec.stdin_is_terminal;
  if (plan.stdin_is_terminal && (plan.stdin_path.empty() || plan.tty || plan.stdin_pipe)) {
    return absl::InvalidArgumentError(
        "task.stdin_is_terminal needs task.stdin_path (the terminal) and neither tty nor "
        "stdin_pipe");
  }
  if (!plan.stdin_path.empty() && !plan.stdin_data.empty()) {
    return absl::InvalidArgumentError("task.stdin_path and task.stdin_base64 exclude each other");
  }
  if (absl::Status s = PlanMounts(spec, plan); !s.ok()) return s;
  if (absl::Status s = PlanWritablePaths(spec, plan); !s.ok()) return s;
  if (absl::Status s = PlanDevices(spec, plan); !s.ok()) return s;
  if (absl::Status s = PlanCapabilities(spec, plan); !s.ok()) return s;
  if (absl::Status s = PlanRlimits(spec, plan); !s.ok()) return s;
  if (absl::Status s = PlanKernelLayers(spec, plan); !s.ok()) return s;
  if (plan.userns_fd >= 0) {
    for (auto& m : plan.mounts) {
      struct stat st;
      if (::stat(m.source.c_str(), &st) < 0) {
        return ErrnoStatus(errno, StrCat("stat mount source ", m.source));
      }
      m.owner_uid = st.st_uid;
      m.owner_gid = st.st_gid;
    }
    plan.layers.push_back(StrCat("userns: ", DescribeZoneMapping(plan.userns_first),
                                 "; mounts idmapped (their owner is the task's user inside)",
                                 plan.image_layers.empty() ? "" : "; image layers idmapped",
                                 plan.image_root.empty() ? "" : "; root idmapped"));
  }
  return plan;
}

}  // namespace rauha::shim
