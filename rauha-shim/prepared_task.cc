#include "rauha-shim/prepared_task.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string_view>

#include "rauha-common/errors.h"
#include "rauha-common/shim_protocol.h"
#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"
#include "rauha-shim/image_root.h"
#include "rauha-shim/root_ahead.h"
#include "rauha-shim/rootfs.h"

namespace rauha::shim {
namespace {

constexpr int kControlFd = 3;  // the parked process's end of the socketpair
constexpr int kUsernsFd = 4;   // the zone's user namespace, while it builds a root ahead
// The descriptors of one handover: spec, stdout, stderr, error pipe, status pipe, listener
// socket, then stdin, the user namespace and the mounts' idmaps where there are any.
constexpr size_t kFixedFds = 6;
constexpr size_t kMaxFds = 64;  // below SCM_MAX_FD (253); more mounts take the ordinary path
constexpr char kReady[] = "ok";

void WriteAll(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

[[noreturn]] void ReportAndExit(int fd, std::string_view message) {
  if (fd >= 0) WriteAll(fd, message);
  ::_exit(127);
}

// The mount namespace this process is in, as an fd to return to.
int OpenMountNamespace() { return ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC); }

// The parked process, until its task's plan arrives; then RunChild. Never returns. `userns`
// (kUsernsFd or -1): the zone's user namespace, for a root built ahead from `root`.
[[noreturn]] void Park(const std::vector<std::string>& cgroup_v1, ZoneContext zone,
                       ChildSpans* spans, const TaskPlan* root, int userns) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Nothing of the shim's stays open here but its log (stdio), the control socket and the
  // user namespace.
  ::close_range(kUsernsFd + 1, ~0U, 0);
  if (userns < 0) ::close(kUsernsFd);
  // The slow part, done now: the first v1 migration after a quiet spell waits for an RCU
  // grace period (cgroup_threadgroup_rwsem).
  for (const auto& dir : cgroup_v1) {
    std::string procs = StrCat(dir, "/cgroup.procs");
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), "0", 1) != 1) {
      ReportAndExit(kControlFd, StrCat("join cgroup ", procs, ": ", strerror(errno)));
    }
  }
  // The root, built ahead: in a mount namespace of its own (the host's is kept, to plan the
  // task in when it comes), pivoted into, still writable.
  UniqueFd host_mounts, own_mounts;
  if (root != nullptr) {
    ::umask(022);  // as RunChild's
    host_mounts.reset(OpenMountNamespace());
    if (!host_mounts || ::unshare(CLONE_NEWNS) < 0) {
      ReportAndExit(kControlFd, StrCat("a mount namespace for the root: ", strerror(errno)));
    }
    own_mounts.reset(OpenMountNamespace());
    if (!own_mounts) {
      ReportAndExit(kControlFd, StrCat("open its mount namespace: ", strerror(errno)));
    }
    if (absl::Status built = BuildRootAhead(*root, userns); !built.ok()) {
      ReportAndExit(kControlFd, StrCat("build the root ahead: ", built.message()));
    }
    if (userns >= 0) ::close(userns);  // the task's comes with it
  }
  if (::send(kControlFd, kReady, sizeof(kReady) - 1, MSG_NOSIGNAL) < 0) ::_exit(1);

  char header[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  iovec iov{header, sizeof(header)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(kControlFd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) ::_exit(0);  // the shim let it go (or is gone): no task comes
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const auto* data = reinterpret_cast<const int*>(CMSG_DATA(c));
    fds.insert(fds.end(), data, data + count);
  }
  // The error pipe is the fourth descriptor: what fails from here on is the task's start error.
  const int error_pipe = fds.size() > 3 ? fds[3] : -1;
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || fds.size() < kFixedFds) {
    ReportAndExit(error_pipe, "prepared task: the shim's handover was cut short");
  }
  auto head = nlohmann::json::parse(std::string_view(header, static_cast<size_t>(n)), nullptr,
                                    /*allow_exceptions=*/false);
  if (!head.is_object()) ReportAndExit(error_pipe, "prepared task: bad handover header");
  size_t next = kFixedFds;
  ChildFds child{fds[1], fds[2], fds[3], fds[4], fds[5], -1, -1};
  auto take = [&]() -> int {
    if (next >= fds.size()) ReportAndExit(error_pipe, "prepared task: descriptors missing");
    return fds[next++];
  };
  if (head.value("stdin", false)) child.stdin_fd = take();
  zone.userns_fd = head.value("userns", false) ? take() : -1;
  const bool ahead = head.value("root_ahead", false);
  if (ahead && !own_mounts) ReportAndExit(error_pipe, "prepared task: no root was built ahead");
  // Planned where the shim planned it: in the host's mounts as they are now.
  if (host_mounts && ::setns(host_mounts.get(), CLONE_NEWNS) < 0) {
    ReportAndExit(error_pipe,
                  StrCat("prepared task: return to the host's mount namespace: ", strerror(errno)));
  }

  std::string text;
  char buf[65536];
  while (true) {
    ssize_t r = ::pread(fds[0], buf, sizeof(buf), static_cast<off_t>(text.size()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) ReportAndExit(error_pipe, StrCat("prepared task: read its spec: ", strerror(errno)));
    if (r == 0) break;
    text.append(buf, static_cast<size_t>(r));
  }
  ::close(fds[0]);
  auto spec_json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto spec = TaskSpecFromJson(spec_json);
  if (!spec.ok()) ReportAndExit(error_pipe, StrCat("prepared task: ", spec.status().message()));
  // The same spec and zone the shim planned from: the same plan.
  auto plan = PlanTask(*spec, zone);
  if (!plan.ok()) ReportAndExit(error_pipe, StrCat("prepared task: ", plan.status().message()));
  plan->cgroup_v1.clear();  // joined above
  if (ahead) {
    // The shim found the root serves this task (so must we), and sent a tree per mount, and
    // for an image one per directory of its layers.
    const bool on_image = ImageRootAheadServes(*root, *plan);
    const size_t layer_dirs = on_image ? LayerParentsOf(plan->image_layers).dirs.size() : 0;
    if (!(on_image || RootAheadServes(*root, *plan)) ||
        head.value("trees", size_t{0}) != plan->mounts.size() ||
        head.value("layer_trees", size_t{0}) != layer_dirs) {
      ReportAndExit(error_pipe, "prepared task: the root built ahead does not serve this task");
    }
    std::vector<int> trees, layer_trees;
    for (size_t i = 0; i < plan->mounts.size(); ++i) trees.push_back(take());
    for (size_t i = 0; i < layer_dirs; ++i) layer_trees.push_back(take());
    if (::setns(own_mounts.get(), CLONE_NEWNS) < 0) {
      ReportAndExit(error_pipe,
                    StrCat("prepared task: return to the root built ahead: ", strerror(errno)));
    }
    host_mounts.reset();
    own_mounts.reset();
    child.mount_trees = &trees;
    child.layer_trees = &layer_trees;
    child_spans = spans;
    RunChild(*plan, child);
  }
  // The root built ahead (if any) does not serve: it goes, and the task's is built as usual.
  own_mounts.reset();
  host_mounts.reset();
  if (head.contains("idmaps") && head["idmaps"].is_array()) {
    for (const auto& index : head["idmaps"]) {
      if (!index.is_number_unsigned() || index.get<size_t>() >= plan->mounts.size()) {
        ReportAndExit(error_pipe, "prepared task: bad mount index in the handover");
      }
      plan->mounts[index.get<size_t>()].idmap_fd = take();
    }
  }
  // A mount namespace of its own, copied from the host's mounts as they are now.
  if (::unshare(CLONE_NEWNS) < 0) {
    ReportAndExit(error_pipe, StrCat("unshare (a new mount namespace): ", strerror(errno)));
  }
  child_spans = spans;
  RunChild(*plan, child);
}

}  // namespace

PreparedTask::PreparedTask(PreparedTask&& o) noexcept
    : pid(o.pid),
      pidfd(std::move(o.pidfd)),
      control(std::move(o.control)),
      cgroup_v2(std::move(o.cgroup_v2)),
      cgroup_v1(std::move(o.cgroup_v1)),
      spans(o.spans),
      root(std::move(o.root)) {
  o.pid = 0;
  o.spans = nullptr;
}

PreparedTask& PreparedTask::operator=(PreparedTask&& o) noexcept {
  if (this != &o) {
    this->~PreparedTask();
    new (this) PreparedTask(std::move(o));
  }
  return *this;
}

PreparedTask::~PreparedTask() {
  if (pidfd) {
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (spans != nullptr) ::munmap(spans, sizeof(ChildSpans));
}

absl::StatusOr<PreparedTask> PrepareTask(const std::string& cgroup_v2,
                                         const std::vector<std::string>& cgroup_v1,
                                         const ZoneContext& zone, int timeout_ms,
                                         std::shared_ptr<const TaskPlan> root) {
  PreparedTask prepared;
  prepared.cgroup_v2 = cgroup_v2;
  prepared.cgroup_v1 = cgroup_v1;
  UniqueFd cgroup;
  if (!cgroup_v2.empty()) {
    cgroup.reset(::open(cgroup_v2.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup) return ErrnoStatus(errno, StrCat("open cgroup ", cgroup_v2));
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
    return ErrnoStatus(errno, "socketpair for a prepared task");
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  if (SpanTrace::Enabled()) {
    void* mem = ::mmap(nullptr, sizeof(ChildSpans), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem != MAP_FAILED) prepared.spans = new (mem) ChildSpans();
  }
  int pidfd = -1;
  clone_args args{};
  // Its pid namespace now (pid 1 of it is the task's init); its mount namespace when the task
  // comes (Park).
  args.flags = CLONE_NEWPID | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  if (cgroup) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup.get());
  }
  long pid = ::syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) return ErrnoStatus(errno, "clone3 (a prepared task)");
  if (pid == 0) {
    // Above both fixed numbers first, so that neither dup3 overwrites the other's source.
    int userns = -1;
    if (root && zone.userns_fd >= 0) {
      userns = ::fcntl(zone.userns_fd, F_DUPFD_CLOEXEC, kUsernsFd + 1);
      if (userns < 0) ::_exit(127);
    }
    if (theirs.get() != kControlFd && ::dup3(theirs.get(), kControlFd, 0) < 0) ::_exit(127);
    if (userns >= 0 && ::dup3(userns, kUsernsFd, O_CLOEXEC) < 0) ::_exit(127);
    Park(cgroup_v1, zone, prepared.spans, root.get(), userns >= 0 ? kUsernsFd : -1);
  }
  prepared.pid = static_cast<pid_t>(pid);
  prepared.pidfd.reset(pidfd);
  theirs.reset();
  prepared.control = std::move(ours);
  prepared.root = std::move(root);
  // Its answer: "ok" once it is in every cgroup, or why not.
  pollfd p{prepared.control.get(), POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) {
    return absl::DeadlineExceededError(
        StrCat("the prepared task did not join its cgroups within ", timeout_ms, " ms"));
  }
  char answer[1024];
  ssize_t n = ::recv(prepared.control.get(), answer, sizeof(answer), 0);
  std::string_view got(answer, n > 0 ? static_cast<size_t>(n) : 0);
  if (got != kReady) {
    return absl::InternalError(got.empty() ? std::string("the prepared task exited")
                                           : StrCat("the prepared task: ", got));
  }
  return prepared;
}

bool FitsPrepared(const PreparedTask& prepared, const TaskPlan& plan) {
  return prepared.pidfd && plan.join_task.empty() && plan.cgroup_v2 == prepared.cgroup_v2 &&
         plan.cgroup_v1 == prepared.cgroup_v1;
}

absl::Status HandOver(PreparedTask& prepared, const nlohmann::json& spec, const TaskPlan& plan,
                      const ChildFds& fds) {
  UniqueFd spec_file(::memfd_create("rauha-task-spec", MFD_CLOEXEC));
  if (!spec_file) return ErrnoStatus(errno, "memfd_create for a prepared task's spec");
  nlohmann::json sent = spec;
  sent.erase("stdin_data");  // the child reads its stdin from fds.stdin_fd
  std::string text = sent.dump();
  if (::pwrite(spec_file.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno, "write a prepared task's spec");
  }
  std::vector<int> out = {spec_file.get(), fds.stdout_write, fds.stderr_write,
                          fds.error_pipe,  fds.status_pipe,  fds.notify_socket};
  nlohmann::json head = nlohmann::json::object();
  head["stdin"] = fds.stdin_fd >= 0;
  if (fds.stdin_fd >= 0) out.push_back(fds.stdin_fd);
  head["userns"] = plan.userns_fd >= 0;
  if (plan.userns_fd >= 0) out.push_back(plan.userns_fd);
  // The request's mounts, made now in the host's mount namespace, if the root built ahead
  // serves this task; a mount that cannot be made so leaves it to the ordinary path (whose
  // error, if it fails there too, is the task's start error as without a root built ahead).
  // An image's root (ImageRootAheadServes) also takes a tree of its layers' directories.
  std::vector<UniqueFd> trees, layer_trees;
  const bool on_image = prepared.root && ImageRootAheadServes(*prepared.root, plan);
  bool ahead = prepared.root && (on_image || RootAheadServes(*prepared.root, plan));
  for (size_t i = 0; ahead && i < plan.mounts.size(); ++i) {
    auto tree = MountTreeFor(plan.mounts[i]);
    if (!tree.ok()) {
      ahead = false;
      break;
    }
    trees.push_back(*std::move(tree));
  }
  if (ahead && on_image) {
    auto layers = LayerTreesFor(plan);
    if (layers.ok()) {
      layer_trees = *std::move(layers);
    } else {
      ahead = false;
    }
  }
  if (!ahead) {
    trees.clear();
    layer_trees.clear();
  }
  if (ahead) SpanTrace::MarkCurrent("mount_trees");
  head["root_ahead"] = ahead;
  head["trees"] = trees.size();
  head["layer_trees"] = layer_trees.size();
  for (const UniqueFd& tree : trees) out.push_back(tree.get());
  for (const UniqueFd& tree : layer_trees) out.push_back(tree.get());
  nlohmann::json idmaps = nlohmann::json::array();
  for (size_t i = 0; !ahead && i < plan.mounts.size(); ++i) {
    if (plan.mounts[i].idmap_fd < 0) continue;
    idmaps.push_back(i);
    out.push_back(plan.mounts[i].idmap_fd);
  }
  head["idmaps"] = std::move(idmaps);
  if (out.size() > kMaxFds) {
    return absl::ResourceExhaustedError("too many descriptors for a prepared task");
  }
  std::string header = head.dump();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)]{};
  iovec iov{header.data(), header.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * out.size());
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * out.size());
  std::memcpy(CMSG_DATA(c), out.data(), sizeof(int) * out.size());
  ssize_t n;
  do {
    n = ::sendmsg(prepared.control.get(), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(header.size())) {
    return ErrnoStatus(n < 0 ? errno : EPIPE, "hand the task to its prepared process");
  }
  prepared.control.reset();
  return absl::OkStatus();
}

}  // namespace rauha::shim
