#include "rauha-shim/launch.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <new>
#include <tuple>
#include <utility>

#include "rauha-common/errors.h"
#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"
#include "rauha-shim/child.h"
#include "rauha-shim/prepared_task.h"
#include "rauha-shim/seccomp_notify.h"

namespace rauha::shim {
namespace {

// Setting up a root is a few dozen mounts; a child that takes longer is stuck (a hung
// mount source) and is killed rather than freezing the shim's event loop.
constexpr int kSetupTimeoutMs = 30000;

struct Pipe {
  UniqueFd read, write;
};

absl::StatusOr<Pipe> MakePipe(const char* what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return ErrnoStatus(errno, StrCat("pipe2 for ", what));
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Reads the child's error report until EOF (exec succeeded or the child exited).
std::string ReadSetupError(int fd, int pidfd, bool* timed_out) {
  std::string message;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kSetupTimeoutMs);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      *timed_out = true;
      ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
      return StrCat("setting up the task took over ", kSetupTimeoutMs / 1000,
                    " s (a mount source that hangs?); killed");
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return message;
    if (message.size() < 4096) message.append(buf, static_cast<size_t>(n));
  }
}

// The task's stdin as a sealed memory file, opened read-only: it reads like a redirected
// file, and nothing the task does can change it (the bytes are in the shim's memory only once).
absl::StatusOr<UniqueFd> SealedStdin(const std::string& data) {
  UniqueFd mem(::memfd_create("rauha-stdin", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!mem) return ErrnoStatus(errno, "memfd_create for the task's stdin");
  std::string_view rest = data;
  while (!rest.empty()) {
    ssize_t n = ::write(mem.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(errno, "write the task's stdin");
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (::fcntl(mem.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) <
      0) {
    return ErrnoStatus(errno, "seal the task's stdin");
  }
  UniqueFd readonly(::open(StrCat("/proc/self/fd/", mem.get()).c_str(), O_RDONLY | O_CLOEXEC));
  if (!readonly) return ErrnoStatus(errno, "reopen the task's stdin read-only");
  return readonly;
}

// A new terminal: its master (the shim's end) and its slave (the workload's stdio), opened
// without becoming anyone's controlling terminal here; the workload takes it (child.cc).
struct Terminal {
  UniqueFd master, slave;
};

absl::StatusOr<Terminal> OpenTerminal(uint16_t rows, uint16_t cols) {
  Terminal t;
  t.master.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!t.master) return ErrnoStatus(errno, "posix_openpt (a terminal for the task)");
  if (::grantpt(t.master.get()) < 0 || ::unlockpt(t.master.get()) < 0) {
    return ErrnoStatus(errno, "unlockpt");
  }
  char name[64];
  if (::ptsname_r(t.master.get(), name, sizeof(name)) != 0) return ErrnoStatus(errno, "ptsname");
  t.slave.reset(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!t.slave) return ErrnoStatus(errno, StrCat("open ", name));
  if (rows != 0 && cols != 0) {
    winsize ws{};
    ws.ws_row = rows;
    ws.ws_col = cols;
    ::ioctl(t.master.get(), TIOCSWINSZ, &ws);
  }
  return t;
}

}  // namespace

absl::StatusOr<LaunchedTask> LaunchTask(const TaskPlan& plan, PreparedTask* prepared,
                                        const nlohmann::json* spec) {
  const bool join = plan.join_pidfd >= 0;
  UniqueFd cgroup;
  if (!plan.cgroup_v2.empty()) {
    cgroup.reset(::open(plan.cgroup_v2.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup) {
      int err = errno;
      return ErrnoStatus(err, StrCat("open cgroup ", plan.cgroup_v2));
    }
  }
  auto out = MakePipe("stdout");
  auto err = MakePipe("stderr");
  auto report = MakePipe("setup errors");
  auto status = MakePipe("the init's status");
  if (!out.ok() || !err.ok() || !report.ok() || !status.ok()) {
    return !out.ok()      ? out.status()
           : !err.ok()    ? err.status()
           : !report.ok() ? report.status()
                          : status.status();
  }
  UniqueFd stdin_file, stdin_write, tty_master, tty_slave;
  if (plan.tty) {
    auto terminal = OpenTerminal(plan.tty_rows, plan.tty_cols);
    if (!terminal.ok()) {
      return terminal.status();
    }
    tty_master = std::move(terminal->master);
    tty_slave = std::move(terminal->slave);
  } else if (plan.stdin_pipe) {
    auto in = MakePipe("stdin");
    if (!in.ok()) {
      return in.status();
    }
    stdin_file = std::move(in->read);
    stdin_write = std::move(in->write);
  } else if (!plan.stdin_data.empty()) {
    auto file = SealedStdin(plan.stdin_data);
    if (!file.ok()) {
      return file.status();
    }
    stdin_file = *std::move(file);
  }
  // containerd's FIFOs: O_RDWR for output, so that the open never blocks or fails for want of a
  // reader; stdin opened without blocking, then made blocking for the workload's reads.
  UniqueFd stdin_path_fd, stdout_path_fd, stderr_path_fd;
  for (auto [path, fd, flags] :
       {std::tuple{&plan.stdin_path, &stdin_path_fd, O_RDONLY | O_NONBLOCK},
        std::tuple{&plan.stdout_path, &stdout_path_fd, O_RDWR},
        std::tuple{&plan.stderr_path, &stderr_path_fd, O_RDWR}}) {
    if (path->empty()) continue;
    // O_NOCTTY: a terminal (stdin_is_terminal) must not become the shim's own.
    fd->reset(::open(path->c_str(), flags | O_CLOEXEC | O_NOCTTY));
    if (!*fd) {
      int e = errno;
      return ErrnoStatus(e, StrCat("open ", *path, " for the task's stdio"));
    }
    ::fcntl(fd->get(), F_SETFL, ::fcntl(fd->get(), F_GETFL) & ~O_NONBLOCK);
  }
  if (stdin_path_fd) stdin_file = std::move(stdin_path_fd);
  // The workload sends its seccomp listener here (seccomp_notify.h).
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
    int e = errno;
    return ErrnoStatus(e, "socketpair for the seccomp listener");
  }
  UniqueFd notify_read(pair[0]), notify_write(pair[1]);

  const ChildFds child_fds =
      tty_slave
          ? ChildFds{tty_slave.get(),    tty_slave.get(), report->write.get(), status->write.get(),
                     notify_write.get(), tty_slave.get(), plan.join_pidfd}
          : ChildFds{stdout_path_fd ? stdout_path_fd.get() : out->write.get(),
                     stderr_path_fd ? stderr_path_fd.get() : err->write.get(),
                     report->write.get(),
                     status->write.get(),
                     notify_write.get(),
                     stdin_file ? stdin_file.get() : -1,
                     plan.join_pidfd};
  // Debug timing only: the child's steps, in memory it shares with us across the fork.
  ChildSpans* spans = nullptr;
  long pid = -1;
  int pidfd = -1;
  if (prepared != nullptr && spec != nullptr && FitsPrepared(*prepared, plan)) {
    // The process made ahead takes the task; if it cannot (it died), a child is cloned below.
    auto handed = HandOver(*prepared, *spec, plan, child_fds);
    if (handed.ok()) {
      pid = prepared->pid;
      pidfd = prepared->pidfd.release();
      spans = std::exchange(prepared->spans, nullptr);
      SpanTrace::MarkCurrent("handover");
    }
  }
  if (pid < 0 && SpanTrace::Enabled()) {
    void* mem = ::mmap(nullptr, sizeof(ChildSpans), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem != MAP_FAILED) spans = new (mem) ChildSpans();
  }
  child_spans = spans;
  SpanTrace::MarkCurrent("launch_prepare");

  clone_args args{};
  // An exec joins the namespaces of its container in the child (setns), so it clones none.
  args.flags = join ? CLONE_PIDFD : (CLONE_NEWNS | CLONE_NEWPID | CLONE_PIDFD);
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  if (cgroup) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup.get());
  }
  // Raw clone3 without a new stack behaves like fork: the child gets a copy of the
  // (single-threaded) shim and returns here with 0.
  if (pid < 0) pid = ::syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) {
    int e = errno;
    if (e == EBADF && cgroup) {
      return absl::InvalidArgumentError(
          StrCat("clone3 into cgroup ", plan.cgroup_v2,
                 ": Bad file descriptor (CLONE_INTO_CGROUP needs a cgroup v2 directory)"));
    }
    if (e == ENOSYS) {
      return absl::FailedPreconditionError("clone3: not supported by this kernel (needs 5.7+)");
    }
    return ErrnoStatus(e, "clone3 (new mount and pid namespaces)");
  }
  if (pid == 0) RunChild(plan, child_fds);

  LaunchedTask task;
  task.pid = static_cast<pid_t>(pid);
  task.pidfd.reset(pidfd);
  out->write.reset();
  err->write.reset();
  report->write.reset();
  status->write.reset();
  notify_write.reset();
  stdin_file.reset();
  tty_slave.reset();
  bool timed_out = false;
  task.start_error = ReadSetupError(report->read.get(), pidfd, &timed_out);
  if (spans != nullptr) {
    child_spans = nullptr;
    // The workload's steps up to its exec are all written: the error pipe reached EOF.
    for (int i = 0; i < std::min(spans->count, ChildSpans::kMax); ++i) {
      SpanTrace::MarkCurrentAt(
          spans->steps[i].step,
          std::chrono::steady_clock::time_point(std::chrono::nanoseconds(spans->steps[i].ns)));
    }
    ::munmap(spans, sizeof(ChildSpans));
  }
  for (UniqueFd* fd : {&out->read, &err->read, &status->read}) {
    ::fcntl(fd->get(), F_SETFL, ::fcntl(fd->get(), F_GETFL) | O_NONBLOCK);
  }
  task.stdout_read = std::move(out->read);
  task.stderr_read = std::move(err->read);
  if (tty_master) {
    // Output comes from the terminal; the pipes were not given to the workload at all.
    task.stderr_read.reset();
    task.stdout_read.reset(::fcntl(tty_master.get(), F_DUPFD_CLOEXEC, 0));
    ::fcntl(tty_master.get(), F_SETFL, ::fcntl(tty_master.get(), F_GETFL) | O_NONBLOCK);
    task.stdin_write.reset(::fcntl(tty_master.get(), F_DUPFD_CLOEXEC, 0));
    task.tty_master = std::move(tty_master);
  } else if (stdin_write) {
    ::fcntl(stdin_write.get(), F_SETFL, ::fcntl(stdin_write.get(), F_GETFL) | O_NONBLOCK);
    task.stdin_write = std::move(stdin_write);
  }
  task.status_read = std::move(status->read);
  // Sent before the exec (or, for a probe, before the error pipe closed), so it is queued by
  // now if the workload got that far.
  if (plan.seccomp && plan.seccomp->notify) task.seccomp_listener = ReceiveFd(notify_read.get());
  return task;
}

}  // namespace rauha::shim
