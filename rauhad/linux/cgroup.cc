#include "rauhad/linux/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"

namespace rauha::cgroup {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// v1 hierarchies a zone uses. Not cpuset (a new cpuset cgroup accepts no task until
// cpuset.cpus and cpuset.mems are filled), not devices (device policy is cgroup-bpf), not
// named hierarchies.
constexpr const char* kV1Controllers[] = {"memory", "pids", "cpu", "cpuacct", "blkio", "freezer"};
// v2 controllers a zone needs on a unified host.
constexpr const char* kV2Controllers[] = {"memory", "pids", "cpu", "io"};

// The kernel's "no limit" for v1 memory is PAGE_COUNTER_MAX pages in bytes (about 2^63).
constexpr uint64_t kV1Unlimited = uint64_t{1} << 62;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, StrCat("open ", path));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// cgroup files report a rejected value through write(2): EINVAL becomes InvalidArgument
// naming the file and the value.
absl::Status WriteFile(const std::string& path, std::string_view value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, StrCat("open ", path));
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    if (err == EINVAL || err == ERANGE) {
      return absl::InvalidArgumentError(StrCat("write \"", value, "\" to ", path, ": ",
                                               strerror(err), " (the kernel rejects this value)"));
    }
    return ErrnoStatus(err, StrCat("write \"", value, "\" to ", path));
  }
  return absl::OkStatus();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == '\n' || s.front() == ' ')) s.remove_prefix(1);
  return s;
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  s = Trim(s);
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// A counter file; a file this kernel does not have reads as 0, "max" as 0 (unlimited).
absl::StatusOr<uint64_t> ReadCounter(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return 0;
    return text.status();
  }
  if (Trim(*text) == "max") return 0;
  std::optional<uint64_t> v = ParseU64(*text);
  if (!v) return absl::InternalError(StrCat("unexpected content in ", path, ": ", Trim(*text)));
  return *v;
}

// The value of `key` in a "key value" per-line file (memory.events, cpu.stat, oom_control).
absl::StatusOr<uint64_t> ReadKeyed(const std::string& path, std::string_view key) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return 0;
    return text.status();
  }
  std::string_view rest = *text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      if (auto v = ParseU64(line.substr(key.size() + 1))) return *v;
    }
  }
  return 0;
}

absl::Status MkdirP(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, StrCat("mkdir ", prefix));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidName(std::string_view name, std::string_view what) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        StrCat("invalid cgroup ", what, " \"", name, "\": use a single non-empty name"));
  }
  return absl::OkStatus();
}

std::vector<std::string> SubDirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (e->d_type == DT_DIR && name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

// Block devices whose active I/O scheduler is bfq, the only one that honours bfq weights.
int CountDevicesUsingBfq() {
  glob_t g{};
  int count = 0;
  if (::glob("/sys/block/*/queue/scheduler", 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      absl::StatusOr<std::string> s = ReadFile(g.gl_pathv[i]);
      if (s.ok() && s->find("[bfq]") != std::string::npos) ++count;
    }
  }
  ::globfree(&g);
  return count;
}

// The count above serves only the note of an io weight's report, yet every zone's limits
// asked for it: the glob of /sys/block and a read per device were ~2 % of a sandbox's CPU. A
// scheduler changed by the administrator shows in the note within kBfqCountTtl.
constexpr auto kBfqCountTtl = std::chrono::seconds(10);
int DevicesUsingBfq() {
  static std::mutex mu;
  static Clock::time_point counted_at;
  static int count = -1;
  std::lock_guard lock(mu);
  Clock::time_point now = Clock::now();
  if (count < 0 || now - counted_at >= kBfqCountTtl) {
    count = CountDevicesUsingBfq();
    counted_at = now;
  }
  return count;
}

LimitReport Unavailable(std::string control, std::string reason) {
  return LimitReport{std::move(control), false, std::move(reason)};
}

absl::StatusOr<LimitReport> Write(std::string control, const std::string& dir,
                                  std::string_view file, std::string value, std::string note = "") {
  std::string path = StrCat(dir, "/", file);
  RAUHA_RETURN_IF_ERROR(WriteFile(path, value));
  return LimitReport{std::move(control), true, StrCat(file, " = ", value, note)};
}

absl::StatusOr<LimitReport> ApplyIoWeight(const ZoneCgroup& cg, uint32_t weight) {
  const char* control = "io_weight";
  if (cg.blkio_path.empty()) {
    bool unified = cg.v1_paths.empty() && !cg.v2_path.empty();
    return Unavailable(control, unified ? "the io controller cannot be enabled for zones here"
                                        : "the blkio controller is not mounted");
  }
  int bfq_devices = DevicesUsingBfq();
  std::string bfq_note =
      bfq_devices > 0
          ? ""
          : " (no block device uses the bfq scheduler now: the weight takes effect once one "
            "does)";
  if (cg.io_v2) {
    uint32_t w = std::clamp<uint32_t>(weight, 1, 10000);
    if (Exists(StrCat(cg.blkio_path, "/io.weight"))) {
      return Write(control, cg.blkio_path, "io.weight", StrCat("default ", w));
    }
    if (Exists(StrCat(cg.blkio_path, "/io.bfq.weight"))) {
      return Write(control, cg.blkio_path, "io.bfq.weight",
                   StrCat("default ", std::clamp<uint32_t>(w, 1, 1000)), bfq_note);
    }
    return Unavailable(control, "this kernel has no io.weight / io.bfq.weight (no iocost or bfq)");
  }
  uint32_t w = std::clamp<uint32_t>(weight, 10, 1000);
  if (Exists(StrCat(cg.blkio_path, "/blkio.weight"))) {
    return Write(control, cg.blkio_path, "blkio.weight", StrCat(w));
  }
  if (Exists(StrCat(cg.blkio_path, "/blkio.bfq.weight"))) {
    return Write(control, cg.blkio_path, "blkio.bfq.weight", StrCat(w), bfq_note);
  }
  return Unavailable(control,
                     "this kernel has no blkio.weight / blkio.bfq.weight (no proportional I/O "
                     "scheduler)");
}

struct FreezerFiles {
  std::string control, state, want;
};

FreezerFiles FreezerFor(const ZoneCgroup& cg, bool frozen) {
  if (cg.freezer_v2) {
    return {StrCat(cg.freezer_path, "/cgroup.freeze"), StrCat(cg.freezer_path, "/cgroup.events"),
            frozen ? "frozen 1" : "frozen 0"};
  }
  return {StrCat(cg.freezer_path, "/freezer.state"), StrCat(cg.freezer_path, "/freezer.state"),
          frozen ? "FROZEN" : "THAWED"};
}

}  // namespace

std::vector<std::string> ZoneCgroup::AllPaths() const {
  std::vector<std::string> out;
  if (!v2_path.empty()) out.push_back(v2_path);
  for (const std::string& p : v1_paths) {
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Manager>> Manager::Create(const CgroupLayout& layout,
                                                         std::string parent) {
  bool absolute = !parent.empty() && parent.front() == '/';
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  if (parent.empty() || parent == "/" || (!absolute && parent.find("..") != std::string::npos)) {
    return absl::InvalidArgumentError(
        StrCat("invalid cgroup parent \"", parent,
               "\": give a name (\"rauha\") or an absolute cgroup path (\"/rauha\")"));
  }
  std::unique_ptr<Manager> m(new Manager(layout));

  if (layout.mode != CgroupMode::kLegacy) {
    std::string base = "/";
    if (!absolute) {
      RAUHA_ASSIGN_OR_RETURN(base, OwnCgroupPath(""));
      // Already moved into our leaf by an earlier Create (EnableControllers): the zones'
      // parent stays beside it, under the cgroup we were started in.
      if (layout.mode == CgroupMode::kUnified && base.size() > 7 &&
          base.compare(base.size() - 7, 7, "/rauhad") == 0) {
        base.resize(base.size() - 7);
        if (base.empty()) base = "/";
      }
    }
    std::string base_dir = CgroupDir(layout.unified_mount, layout.unified_root, base);
    std::string rel = absolute ? CgroupDir("", layout.unified_root, parent) : StrCat("/", parent);
    m->v2_parent_ = StrCat(base_dir, rel);
    if (layout.mode == CgroupMode::kUnified) {
      std::vector<std::string> chain = {base_dir};
      for (size_t pos = 1; pos <= rel.size(); ++pos) {
        if (pos == rel.size() || rel[pos] == '/') chain.push_back(base_dir + rel.substr(0, pos));
      }
      RAUHA_RETURN_IF_ERROR(m->EnableControllers(chain, absolute ? "" : base_dir));
    }
  }
  if (layout.mode != CgroupMode::kUnified) {
    for (const char* c : kV1Controllers) {
      auto mount = layout.v1_mounts.find(c);
      if (mount == layout.v1_mounts.end()) continue;
      std::string dir;
      // Co-mounted controllers ("cpu,cpuacct") share one hierarchy, so one directory.
      for (const auto& [other, other_dir] : m->v1_parents_) {
        if (layout.v1_mounts.at(other) == mount->second) dir = other_dir;
      }
      if (dir.empty()) {
        std::string root = layout.v1_roots.count(c) ? layout.v1_roots.at(c) : "/";
        std::string base = "/";
        if (!absolute) {
          RAUHA_ASSIGN_OR_RETURN(base, OwnCgroupPath(c));
        }
        dir = absolute ? CgroupDir(mount->second, root, parent)
                       : StrCat(CgroupDir(mount->second, root, base), "/", parent);
      }
      m->v1_parents_.emplace_back(c, dir);
    }
  }
  for (const std::string& dir : m->ParentDirs()) RAUHA_RETURN_IF_ERROR(MkdirP(dir));
  return m;
}

// Unified host. cgroup v2's "no internal processes" rule: a non-root cgroup that has
// processes cannot enable controllers for its children (EBUSY). When our own cgroup refuses,
// we move this process into a leaf "<own>/rauhad" and retry, so that our cgroup only holds
// children. Only our own cgroup is treated so; other processes there still block it.
absl::Status Manager::EnableControllers(const std::vector<std::string>& chain,
                                        const std::string& own_dir) {
  for (const std::string& dir : chain) {
    RAUHA_RETURN_IF_ERROR(MkdirP(dir));
    RAUHA_ASSIGN_OR_RETURN(std::string available, ReadFile(StrCat(dir, "/cgroup.controllers")));
    RAUHA_ASSIGN_OR_RETURN(std::string enabled, ReadFile(StrCat(dir, "/cgroup.subtree_control")));
    for (const char* c : kV2Controllers) {
      auto has = [&](const std::string& list) {
        return (" " + std::string(Trim(list)) + " ").find(StrCat(" ", c, " ")) != std::string::npos;
      };
      if (has(enabled) || !has(available)) continue;
      std::string control = StrCat(dir, "/cgroup.subtree_control");
      absl::Status st = WriteFile(control, StrCat("+", c));
      if (absl::IsFailedPrecondition(st) && dir == own_dir && !own_dir.empty()) {
        std::string leaf = StrCat(own_dir, "/rauhad");
        RAUHA_RETURN_IF_ERROR(MkdirP(leaf));
        RAUHA_RETURN_IF_ERROR(WriteFile(StrCat(leaf, "/cgroup.procs"), "0"));
        st = WriteFile(control, StrCat("+", c));
      }
      if (!st.ok()) {
        return Annotate(st, StrCat("enabling the ", c,
                                   " controller for rauha's zones (a cgroup with processes "
                                   "cannot enable controllers: choose a cgroup parent "
                                   "outside cgroups with processes)"));
      }
    }
  }
  RAUHA_ASSIGN_OR_RETURN(std::string enabled,
                         ReadFile(StrCat(chain.back(), "/cgroup.subtree_control")));
  for (std::string_view rest = enabled; !rest.empty();) {
    size_t sp = rest.find_first_of(" \n");
    std::string_view word = rest.substr(0, sp);
    if (!word.empty()) v2_controllers_.insert(std::string(word));
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  }
  return absl::OkStatus();
}

std::vector<std::string> Manager::ParentDirs() const {
  std::vector<std::string> out;
  if (!v2_parent_.empty()) out.push_back(v2_parent_);
  for (const auto& [c, dir] : v1_parents_) {
    if (std::find(out.begin(), out.end(), dir) == out.end()) out.push_back(dir);
  }
  return out;
}

ZoneCgroup Manager::ZonePaths(std::string_view zone_id) const {
  ZoneCgroup z;
  if (!v2_parent_.empty()) {
    z.v2_path = StrCat(v2_parent_, "/", zone_id);
    struct stat st;
    if (::stat(z.v2_path.c_str(), &st) == 0) z.id = st.st_ino;
  }
  if (layout_.mode == CgroupMode::kUnified) {
    auto on = [&](const char* c) { return v2_controllers_.count(c) > 0; };
    z.memory_v2 = on("memory");
    z.pids_v2 = on("pids");
    z.cpu_v2 = on("cpu");
    z.io_v2 = on("io");
    z.freezer_v2 = true;  // cgroup.freeze is core v2, no controller needed
    if (z.memory_v2) z.memory_path = z.v2_path;
    if (z.pids_v2) z.pids_path = z.v2_path;
    if (z.cpu_v2) z.cpu_path = z.v2_path;
    if (z.io_v2) z.blkio_path = z.v2_path;
    z.cpuacct_path = z.v2_path;  // cpu.stat usage is core v2
    z.freezer_path = z.v2_path;
    return z;
  }
  for (const auto& [c, parent] : v1_parents_) {
    std::string dir = StrCat(parent, "/", zone_id);
    if (std::find(z.v1_paths.begin(), z.v1_paths.end(), dir) == z.v1_paths.end()) {
      z.v1_paths.push_back(dir);
    }
    if (c == "memory") z.memory_path = dir;
    if (c == "pids") z.pids_path = dir;
    if (c == "cpu") z.cpu_path = dir;
    if (c == "cpuacct") z.cpuacct_path = dir;
    if (c == "blkio") z.blkio_path = dir;
    if (c == "freezer") z.freezer_path = dir;
  }
  // Without a v1 freezer a hybrid host can still freeze through the v2 directory, which
  // every zone process joins.
  if (z.freezer_path.empty() && !z.v2_path.empty()) {
    z.freezer_path = z.v2_path;
    z.freezer_v2 = true;
  }
  return z;
}

absl::StatusOr<ZoneCgroup> Manager::CreateZone(std::string_view zone_id) {
  RAUHA_RETURN_IF_ERROR(ValidName(zone_id, "zone id"));
  ZoneCgroup z = ZonePaths(zone_id);
  std::vector<std::string> made;
  for (const std::string& dir : z.AllPaths()) {
    if (::mkdir(dir.c_str(), 0755) != 0) {
      int err = errno;
      for (auto it = made.rbegin(); it != made.rend(); ++it) ::rmdir(it->c_str());
      if (err == EEXIST) {
        return absl::AlreadyExistsError(
            StrCat("zone cgroup ", dir, " already exists: remove the zone first"));
      }
      return ErrnoStatus(err, StrCat("mkdir ", dir));
    }
    made.push_back(dir);
  }
  if (!z.v2_path.empty()) {
    struct stat st;
    if (::stat(z.v2_path.c_str(), &st) != 0) {
      return ErrnoStatus(errno, StrCat("stat ", z.v2_path));
    }
    z.id = st.st_ino;
  }
  return z;
}

std::vector<std::string> Manager::ListZoneIds() const {
  std::set<std::string> ids;
  for (const std::string& dir : ParentDirs()) {
    for (std::string& name : SubDirs(dir)) ids.insert(std::move(name));
  }
  return {ids.begin(), ids.end()};
}

absl::Status Manager::RemoveParent() {
  std::vector<std::string> ids = ListZoneIds();
  if (!ids.empty()) {
    std::string list;
    for (const std::string& id : ids) list += (list.empty() ? "" : ", ") + id;
    return absl::FailedPreconditionError(
        StrCat("cgroup parent still holds zones (", list, "): remove them first"));
  }
  for (const std::string& dir : ParentDirs()) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, StrCat("rmdir ", dir));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<LimitReport>> ApplyLimits(const ZoneCgroup& cg, const Limits& limits) {
  std::vector<LimitReport> out;
  auto add = [&](absl::StatusOr<LimitReport> r) -> absl::Status {
    if (!r.ok()) return r.status();
    out.push_back(*std::move(r));
    return absl::OkStatus();
  };
  if (limits.memory_bytes) {
    if (cg.memory_path.empty()) {
      out.push_back(Unavailable("memory_limit", "the memory controller is not available"));
    } else {
      // v1's memory.limit_in_bytes takes -1 for unlimited, v2's memory.max takes "max".
      std::string value = *limits.memory_bytes != kUnlimited ? StrCat(*limits.memory_bytes)
                          : cg.memory_v2                     ? std::string("max")
                                                             : std::string("-1");
      RAUHA_RETURN_IF_ERROR(
          add(Write("memory_limit", cg.memory_path,
                    cg.memory_v2 ? "memory.max" : "memory.limit_in_bytes", value)));
    }
  }
  if (limits.pids_max) {
    if (cg.pids_path.empty()) {
      out.push_back(Unavailable("pids_max", "the pids controller is not available"));
    } else {
      RAUHA_RETURN_IF_ERROR(add(
          Write("pids_max", cg.pids_path, "pids.max",
                *limits.pids_max == kUnlimited ? std::string("max") : StrCat(*limits.pids_max))));
    }
  }
  if (limits.cpu_shares) {
    uint64_t shares = std::clamp<uint64_t>(*limits.cpu_shares, 2, 262144);
    if (cg.cpu_path.empty()) {
      out.push_back(Unavailable("cpu_shares", "the cpu controller is not available"));
    } else if (cg.cpu_v2) {
      // runc's conversion of the v1 shares range [2, 262144] onto cpu.weight [1, 10000].
      uint64_t weight = 1 + ((shares - 2) * 9999) / 262142;
      RAUHA_RETURN_IF_ERROR(add(Write("cpu_shares", cg.cpu_path, "cpu.weight", StrCat(weight))));
    } else {
      RAUHA_RETURN_IF_ERROR(add(Write("cpu_shares", cg.cpu_path, "cpu.shares", StrCat(shares))));
    }
  }
  if (limits.io_weight) RAUHA_RETURN_IF_ERROR(add(ApplyIoWeight(cg, *limits.io_weight)));
  if (limits.cpu_quota_us) {
    const bool none = *limits.cpu_quota_us == kUnlimited;
    if (cg.cpu_path.empty()) {
      out.push_back(Unavailable("cpu_quota", "the cpu controller is not available"));
    } else if (cg.cpu_v2) {
      RAUHA_RETURN_IF_ERROR(
          add(Write("cpu_quota", cg.cpu_path, "cpu.max",
                    StrCat(none ? std::string("max") : StrCat(*limits.cpu_quota_us), " ",
                           limits.cpu_period_us))));
    } else {
      // v1: the period first (a quota is checked against it); -1 lifts the quota.
      RAUHA_RETURN_IF_ERROR(
          add(Write("cpu_quota", cg.cpu_path, "cpu.cfs_period_us", StrCat(limits.cpu_period_us))));
      RAUHA_RETURN_IF_ERROR(add(Write("cpu_quota", cg.cpu_path, "cpu.cfs_quota_us",
                                      none ? std::string("-1") : StrCat(*limits.cpu_quota_us))));
    }
  }
  return out;
}

namespace {

uint64_t HostMemoryBytes() {
  struct sysinfo si {};
  if (::sysinfo(&si) != 0) return 0;
  return uint64_t{si.totalram} * si.mem_unit;
}

// The smallest of the zone's own limit (0: none), its ancestors' and the host's memory.
uint64_t MemoryLimitInForce(const ZoneCgroup& cg, uint64_t own) {
  uint64_t limit = HostMemoryBytes();
  auto lower = [&limit](uint64_t v) {
    if (v != 0 && (limit == 0 || v < limit)) limit = v;
  };
  lower(own);
  if (cg.memory_path.empty()) return limit;
  if (cg.memory_v2) {
    // Up to the root of the mount, which has no memory.max.
    std::string dir = cg.memory_path;
    for (size_t slash = dir.rfind('/'); slash != std::string::npos && slash > 0;
         slash = dir.rfind('/')) {
      dir.resize(slash);
      std::string file = dir + "/memory.max";
      if (!Exists(file)) break;
      if (auto v = ReadCounter(file); v.ok()) lower(*v);
    }
  } else if (auto v = ReadKeyed(cg.memory_path + "/memory.stat", "hierarchical_memory_limit");
             v.ok() && *v < kV1Unlimited) {
    lower(*v);  // v1 walks the ancestors itself
  }
  return limit;
}

}  // namespace

absl::StatusOr<Stats> ReadStats(const ZoneCgroup& cg) {
  std::vector<std::string> paths = cg.AllPaths();
  if (paths.empty()) return absl::FailedPreconditionError("zone has no cgroup directories");
  if (!Exists(paths.front())) {
    return absl::NotFoundError(StrCat("zone cgroup ", paths.front(), " does not exist"));
  }
  Stats s;
  if (!cg.memory_path.empty()) {
    const std::string& d = cg.memory_path;
    if (cg.memory_v2) {
      RAUHA_ASSIGN_OR_RETURN(s.memory_current, ReadCounter(d + "/memory.current"));
      RAUHA_ASSIGN_OR_RETURN(s.memory_peak, ReadCounter(d + "/memory.peak"));
      RAUHA_ASSIGN_OR_RETURN(s.memory_limit, ReadCounter(d + "/memory.max"));
      RAUHA_ASSIGN_OR_RETURN(s.oom_kills, ReadKeyed(d + "/memory.events", "oom_kill"));
    } else {
      RAUHA_ASSIGN_OR_RETURN(s.memory_current, ReadCounter(d + "/memory.usage_in_bytes"));
      RAUHA_ASSIGN_OR_RETURN(s.memory_peak, ReadCounter(d + "/memory.max_usage_in_bytes"));
      RAUHA_ASSIGN_OR_RETURN(s.memory_limit, ReadCounter(d + "/memory.limit_in_bytes"));
      if (s.memory_limit >= kV1Unlimited) s.memory_limit = 0;
      RAUHA_ASSIGN_OR_RETURN(s.oom_kills, ReadKeyed(d + "/memory.oom_control", "oom_kill"));
    }
  }
  s.memory_limit_in_force = MemoryLimitInForce(cg, s.memory_limit);
  if (!cg.pids_path.empty()) {
    RAUHA_ASSIGN_OR_RETURN(s.pids_current, ReadCounter(cg.pids_path + "/pids.current"));
    RAUHA_ASSIGN_OR_RETURN(s.pids_max, ReadCounter(cg.pids_path + "/pids.max"));
  }
  if (!cg.cpuacct_path.empty()) {
    const std::string& d = cg.cpuacct_path;
    if (!cg.v2_path.empty() && d == cg.v2_path) {
      RAUHA_ASSIGN_OR_RETURN(uint64_t usage, ReadKeyed(d + "/cpu.stat", "usage_usec"));
      RAUHA_ASSIGN_OR_RETURN(uint64_t user, ReadKeyed(d + "/cpu.stat", "user_usec"));
      RAUHA_ASSIGN_OR_RETURN(uint64_t sys, ReadKeyed(d + "/cpu.stat", "system_usec"));
      s.cpu_usage_ns = usage * 1000;
      s.cpu_user_ns = user * 1000;
      s.cpu_system_ns = sys * 1000;
    } else {
      RAUHA_ASSIGN_OR_RETURN(s.cpu_usage_ns, ReadCounter(d + "/cpuacct.usage"));
      RAUHA_ASSIGN_OR_RETURN(s.cpu_user_ns, ReadCounter(d + "/cpuacct.usage_user"));
      RAUHA_ASSIGN_OR_RETURN(s.cpu_system_ns, ReadCounter(d + "/cpuacct.usage_sys"));
    }
  }
  return s;
}

absl::StatusOr<uint64_t> ReadOomKills(const ZoneCgroup& cg) {
  if (cg.memory_path.empty()) return 0;
  return cg.memory_v2 ? ReadKeyed(cg.memory_path + "/memory.events", "oom_kill")
                      : ReadKeyed(cg.memory_path + "/memory.oom_control", "oom_kill");
}

absl::StatusOr<TaskEndStats> ReadTaskEndStats(const ZoneCgroup& cg) {
  TaskEndStats s;
  if (cg.memory_path.empty()) return s;
  const std::string& d = cg.memory_path;
  if (cg.memory_v2) {
    RAUHA_ASSIGN_OR_RETURN(s.memory_peak, ReadCounter(d + "/memory.peak"));
  } else {
    RAUHA_ASSIGN_OR_RETURN(s.memory_peak, ReadCounter(d + "/memory.max_usage_in_bytes"));
  }
  RAUHA_ASSIGN_OR_RETURN(s.oom_kills, ReadOomKills(cg));
  return s;
}

absl::Status SetFrozen(const ZoneCgroup& cg, bool frozen) {
  if (cg.freezer_path.empty()) {
    return absl::FailedPreconditionError(
        "no freezer: this host mounts neither a v1 freezer hierarchy nor cgroup2");
  }
  FreezerFiles f = FreezerFor(cg, frozen);
  RAUHA_RETURN_IF_ERROR(
      WriteFile(f.control, cg.freezer_v2 ? (frozen ? "1" : "0") : f.want.c_str()));
  // v1 passes through FREEZING; v2 reports "frozen 1" in cgroup.events once every task stopped.
  auto deadline = Clock::now() + milliseconds(2000);
  std::string last;
  for (;;) {
    RAUHA_ASSIGN_OR_RETURN(std::string state, ReadFile(f.state));
    if (cg.freezer_v2 ? state.find(f.want) != std::string::npos : Trim(state) == f.want) {
      return absl::OkStatus();
    }
    last = std::string(Trim(state));
    if (Clock::now() > deadline) break;
    std::this_thread::sleep_for(milliseconds(2));
  }
  if (frozen) {
    // Do not leave the zone half frozen.
    (void)WriteFile(f.control, cg.freezer_v2 ? "0" : "THAWED");
  }
  return absl::DeadlineExceededError(StrCat(frozen ? "freezing " : "thawing ", cg.freezer_path,
                                            " did not complete within 2 s (", f.state, ": ", last,
                                            ")", frozen ? "; thawed it again" : ""));
}

std::vector<pid_t> Pids(const ZoneCgroup& cg) {
  std::set<pid_t> pids;
  for (const std::string& dir : cg.AllPaths()) {
    absl::StatusOr<std::string> text = ReadFile(dir + "/cgroup.procs");
    if (!text.ok()) continue;
    std::string_view rest = *text;
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      if (auto v = ParseU64(rest.substr(0, nl))) pids.insert(static_cast<pid_t>(*v));
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
  }
  return {pids.begin(), pids.end()};
}

absl::Status KillAll(const ZoneCgroup& cg) {
  // cgroup.kill (5.14+) kills the whole v2 subtree atomically, forks included.
  if (!cg.v2_path.empty() && Exists(cg.v2_path + "/cgroup.kill")) {
    absl::Status st = WriteFile(cg.v2_path + "/cgroup.kill", "1");
    if (!st.ok() && !absl::IsNotFound(st)) return st;
  }
  // Otherwise (and for stragglers only in v1 directories): freeze so that nothing forks
  // between reading the pids and signalling them, SIGKILL, then thaw, because a frozen task
  // acts on SIGKILL only once it runs again.
  auto deadline = Clock::now() + milliseconds(5000);
  auto next_round = Clock::now();
  std::vector<pid_t> left;
  for (;;) {
    left = Pids(cg);
    if (left.empty()) return absl::OkStatus();
    if (Clock::now() > deadline) break;
    if (Clock::now() >= next_round) {
      bool froze = !cg.freezer_path.empty() && Exists(cg.freezer_path) && SetFrozen(cg, true).ok();
      for (pid_t pid : Pids(cg)) {
        if (pid > 1 && pid != ::getpid()) ::kill(pid, SIGKILL);
      }
      if (froze) (void)SetFrozen(cg, false);
      next_round = Clock::now() + milliseconds(100);
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  std::string list;
  for (pid_t pid : left) list += StrCat(list.empty() ? "" : " ", pid);
  return absl::DeadlineExceededError(
      StrCat("processes ", list, " are still in zone cgroup ", cg.AllPaths().front(),
             " 5 s after SIGKILL (stuck in the kernel, e.g. in uninterruptible I/O)"));
}

absl::Status Remove(const ZoneCgroup& cg) {
  // A zone whose processes are all gone (its shim ended them) is removed by the rmdirs alone:
  // the kernel refuses (EBUSY) to remove a cgroup with a process in it, and nothing can join
  // an empty zone cgroup but by our own hands. Only a refusal costs the kill and the scan of
  // every directory's cgroup.procs.
  bool all_removed = true;
  for (const std::string& dir : cg.AllPaths()) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) all_removed = false;
  }
  if (all_removed) return absl::OkStatus();
  RAUHA_RETURN_IF_ERROR(KillAll(cg));
  for (const std::string& dir : cg.AllPaths()) {
    // A just-killed task can keep the cgroup busy for a moment while it exits.
    auto deadline = Clock::now() + milliseconds(1000);
    for (;;) {
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
      int err = errno;
      if (err != EBUSY || Clock::now() > deadline) {
        return ErrnoStatus(err, StrCat("rmdir ", dir));
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  return absl::OkStatus();
}

}  // namespace rauha::cgroup
