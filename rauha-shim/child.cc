#include "rauha-shim/child.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"
#include "rauha-shim/init.h"
#include "rauha-shim/landlock.h"
#include "rauha-shim/probe.h"
#include "rauha-shim/rootfs.h"
#include "rauha-shim/seccomp.h"
#include "rauha-shim/seccomp_notify.h"

namespace rauha::shim {
namespace {

constexpr int kErrorFd = 3;
constexpr int kStatusFd = 4;
constexpr int kNotifyFd = 5;
constexpr int kJoinFd = 6;  // an exec's pidfd of its container, until setns
constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The error pipe: where the shim put it until SetUpFds moves it to kErrorFd.
int error_fd = -1;

}  // namespace

void MarkChildStep(const char* step) {
  if (child_spans == nullptr || child_spans->count >= ChildSpans::kMax) return;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  auto& s = child_spans->steps[child_spans->count];
  s.step = step;
  s.ns = int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  ++child_spans->count;
}

namespace {

absl::Status Errno(std::string_view what) { return ErrnoStatus(errno, what); }

[[noreturn]] void Fail(std::string_view message) {
  while (!message.empty()) {
    ssize_t n = ::write(error_fd, message.data(), message.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    message.remove_prefix(static_cast<size_t>(n));
  }
  ::_exit(127);
}

// fds 0-2 become the task's stdio, the error pipe fd 3, the status pipe fd 4 and the
// listener socket fd 5; the user namespaces of KeptFds stay (wherever they land); everything
// else the shim holds (its socket, other tasks' pipes and pidfds) is closed. Each source is
// first copied above the targets, so none is overwritten before it has been placed.
absl::Status SetUpFds(const TaskPlan& plan, const ChildFds& fds, KeptFds* kept) {
  auto keep = [](int fd) -> absl::StatusOr<int> {
    if (fd < 0) return -1;
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, kJoinFd + 1);
    if (copy < 0) return Errno("fcntl(F_DUPFD_CLOEXEC) of a namespace or mount tree fd");
    return copy;
  };
  RAUHA_ASSIGN_OR_RETURN(kept->userns, keep(plan.userns_fd));
  for (const auto& m : plan.mounts) {
    RAUHA_ASSIGN_OR_RETURN(int fd, keep(m.idmap_fd));
    kept->mount_idmap.push_back(fd);
  }
  for (auto [trees, renumbered] : {std::pair{fds.mount_trees, &kept->mount_tree},
                                   std::pair{fds.layer_trees, &kept->layer_tree}}) {
    if (trees == nullptr) continue;
    for (int tree : *trees) {
      RAUHA_ASSIGN_OR_RETURN(int fd, keep(tree));
      renumbered->push_back(fd);
    }
  }
  int devnull = fds.stdin_fd >= 0 ? fds.stdin_fd : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) return Errno("open /dev/null");
  const int sources[] = {devnull,         fds.stdout_write,  fds.stderr_write, fds.error_pipe,
                         fds.status_pipe, fds.notify_socket, fds.join_pidfd};
  int high[7] = {-1, -1, -1, -1, -1, -1, -1};
  for (int i = 0; i < 7; ++i) {
    if (sources[i] < 0) continue;  // no exec: no pidfd to join
    high[i] = ::fcntl(sources[i], F_DUPFD_CLOEXEC, kJoinFd + 1);
    if (high[i] < 0) return Errno("fcntl(F_DUPFD_CLOEXEC)");
  }
  error_fd = high[3];
  if (::dup2(high[0], 0) < 0 || ::dup2(high[1], 1) < 0 || ::dup2(high[2], 2) < 0) {
    return Errno("dup2 stdio");
  }
  if (::dup3(high[3], kErrorFd, O_CLOEXEC) < 0) return Errno("dup3 error pipe");
  error_fd = kErrorFd;
  if (::dup3(high[4], kStatusFd, O_CLOEXEC) < 0) return Errno("dup3 status pipe");
  if (::dup3(high[5], kNotifyFd, O_CLOEXEC) < 0) return Errno("dup3 listener socket");
  unsigned first_closed = kNotifyFd + 1;
  if (high[6] >= 0) {
    if (::dup3(high[6], kJoinFd, O_CLOEXEC) < 0) return Errno("dup3 the container's pidfd");
    first_closed = kJoinFd + 1;
  }
  std::vector<int> keep_fds;
  if (kept->userns >= 0) keep_fds.push_back(kept->userns);
  for (int fd : kept->mount_idmap) {
    if (fd >= 0) keep_fds.push_back(fd);
  }
  for (int fd : kept->mount_tree) keep_fds.push_back(fd);
  for (int fd : kept->layer_tree) keep_fds.push_back(fd);
  std::sort(keep_fds.begin(), keep_fds.end());
  keep_fds.push_back(INT_MAX);  // the end of the last gap
  unsigned from = first_closed;
  for (int k : keep_fds) {
    unsigned to = k == INT_MAX ? ~0U : static_cast<unsigned>(k) - 1;
    if (from <= to && ::close_range(from, to, 0) < 0) {
      for (unsigned fd = from; fd <= to && fd < 65536; ++fd) ::close(static_cast<int>(fd));
    }
    if (k != INT_MAX) from = static_cast<unsigned>(k) + 1;
  }
  return absl::OkStatus();
}

// Joins the zone's user namespace as its root (host id userns_first): from here on every
// capability the task holds is one of that namespace, over the zone's ipc, uts and net
// namespaces only; the task's mount and pid namespaces belong to the host's user namespace,
// so no capability lets it mount or remount anything. The kernel clears the parent-death
// signal when the uid changes; it is set again.
absl::Status EnterZoneUserNamespace(KeptFds& kept) {
  if (::setns(kept.userns, CLONE_NEWUSER) < 0) return Errno("setns into the zone's user namespace");
  if (::setgroups(0, nullptr) < 0) return Errno("setgroups(0) in the zone's user namespace");
  if (::setresgid(0, 0, 0) < 0) return Errno("setresgid 0 in the zone's user namespace");
  if (::setresuid(0, 0, 0) < 0) return Errno("setresuid 0 in the zone's user namespace");
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::close(kept.userns);
  kept.userns = -1;
  for (int& fd : kept.mount_idmap) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  return absl::OkStatus();
}

absl::Status JoinV1Cgroups(const TaskPlan& plan) {
  for (const auto& dir : plan.cgroup_v1) {
    std::string procs = StrCat(dir, "/cgroup.procs");
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return Errno(StrCat("join cgroup: open ", procs));
    if (::write(fd.get(), "0", 1) != 1) return Errno(StrCat("join cgroup: write ", procs));
  }
  return absl::OkStatus();
}

absl::Status ApplyRlimits(const TaskPlan& plan) {
  for (const auto& [resource, limit] : plan.rlimits) {
    if (::setrlimit(resource, &limit) < 0) {
      return Errno(StrCat("setrlimit ", resource, " to ", limit.rlim_cur, "/", limit.rlim_max));
    }
  }
  return absl::OkStatus();
}

// The task's user (init and workload alike, so the init may signal what it forwards to),
// switched while still root with every capability: setgroups and setresgid need CAP_SETGID,
// which the policy may not keep. PR_SET_KEEPCAPS keeps the permitted set across setresuid
// (the kernel would clear it), and the effective set is raised again from it, so that
// ApplyCapabilities can still drop the bounding set; it then leaves a non-zero uid nothing.
absl::Status SwitchUser(const TaskPlan& plan) {
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return Errno("prctl(PR_SET_KEEPCAPS)");
  if (::setgroups(0, nullptr) < 0) return Errno("setgroups(0) (clear supplementary groups)");
  if (::setresgid(plan.gid, plan.gid, plan.gid) < 0) return Errno(StrCat("setresgid ", plan.gid));
  if (::setresuid(plan.uid, plan.uid, plan.uid) < 0) return Errno(StrCat("setresuid ", plan.uid));
  ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // cleared by the kernel with the uid change
  cap_t caps = cap_get_proc();
  if (caps == nullptr) return Errno("cap_get_proc");
  int rc = 0;
  for (int cap = 0; cap < static_cast<int>(cap_max_bits()) && rc == 0; ++cap) {
    cap_flag_value_t permitted = CAP_CLEAR;
    if (cap_get_flag(caps, cap, CAP_PERMITTED, &permitted) == 0 && permitted == CAP_SET) {
      cap_value_t value = cap;
      rc = cap_set_flag(caps, CAP_EFFECTIVE, 1, &value, CAP_SET);
    }
  }
  if (rc == 0) rc = cap_set_proc(caps);
  int err = errno;
  cap_free(caps);
  if (rc != 0) return ErrnoStatus(err, "raise effective capabilities after setresuid");
  return absl::OkStatus();
}

// Keeps exactly plan.capabilities: the bounding set loses every other one (so no exec can
// bring it back), and permitted = effective = inheritable = the kept set (empty for a task
// run as a non-zero uid); ambient is cleared.
absl::Status ApplyCapabilities(const TaskPlan& plan) {
  std::vector<int> none;
  const std::vector<int>& held = plan.switch_user && plan.uid != 0 ? none : plan.capabilities;
  auto kept = [&](int cap) {
    for (int c : plan.capabilities) {
      if (c == cap) return true;
    }
    return false;
  };
  int last = static_cast<int>(cap_max_bits());
  for (int cap = 0; cap < last; ++cap) {
    if (!kept(cap) && cap_drop_bound(cap) < 0 && errno != EINVAL) {
      return Errno(StrCat("drop ", cap_to_name(cap), " from the bounding set"));
    }
  }
  cap_t caps = cap_init();
  if (caps == nullptr) return Errno("cap_init");
  std::vector<cap_value_t> values(held.begin(), held.end());
  int rc = 0;
  if (!values.empty()) {
    for (cap_flag_t flag : {CAP_PERMITTED, CAP_EFFECTIVE, CAP_INHERITABLE}) {
      rc |= cap_set_flag(caps, flag, static_cast<int>(values.size()), values.data(), CAP_SET);
    }
  }
  if (rc == 0) rc = cap_set_proc(caps);
  int err = errno;
  cap_free(caps);
  if (rc != 0) return ErrnoStatus(err, "set capabilities");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
    return Errno("clear ambient capabilities");
  }
  if (plan.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    return Errno("prctl(PR_SET_NO_NEW_PRIVS)");
  }
  return absl::OkStatus();
}

// execvpe with the PATH of the task's environment, not the shim's.
[[noreturn]] void Exec(const TaskPlan& plan) {
  std::vector<char*> argv, envp;
  for (const auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::string_view path = kDefaultPath;
  for (const auto& e : plan.env) {
    envp.push_back(const_cast<char*>(e.c_str()));
    if (std::string_view(e).starts_with("PATH=")) path = std::string_view(e).substr(5);
  }
  envp.push_back(nullptr);
  const std::string& name = plan.argv[0];
  if (name.find('/') != std::string::npos) {
    ::execve(name.c_str(), argv.data(), envp.data());
    Fail(StrCat("exec ", name, ": ", strerror(errno)));
  }
  int saved = ENOENT;
  while (true) {
    size_t colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    std::string candidate = StrCat(dir.empty() ? "." : dir, "/", name);
    ::execve(candidate.c_str(), argv.data(), envp.data());
    if (errno == EACCES) {
      saved = EACCES;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      Fail(StrCat("exec ", candidate, ": ", strerror(errno)));
    }
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  Fail(StrCat("exec ", name, ": ", strerror(saved), " (searched PATH)"));
}

}  // namespace

ChildSpans* child_spans = nullptr;

void RunChild(const TaskPlan& plan, const ChildFds& fds) {
  error_fd = fds.error_pipe;
  // The shim blocks SIGTERM/SIGINT/SIGCHLD (signalfd) and ignores SIGPIPE; exec keeps both.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  // A task must not outlive its shim: nobody would reap it or collect its result.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  setsid();
  umask(022);
  auto check = [](const absl::Status& s) {
    if (!s.ok()) Fail(ToStd(s.message()));
  };
  KeptFds kept;
  check(SetUpFds(plan, fds, &kept));
  MarkChildStep("child_fds");
  check(JoinV1Cgroups(plan));
  MarkChildStep("child_v1_cgroups");
  if (fds.join_pidfd >= 0) {
    // An exec: the container's root and processes (its children land in its pid namespace;
    // this process stays outside as their init-like waiter). setns(CLONE_NEWNS) also moves
    // root and working directory to the namespace's root.
    if (::setns(kJoinFd, CLONE_NEWNS | CLONE_NEWPID) < 0) {
      Fail(StrCat("join the container's namespaces (setns): ", strerror(errno)));
    }
    ::close(kJoinFd);
  } else if (fds.mount_trees != nullptr) {
    check(FinishRootAhead(plan, kept.mount_tree, kept.layer_tree, kept.userns));
    for (int fd : kept.mount_tree) ::close(fd);
    for (int fd : kept.layer_tree) ::close(fd);
    kept.mount_tree.clear();
    kept.layer_tree.clear();
  } else {
    check(BuildRootAndPivot(plan, kept.userns, kept.mount_idmap));
  }
  MarkChildStep("child_root");
  if (::chdir(plan.workdir.c_str()) < 0)
    Fail(StrCat("workdir ", plan.workdir, ": ", strerror(errno)));
  check(ApplyRlimits(plan));
  if (kept.userns >= 0) check(EnterZoneUserNamespace(kept));
  if (plan.switch_user) check(SwitchUser(plan));
  check(ApplyCapabilities(plan));
  // Blocked before the fork: a signal or an exit that comes before the init waits is kept.
  sigset_t init_signals = InitSignals();
  sigprocmask(SIG_SETMASK, &init_signals, nullptr);
  MarkChildStep("child_creds");
  // An exec's waiter is not the pid namespace's init, whose death would take the workload
  // with it: the workload dies with its waiter instead (a SIGKILL for the exec reaches it).
  int waiter =
      fds.join_pidfd >= 0 ? static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)) : -1;
  pid_t workload = ::fork();
  if (workload < 0) Fail(StrCat("fork the workload: ", strerror(errno)));
  if (workload > 0) {
    ::close(kNotifyFd);
    if (waiter >= 0) ::close(waiter);
    RunInit(workload, kStatusFd, /*pid_one=*/fds.join_pidfd < 0);
  }
  if (waiter >= 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    pollfd gone{waiter, POLLIN, 0};
    if (::poll(&gone, 1, 0) != 0) ::_exit(128 + SIGKILL);  // it died before the prctl
    ::close(waiter);
  }
  // The workload leads its own session and process group, as it did when it was PID 1.
  setsid();
  // With a terminal it is its controlling terminal (^C, job control, SIGWINCH).
  if ((plan.tty || plan.stdin_is_terminal) && ::ioctl(0, TIOCSCTTY, 0) < 0) {
    Fail(StrCat("make the terminal the controlling terminal: ", strerror(errno)));
  }
  sigprocmask(SIG_SETMASK, &none, nullptr);
  MarkChildStep("workload_fork");
  // Only the workload is confined: the init must keep signalling it and reaping.
  if (plan.landlock_abi > 0) check(ApplyLandlock(plan));
  MarkChildStep("workload_landlock");
  // Last: from here on, only what the filter allows (exec is).
  if (plan.seccomp) {
    auto listener = InstallSeccompProgram(*plan.seccomp);
    check(listener.status());
    if (*listener >= 0) {
      check(SendFd(kNotifyFd, *listener));
      // Only the shim may hold it: a workload that answered its own notifications could
      // allow what the filter denies.
      ::close(*listener);
    }
  }
  ::close(kNotifyFd);
  MarkChildStep("workload_seccomp");
  if (plan.probe) {
    // The shim waits for this pipe's EOF before it watches the listener, and the probes'
    // denials wait for the shim: close it first.
    ::close(kErrorFd);
    RunProbes(plan.probe_skip);
  }
  Exec(plan);
}

}  // namespace rauha::shim
