#include "rauha-common/userns.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

// An id no zone gets (the last block below (uid_t)-1), for probes that create no file.
constexpr uint32_t kProbeOutsideFirst = 0xFFFE0000u;

// A child that shares our memory (CLONE_VM: no page tables copied, nothing to tear down when it
// exits, so a user namespace costs tens of microseconds, not hundreds, even from a large
// process) and blocks until `hold_` closes, then exits. It runs on its own small stack and
// makes only system calls that succeed (close, a blocking read that ends with EOF, _exit), so
// it touches no memory of ours but that stack. Holding it keeps its namespaces alive while
// they are set up.
class HolderChild {
 public:
  HolderChild() = default;
  HolderChild(const HolderChild&) = delete;
  HolderChild& operator=(const HolderChild&) = delete;
  ~HolderChild() { Release(); }

  absl::Status Start(int clone_flags) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) return ErrnoStatus(errno, "pipe2 for a namespace holder");
    read_end_.reset(fds[0]);
    hold_.reset(fds[1]);
    // By value: the child reads them from our memory, after we may have reset ours.
    child_fds_[0] = fds[0];
    child_fds_[1] = fds[1];
    stack_.resize(kStackBytes);
    pid_t pid = ::clone(&HolderChild::Main, stack_.data() + stack_.size(),
                        CLONE_VM | clone_flags | SIGCHLD, child_fds_);
    if (pid < 0) {
      int err = errno;
      hold_.reset();
      read_end_.reset();
      return ErrnoStatus(err, "clone (new user namespace)");
    }
    pid_ = pid;
    return absl::OkStatus();
  }

  pid_t pid() const { return pid_; }

  // Lets the child exit and reaps it (ECHILD where SIGCHLD is ignored: the kernel reaped it).
  void Release() {
    if (pid_ <= 0) return;
    hold_.reset();
    int status;
    while (::waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
    }
    pid_ = 0;
    read_end_.reset();
  }

 private:
  static constexpr size_t kStackBytes = 16 * 1024;

  static int Main(void* arg) {
    const int* fds = static_cast<const int*>(arg);
    // Its own copy of the fd table (no CLONE_FILES): close its write end so ours decides.
    ::close(fds[1]);
    char c;
    while (::read(fds[0], &c, 1) > 0) {
    }
    ::_exit(0);
  }

  UniqueFd read_end_;
  UniqueFd hold_;
  int child_fds_[2] = {-1, -1};  // written before clone, never after: the child's copy
  std::vector<char> stack_;
  pid_t pid_ = 0;
};

absl::Status WriteProcFile(pid_t pid, const char* name, const std::string& text) {
  std::string path = StrCat("/proc/", pid, "/", name);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, StrCat("open ", path));
  // The kernel takes a map in a single write only.
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno,
                       StrCat("write ", path, " (\"", text.substr(0, text.find('\n')), "\")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> OpenNs(pid_t pid, const char* name) {
  std::string path = StrCat("/proc/", pid, "/ns/", name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, StrCat("open ", path));
  return fd;
}

}  // namespace

std::string FormatIdMap(const std::vector<IdMapping>& map) {
  std::string out;
  for (const auto& m : map) out += StrCat(m.inside, " ", m.outside, " ", m.count, "\n");
  return out;
}

absl::StatusOr<ZoneNamespaces> CreateUserNamespace(const std::vector<IdMapping>& uid_map,
                                                   const std::vector<IdMapping>& gid_map,
                                                   int extra_flags) {
  HolderChild child;
  RAUHA_RETURN_IF_ERROR(child.Start(CLONE_NEWUSER | extra_flags));
  RAUHA_RETURN_IF_ERROR(WriteProcFile(child.pid(), "uid_map", FormatIdMap(uid_map)));
  RAUHA_RETURN_IF_ERROR(WriteProcFile(child.pid(), "gid_map", FormatIdMap(gid_map)));
  ZoneNamespaces out;
  RAUHA_ASSIGN_OR_RETURN(out.user, OpenNs(child.pid(), "user"));
  if (extra_flags & CLONE_NEWIPC) {
    RAUHA_ASSIGN_OR_RETURN(out.ipc, OpenNs(child.pid(), "ipc"));
  }
  if (extra_flags & CLONE_NEWUTS) {
    RAUHA_ASSIGN_OR_RETURN(out.uts, OpenNs(child.pid(), "uts"));
  }
  if (extra_flags & CLONE_NEWNET) {
    RAUHA_ASSIGN_OR_RETURN(out.net, OpenNs(child.pid(), "net"));
  }
  return out;
}

absl::StatusOr<UniqueFd> IdmappedTree(int dirfd, const std::string& path, int userns_fd,
                                      uint64_t attr_set) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE;
  if (path.empty()) flags |= AT_EMPTY_PATH;
  UniqueFd tree(static_cast<int>(::syscall(SYS_open_tree, dirfd, path.c_str(), flags)));
  if (!tree) return ErrnoStatus(errno, StrCat("open_tree ", path.empty() ? "(fd)" : path));
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP | attr_set;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
    return ErrnoStatus(errno,
                       StrCat("mount_setattr(MOUNT_ATTR_IDMAP) on ", path.empty() ? "(fd)" : path));
  }
  return tree;
}

namespace {

// Whether overlayfs takes a lower layer on an idmapped mount (Linux 5.19+; 5.12-5.18 have
// idmapped mounts but overlayfs refuses them), as image roots and writable system
// directories need: tried in a child with a private mount namespace (a tmpfs over
// `probe_dir` there holds the layers), so nothing is left in ours. 0 or the failing errno;
// `step` names what failed.
int ProbeIdmappedOverlay(const std::string& probe_dir, int userns_fd, const char** step) {
  static const char* const kSteps[] = {"",
                                       "unshare(CLONE_NEWNS)",
                                       "make / private",
                                       "open_tree",
                                       "mount_setattr(MOUNT_ATTR_IDMAP)",
                                       "mount tmpfs",
                                       "mkdir",
                                       "move_mount the idmapped layer",
                                       "mount overlayfs over an idmapped lower layer"};
  // Built before the clone: the child only makes system calls (the parent may be threaded).
  const std::string lower = StrCat(probe_dir, "/l"), upper = StrCat(probe_dir, "/u"),
                    work = StrCat(probe_dir, "/w"), merged = StrCat(probe_dir, "/m");
  const std::string data = StrCat("lowerdir=", lower, ",upperdir=", upper, ",workdir=", work);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) {
    *step = "pipe2";
    return errno;
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  clone_args args{};
  args.exit_signal = SIGCHLD;
  long pid = ::syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) {
    *step = "clone3";
    return errno;
  }
  if (pid == 0) {
    auto fail = [&](int which) {
      int report[2] = {which, errno};
      (void)!::write(fds[1], report, sizeof(report));
      ::_exit(1);
    };
    if (::unshare(CLONE_NEWNS) < 0) fail(1);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) fail(2);
    int tree = static_cast<int>(
        ::syscall(SYS_open_tree, AT_FDCWD, probe_dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (tree < 0) fail(3);
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY;
    attr.userns_fd = static_cast<uint64_t>(userns_fd);
    if (::mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) fail(4);
    if (::mount("rauha-probe", probe_dir.c_str(), "tmpfs", 0, "mode=0700") < 0) fail(5);
    for (const std::string* d : {&lower, &upper, &work, &merged}) {
      if (::mkdir(d->c_str(), 0700) < 0) fail(6);
    }
    if (::syscall(SYS_move_mount, tree, "", AT_FDCWD, lower.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0) {
      fail(7);
    }
    if (::mount("rauha-probe", merged.c_str(), "overlay", 0, data.c_str()) < 0) fail(8);
    ::_exit(0);
  }
  write_end.reset();
  int report[2] = {0, 0};
  ssize_t n;
  while ((n = ::read(read_end.get(), report, sizeof(report))) < 0 && errno == EINTR) {
  }
  int status = 0;
  while (::waitpid(static_cast<pid_t>(pid), &status, __WALL) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof(report)) && report[0] > 0 && report[0] <= 8) {
    *step = kSteps[report[0]];
    return report[1] ? report[1] : EIO;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *step = "the probe's child";
    return EIO;
  }
  return 0;
}

}  // namespace

bool ProbeZoneUserNamespaces(const std::string& probe_dir, std::string* detail) {
  std::vector<IdMapping> map = {{0, kProbeOutsideFirst, kZoneIdCount}};
  auto ns = CreateUserNamespace(map, map);
  if (!ns.ok()) {
    *detail = StrCat("user namespaces do not work here: ", ns.status().message());
    return false;
  }
  auto tree = IdmappedTree(AT_FDCWD, probe_dir, ns->user.get(), MOUNT_ATTR_RDONLY);
  if (!tree.ok()) {
    *detail = StrCat("idmapped mounts do not work here: ", tree.status().message());
    return false;
  }
  const char* step = "";
  if (int err = ProbeIdmappedOverlay(probe_dir, ns->user.get(), &step); err != 0) {
    *detail = StrCat(
        "overlayfs over idmapped layers does not work here (image roots need it; "
        "Linux 5.19+): ",
        step, ": ", std::strerror(err));
    return false;
  }
  *detail = StrCat(
      "user namespaces, idmapped mounts and overlayfs over idmapped layers work "
      "(probed on ",
      probe_dir, ")");
  return true;
}

std::string DescribeZoneMapping(uint32_t host_first) {
  return StrCat("uid/gid 0-", kZoneIdCount - 1, " -> host ", host_first, "-",
                host_first + (kZoneIdCount - 1));
}

absl::StatusOr<std::string> ReadUidMapOf(int userns_fd) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  clone_args args{};
  args.exit_signal = SIGCHLD;
  long pid = ::syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) return ErrnoStatus(errno, "clone3");
  if (pid == 0) {
    // Async-signal-safe calls only: the parent may be threaded.
    if (::setns(userns_fd, CLONE_NEWUSER) < 0) ::_exit(1);
    int map = ::open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
    if (map < 0) ::_exit(2);
    char buf[4096];
    ssize_t n = ::read(map, buf, sizeof(buf));
    if (n > 0 && ::write(fds[1], buf, static_cast<size_t>(n)) != n) ::_exit(3);
    ::_exit(n > 0 ? 0 : 4);
  }
  write_end.reset();
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(read_end.get(), buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  bool reaped = false;
  while (true) {
    if (::waitpid(static_cast<pid_t>(pid), &status, __WALL) >= 0) {
      reaped = true;
      break;
    }
    if (errno != EINTR) break;
  }
  if (reaped && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    return absl::InternalError(StrCat("reading the uid_map of a user namespace failed (step ",
                                      WIFEXITED(status) ? WEXITSTATUS(status) : -1, ")"));
  }
  if (out.empty()) return absl::InternalError("reading the uid_map of a user namespace: empty");
  return out;
}

}  // namespace rauha
