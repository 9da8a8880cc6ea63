#include "containerd-shim-rauha-v2/spec_mounts.h"

#include <unistd.h>

#include <algorithm>
#include <climits>

namespace rauha::cshim {
namespace {

constexpr char kTaskPluginDir[] = "io.containerd.runtime.v2.task";
constexpr char kCriPluginDir[] = "io.containerd.grpc.v1.cri";
constexpr char kTerminationLog[] = "/dev/termination-log";

// Absolute, no "." or ".." component, no empty component, no trailing '/'.
bool IsNormalAbsolute(const std::string& p) {
  if (p.empty() || p[0] != '/') return false;
  if (p == "/") return true;
  if (p.back() == '/') return false;
  size_t pos = 1;
  while (pos <= p.size()) {
    size_t end = p.find('/', pos);
    if (end == std::string::npos) end = p.size();
    std::string_view part(p.data() + pos, end - pos);
    if (part.empty() || part == "." || part == "..") return false;
    pos = end + 1;
  }
  return true;
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

// `dir` is <base>/io.containerd.runtime.v2.task/<ns>/<id>: <base>, else "".
std::string TaskPluginBase(const std::string& dir) {
  if (!IsNormalAbsolute(dir)) return "";
  std::string d = dir;
  for (int i = 0; i < 2; ++i) {
    size_t slash = d.rfind('/');
    if (slash == std::string::npos || slash == 0) return "";
    d.resize(slash);
  }
  size_t slash = d.rfind('/');
  if (slash == std::string::npos || d.substr(slash + 1) != kTaskPluginDir) return "";
  return slash == 0 ? "/" : d.substr(0, slash);
}

// The mounts every zone task has of its own.
bool ZoneProvided(const std::string& dest) {
  static const char* const kOwn[] = {"/proc",    "/sys",        "/sys/fs/cgroup", "/dev",
                                     "/dev/pts", "/dev/mqueue", "/dev/shm"};
  return std::find(std::begin(kOwn), std::end(kOwn), dest) != std::end(kOwn);
}

bool Has(const std::vector<std::string>& options, const char* o) {
  return std::find(options.begin(), options.end(), o) != options.end();
}

}  // namespace

ContainerdDirs ContainerdDirsOf(const std::string& bundle_dir) {
  ContainerdDirs dirs;
  dirs.state = TaskPluginBase(bundle_dir);
  char target[PATH_MAX];
  ssize_t n = ::readlink((bundle_dir + "/work").c_str(), target, sizeof(target) - 1);
  if (n > 0) dirs.root = TaskPluginBase(std::string(target, static_cast<size_t>(n)));
  return dirs;
}

absl::StatusOr<SpecMountPlan> PlanSpecMounts(const std::vector<BundleMount>& mounts,
                                             const ContainerdDirs& dirs,
                                             const std::string& sandbox_id,
                                             const std::string& container_id) {
  SpecMountPlan plan;
  std::vector<std::string> own;  // this pod's and this container's CRI directories
  for (const std::string& base : {dirs.root, dirs.state}) {
    if (base.empty()) continue;
    std::string cri = (base == "/" ? "" : base) + "/" + kCriPluginDir;
    if (!sandbox_id.empty()) own.push_back(cri + "/sandboxes/" + sandbox_id);
    if (!container_id.empty()) own.push_back(cri + "/containers/" + container_id);
  }
  for (const auto& m : mounts) {
    if (!IsNormalAbsolute(m.destination)) {
      return absl::InvalidArgumentError("config.json: mounts[].destination \"" + m.destination +
                                        "\" must be an absolute path without '.' or '..'");
    }
    const bool bind = m.type == "bind" || Has(m.options, "bind") || Has(m.options, "rbind");
    if (!bind) {
      plan.skipped.push_back(m.destination + " (" + (m.type.empty() ? "untyped" : m.type) +
                             (ZoneProvided(m.destination) ? ": the zone's own)" : ": not a bind)"));
      continue;
    }
    if (!IsNormalAbsolute(m.source)) {
      return absl::InvalidArgumentError("config.json: mounts[" + m.destination + "].source \"" +
                                        m.source +
                                        "\" must be an absolute path without '.' or '..'");
    }
    SpecMount s;
    s.source = m.source;
    s.destination = m.destination;
    s.readonly = Has(m.options, "ro");
    s.termination_log = m.destination == kTerminationLog;
    s.runtime_state = std::any_of(own.begin(), own.end(),
                                  [&](const std::string& dir) { return IsUnder(m.source, dir); });
    plan.mounts.push_back(std::move(s));
  }
  return plan;
}

}  // namespace rauha::cshim
