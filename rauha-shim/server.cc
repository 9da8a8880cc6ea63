#include "rauha-shim/server.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/escaping.h"
#include "rauha-common/errors.h"
#include "rauha-common/hostname.h"
#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"
#include "rauha-common/userns.h"
#include "rauha-shim/init.h"
#include "rauha-shim/launch.h"
#include "rauha-shim/log.h"
#include "rauha-shim/log_writer.h"
#include "rauha-shim/output_spool.h"
#include "rauha-shim/seccomp.h"
#include "rauha-shim/seccomp_notify.h"

namespace rauha::shim {
namespace {

using nlohmann::json;

// After a task's init (its PID 1) exits the kernel kills the rest of its pid namespace, so the
// pipes reach EOF at once unless a descriptor escaped; this bounds the wait for that.
constexpr int64_t kDrainMs = 1000;
constexpr int64_t kShutdownWaitMs = 5000;
// A prepared task joins its v1 cgroups (an RCU grace period or two); past this it is stuck.
constexpr int kPrepareTimeoutMs = 10000;
// A result must fit in one frame even when JSON escaping inflates binary output ~6x.
constexpr uint64_t kMaxOutputLimit = kDefaultOutputLimit;
constexpr size_t kReadChunk = 16384;
// Notifications answered per wake-up, so a workload hammering a denied syscall cannot starve
// the other tasks and connections (the listener stays readable; epoll comes back to it).
constexpr int kNotificationsPerWake = 64;
// Live event frames are dropped for a connection while this much of its output is unsent: a
// client that does not read must not grow the shim. The TaskResult keeps the events anyway.
constexpr size_t kMaxLiveBacklog = 1u << 20;

enum Kind : uint64_t { kListener = 1, kSignals, kConn, kPidfd, kStdout, kStderr, kNotify, kStdin };
// Input for a task's stdin that it has not read yet: beyond this a "stdin" request is refused
// (RESOURCE_EXHAUSTED) rather than growing the shim.
constexpr size_t kMaxStdinBacklog = 1u << 20;

uint64_t Tag(Kind kind, uint64_t serial) { return (uint64_t{kind} << 56) | serial; }
Kind TagKind(uint64_t tag) { return static_cast<Kind>(tag >> 56); }
uint64_t TagSerial(uint64_t tag) { return tag & ((uint64_t{1} << 56) - 1); }

int64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

uint64_t Micros(const timeval& tv) {
  return static_cast<uint64_t>(tv.tv_sec) * 1000000 + static_cast<uint64_t>(tv.tv_usec);
}

// The inode of `pid`'s pid namespace, 0 when it cannot be read.
uint64_t PidNamespaceInode(pid_t pid) {
  struct stat st;
  if (::stat(StrCat("/proc/", pid, "/ns/pid").c_str(), &st) < 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

// A cgroup v2 directory's id (what bpf_get_current_cgroup_id returns), 0 when unknown.
uint64_t CgroupId(const std::string& dir) {
  if (dir.empty()) return 0;
  struct {
    file_handle handle;
    uint64_t id;
  } h{};
  h.handle.handle_bytes = sizeof(uint64_t);
  int mount_id = 0;
  if (::name_to_handle_at(AT_FDCWD, dir.c_str(), &h.handle, &mount_id, 0) < 0) return 0;
  uint64_t id = 0;
  std::memcpy(&id, h.handle.f_handle, sizeof(id));
  return id;
}

int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// Asks the task's init to send SIGTERM to every process of the task (init.h).
int TerminateAll(int pidfd) {
  siginfo_t info{};
  info.si_signo = SIGTERM;
  info.si_code = SI_QUEUE;
  info.si_pid = ::getpid();
  info.si_uid = ::getuid();
  info.si_value.sival_int = kTerminateAllValue;
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, &info, 0));
}

// "signal" is a number or a name ("SIGTERM", "TERM"); absent means SIGKILL.
absl::StatusOr<int> ParseSignal(const json& params) {
  auto it = params.find("signal");
  if (it == params.end() || it->is_null()) return SIGKILL;
  if (it->is_number_integer()) {
    int64_t sig = it->get<int64_t>();
    if (sig >= 1 && sig <= SIGRTMAX) return static_cast<int>(sig);
  } else if (it->is_string()) {
    std::string name = it->get<std::string>();
    if (name.starts_with("SIG")) name = name.substr(3);
    constexpr std::pair<const char*, int> kNames[] = {
        {"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},
        {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"STOP", SIGSTOP},
        {"CONT", SIGCONT}, {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH},
    };
    for (const auto& [n, sig] : kNames) {
      if (name == n) return sig;
    }
  }
  return absl::InvalidArgumentError(
      StrCat("kill: \"signal\" must be a signal number or name such as SIGTERM, not ",
             it->dump(-1, ' ', false, json::error_handler_t::replace)));
}

struct OutputFiles {
  UniqueFd out, err;
};

// "stdout" and "stderr" in `dir` on the host, created or truncated. The shim runs in the
// host's mount namespace, so this is the directory the client named (rauhad checked it:
// rauhad/output_dir.h); a symlink put on the way since is refused here too.
absl::StatusOr<OutputFiles> OpenOutputFiles(const std::string& dir) {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  UniqueFd d(static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, dir.c_str(), &how, sizeof(how))));
  if (!d) return ErrnoStatus(errno, StrCat("output_dir ", dir));
  OutputFiles files;
  for (auto [name, fd] : {std::pair{"stdout", &files.out}, std::pair{"stderr", &files.err}}) {
    fd->reset(::openat(d.get(), name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!*fd) return ErrnoStatus(errno, StrCat("output_dir: create ", dir, "/", name));
  }
  return files;
}

}  // namespace

struct Server::Conn {
  uint64_t serial = 0;
  UniqueFd fd;
  frame::Decoder decoder;
  std::string out;
  bool want_write = false;
};

struct Server::Task {
  uint64_t serial = 0;
  bool host_ids = false;  // runs without the zone's user namespace
  // Where Landlock lets it write (TaskPlan), for the execs that join it.
  bool root_writable = false;
  std::vector<std::string> overlay_dirs, scratch_dirs;
  pid_t pid = 0;
  UniqueFd pidfd, out, err;
  UniqueFd out_file, err_file;  // the complete output (TaskSpec.output_dir), or empty
  OutputSpool spool;            // the kept output, for rauhad if this shim dies
  std::string output_dir;
  UniqueFd status;    // the init's report (init.h)
  UniqueFd listener;  // the workload's seccomp notifications (seccomp_notify.h)
  uint64_t pidns_ino = 0;
  uint64_t cgroup_id = 0;
  TaskResult result;
  uint64_t output_limit = 0;
  bool exited = false;
  bool ended = false;
  int64_t deadline_ms = 0;       // monotonic; 0: none
  int64_t kill_deadline_ms = 0;  // after SIGTERM at the timeout: when SIGKILL follows
  uint64_t kill_after_ms = 0;
  int64_t drain_deadline_ms = 0;
  std::vector<std::pair<uint64_t, uint64_t>> waiters;  // (conn, request id)
  std::vector<uint64_t> streamers;                     // conns that get the output live
  // Streamers that must get all of it ("start" with "stream"): while one of them has more
  // than kMaxLiveBacklog unsent, the task's output is not read (output_paused), so the
  // workload blocks on its full pipe instead of the shim growing or dropping output.
  std::vector<uint64_t> paced;
  bool output_paused = false;
  std::unique_ptr<LogWriter> log;  // TaskSpec.log_path
  UniqueFd stdin_write;            // TaskSpec.stdin_pipe / tty
  UniqueFd tty_master;
  std::string stdin_pending;
  bool stdin_eof = false;  // close stdin once stdin_pending is written
  bool stdin_watched = false;
};

Server::Server(const Options& options, UniqueFd listener, UniqueFd signals, UniqueFd userns)
    : options_(options),
      listener_(std::move(listener)),
      signals_(std::move(signals)),
      userns_(std::move(userns)) {
  zone_.state_dir = options.state_dir;
  zone_.hostname = options.hostname.empty() ? ZoneHostname(options.zone_name) : options.hostname;
  zone_.isolated_network = options.isolated_network;
  if (userns_) {
    zone_.userns_fd = userns_.get();
    zone_.userns_first = options.userns_first;
  }
}

absl::StatusOr<int> Server::IdmapFor(uid_t owner_uid, gid_t owner_gid, uid_t task_uid,
                                     gid_t task_gid) {
  auto key = std::make_tuple(owner_uid, owner_gid, task_uid, task_gid);
  if (auto it = idmaps_.find(key); it != idmaps_.end()) return it->second.get();
  // A zone sees few (repo owner, task user) pairs; a bound keeps a hostile caller from piling
  // up namespaces (each is a kernel object).
  if (idmaps_.size() >= 16) idmaps_.clear();
  // One id each way: the owner's files are the task's; files of anyone else show as the
  // overflow id (nobody), and the zone's root has no capability over them.
  auto ns = CreateUserNamespace({{owner_uid, zone_.userns_first + task_uid, 1}},
                                {{owner_gid, zone_.userns_first + task_gid, 1}});
  if (!ns.ok()) return Annotate(ns.status(), "user namespace for an idmapped mount");
  int fd = ns->user.get();
  idmaps_.emplace(key, std::move(ns->user));
  return fd;
}

Server::~Server() = default;

void Server::Watch(int fd, uint64_t tag, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
    Log(StrCat("epoll_ctl add fd ", fd, ": ", strerror(errno)));
  }
}

void Server::Unwatch(int fd) { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

int Server::Run() {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) {
    Log(StrCat("epoll_create1: ", strerror(errno)));
    return 1;
  }
  Watch(listener_.get(), Tag(kListener, 0), EPOLLIN);
  Watch(signals_.get(), Tag(kSignals, 0), EPOLLIN);
  epoll_event events[16];
  while (true) {
    int n = ::epoll_wait(epoll_.get(), events, 16, NextTimeoutMs());
    if (n < 0 && errno != EINTR) {
      Log(StrCat("epoll_wait: ", strerror(errno)));
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      uint64_t serial = TagSerial(tag);
      switch (TagKind(tag)) {
        case kListener:
          Accept();
          break;
        case kSignals:
          OnSignal();
          break;
        case kConn: {
          auto it = conns_.find(serial);
          if (it == conns_.end()) break;
          if (events[i].events & EPOLLOUT) Flush(*it->second);
          if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) OnConnReadable(serial);
          break;
        }
        case kPidfd:
        case kStdout:
        case kStderr:
        case kNotify:
        case kStdin: {
          auto it = tasks_by_serial_.find(serial);
          if (it == tasks_by_serial_.end()) break;
          if (TagKind(tag) == kStdin) {
            FlushStdin(*it->second);
          } else if (TagKind(tag) == kNotify) {
            OnNotification(*it->second, events[i].events);
          } else if (TagKind(tag) == kPidfd) {
            OnTaskExit(*it->second);
          } else {
            OnTaskOutput(*it->second, TagKind(tag) == kStderr);
          }
          break;
        }
      }
    }
    CheckDeadlines();
    if (shutting_down_ && ShutdownComplete()) break;
  }
  return 0;
}

void Server::Accept() {
  while (true) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) Log(StrCat("accept: ", strerror(errno)));
      return;
    }
    auto conn = std::make_unique<Conn>();
    conn->serial = next_serial_++;
    conn->fd.reset(fd);
    Watch(fd, Tag(kConn, conn->serial), EPOLLIN);
    conns_.emplace(conn->serial, std::move(conn));
  }
}

void Server::OnConnReadable(uint64_t serial) {
  Conn* c = conns_.at(serial).get();
  char buf[kReadChunk];
  while (true) {
    ssize_t n = ::read(c->fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      CloseConn(serial);
      return;
    }
    c->decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
    while (true) {
      auto next = c->decoder.Next();
      if (!next.ok()) {
        Log(StrCat("closing connection ", serial, ": ", ToStd(next.status().message())));
        CloseConn(serial);
        return;
      }
      if (!next->has_value()) break;
      HandleRequest(serial, **next);
      // The request may have ended the connection (a write error).
      if (!conns_.contains(serial)) return;
    }
  }
}

void Server::Flush(Conn& c) {
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) {
      // The peer is gone; the read side sees it and closes the connection.
      c.out.clear();
      break;
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
  bool want = !c.out.empty();
  if (want != c.want_write) {
    epoll_event ev{};
    ev.events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    ev.data.u64 = Tag(kConn, c.serial);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
    c.want_write = want;
  }
  if (c.out.empty()) std::string().swap(c.out);
  if (c.out.size() <= kMaxLiveBacklog) ResumePacedOutput();
}

void Server::CloseConn(uint64_t serial) {
  auto it = conns_.find(serial);
  if (it == conns_.end()) return;
  Unwatch(it->second->fd.get());
  conns_.erase(it);
  // The tasks keep running; only the answers owed to this connection are dropped.
  for (auto& [id, task] : tasks_) {
    std::erase_if(task->waiters, [&](const auto& w) { return w.first == serial; });
    std::erase(task->streamers, serial);
    std::erase(task->paced, serial);
  }
  ResumePacedOutput();
  std::erase_if(shutdown_replies_, [&](const auto& w) { return w.first == serial; });
}

void Server::Reply(uint64_t conn, uint64_t id, const absl::StatusOr<json>& result) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  auto encoded = frame::Encode(result.ok() ? MakeOkResponse(id, *result)
                                           : MakeErrorResponse(id, result.status()));
  if (!encoded.ok()) {
    encoded = frame::Encode(MakeErrorResponse(id, encoded.status()));
    if (!encoded.ok()) return;
  }
  it->second->out += *encoded;
  Flush(*it->second);
}

void Server::OnSignal() {
  signalfd_siginfo info;
  while (::read(signals_.get(), &info, sizeof(info)) == sizeof(info)) {
    if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
      Log(StrCat("received signal ", info.ssi_signo, "; shutting down"));
      BeginShutdown(0, 0);
    }
    // SIGCHLD: each task's pidfd reports its exit.
  }
}

void Server::HandleRequest(uint64_t conn, const json& request) {
  auto id_it = request.find("id");
  auto method_it = request.find("method");
  if (id_it == request.end() || !id_it->is_number_unsigned()) {
    Reply(conn, 0, absl::InvalidArgumentError("request needs a non-negative integer \"id\""));
    return;
  }
  uint64_t id = id_it->get<uint64_t>();
  if (method_it == request.end() || !method_it->is_string()) {
    Reply(conn, id, absl::InvalidArgumentError("request needs a string \"method\""));
    return;
  }
  static const json kEmpty = json::object();
  const json* params = &kEmpty;
  if (auto p = request.find("params"); p != request.end() && !p->is_null()) {
    if (!p->is_object()) {
      Reply(conn, id, absl::InvalidArgumentError("\"params\" must be an object"));
      return;
    }
    params = &*p;
  }
  const std::string& method = method_it->get_ref<const std::string&>();
  if (method == "hello") {
    Reply(conn, id, Hello());
  } else if (method == "start") {
    auto started = Start(*params);
    // "stream": this connection gets the task's output from its first byte, paced (no frame
    // dropped; see Task::paced). Registered before the reply, so before any output is read.
    auto stream = params->find("stream");
    if (started.ok() && stream != params->end() && stream->is_boolean() && stream->get<bool>()) {
      auto task = tasks_.find(started->value("task_id", std::string()));
      if (task != tasks_.end()) {
        task->second->streamers.push_back(conn);
        task->second->paced.push_back(conn);
      }
    }
    Reply(conn, id, started);
  } else if (method == "prepare") {
    Reply(conn, id, Prepare(*params));
  } else if (method == "wait") {
    auto task = FindTask(*params);
    if (!task.ok()) {
      Reply(conn, id, task.status());
    } else if ((*task)->ended) {
      Task& t = **task;
      auto stream = params->find("stream");
      auto replay = params->find("replay");
      if (stream != params->end() && *stream == true && replay != params->end() &&
          *replay == true) {
        // Over before this wait came: its kept output first, as for a running task.
        t.streamers.push_back(conn);
        if (!t.result.stdout_data.empty()) SendOutput(t, false, t.result.stdout_data);
        if (!t.result.stderr_data.empty()) SendOutput(t, true, t.result.stderr_data);
        t.streamers.clear();
      }
      Reply(conn, id, ToJson(t.result));
    } else {
      (*task)->waiters.emplace_back(conn, id);
      auto stream = params->find("stream");
      if (stream != params->end() && stream->is_boolean() && stream->get<bool>() &&
          std::find((*task)->streamers.begin(), (*task)->streamers.end(), conn) ==
              (*task)->streamers.end()) {
        Task& t = **task;
        // "replay": the output read before this wait (what the result holds of it) comes
        // first, so a client that starts a task and then streams it misses nothing.
        auto replay = params->find("replay");
        if (replay != params->end() && replay->is_boolean() && replay->get<bool>()) {
          t.streamers.push_back(conn);
          if (!t.result.stdout_data.empty()) SendOutput(t, false, t.result.stdout_data);
          if (!t.result.stderr_data.empty()) SendOutput(t, true, t.result.stderr_data);
          t.streamers.pop_back();
        }
        t.streamers.push_back(conn);
        // "paced" (with "stream"): from now on this connection paces the task's output as a
        // "start" with "stream" does (rauhad watching a container again after its restart).
        auto paced = params->find("paced");
        if (paced != params->end() && paced->is_boolean() && paced->get<bool>()) {
          t.paced.push_back(conn);
        }
      }
    }
  } else if (method == "kill") {
    Reply(conn, id, Kill(*params));
  } else if (method == "list") {
    Reply(conn, id, List());
  } else if (method == "forget") {
    Reply(conn, id, Forget(*params));
  } else if (method == "stdin") {
    Reply(conn, id, Stdin(*params));
  } else if (method == "resize") {
    Reply(conn, id, Resize(*params));
  } else if (method == "shutdown") {
    BeginShutdown(conn, id);
  } else {
    Reply(conn, id, absl::UnimplementedError(StrCat("unknown method \"", method, "\"")));
  }
}

absl::StatusOr<Server::Task*> Server::FindTask(const json& params) const {
  auto it = params.find("task_id");
  if (it == params.end() || !it->is_string()) {
    return absl::InvalidArgumentError("params.task_id must be a string");
  }
  auto task = tasks_.find(it->get<std::string>());
  if (task == tasks_.end()) {
    return absl::NotFoundError(StrCat("no task \"", it->get<std::string>(), "\" in this zone"));
  }
  return task->second.get();
}

json Server::Hello() const {
  ShimHello hello;
  hello.zone_id = options_.zone_id;
  hello.pid = ::getpid();
  hello.version = RAUHA_VERSION;
  for (const auto& [id, t] : tasks_) {
    hello.tasks.push_back(TaskStatus{id, t->pid, !t->ended, t->result.started_at_ns});
  }
  return ToJson(hello);
}

json Server::List() const {
  json tasks = json::array();
  for (const auto& [id, t] : tasks_) {
    tasks.push_back(ToJson(TaskStatus{id, t->pid, !t->ended, t->result.started_at_ns}));
  }
  return json{{"tasks", std::move(tasks)}};
}

absl::StatusOr<json> Server::Start(const json& params) {
  if (shutting_down_) return absl::FailedPreconditionError("the shim is shutting down");
  SpanTrace trace("rauha-shim", "start");
  auto spec = TaskSpecFromJson(params);
  if (!spec.ok()) return spec.status();
  if (tasks_.contains(spec->task_id)) {
    return absl::AlreadyExistsError(
        StrCat("task \"", spec->task_id, "\" already exists in this zone"));
  }
  auto plan = PlanTask(*spec, zone_);
  if (!plan.ok()) return plan.status();
  trace.Mark("plan");
  for (auto& m : plan->mounts) {
    if (plan->userns_fd < 0) break;
    auto idmap = IdmapFor(m.owner_uid, m.owner_gid, plan->switch_user ? plan->uid : 0,
                          plan->switch_user ? plan->gid : 0);
    if (!idmap.ok()) return idmap.status();
    m.idmap_fd = *idmap;
  }
  if (plan->output_limit > kMaxOutputLimit) {
    plan->warnings.push_back(StrCat("output_limit ", plan->output_limit, " exceeds the shim's ",
                                    "maximum of ", kMaxOutputLimit, " bytes per stream; capped"));
    plan->output_limit = kMaxOutputLimit;
  }
  if (!plan->join_task.empty()) {
    auto target = tasks_.find(plan->join_task);
    if (target == tasks_.end() || target->second->exited) {
      return absl::FailedPreconditionError(
          StrCat("task \"", plan->join_task, "\" is not running in this zone: nothing to join"));
    }
    plan->join_pidfd = target->second->pidfd.get();
    // And may write where it may (Landlock): a container's writable root and layers.
    plan->root_writable = target->second->root_writable;
    plan->overlay_dirs = target->second->overlay_dirs;
    plan->scratch_dirs = target->second->scratch_dirs;
    // An exec has the ids of the task it joins: one that kept the host's (a root that cannot
    // be idmapped) would show the exec its own files as nobody's.
    if (target->second->host_ids && plan->userns_fd >= 0) {
      plan->userns_fd = -1;
      plan->userns_first = 0;
      plan->warnings.push_back(StrCat("zone.userns: task ", plan->join_task,
                                      " has the host's ids, and so does this process joining it"));
    }
  }
  auto task = std::make_unique<Task>();
  if (!plan->log_path.empty()) {
    auto log = LogWriter::Open(plan->log_path, plan->log_max_bytes);
    if (!log.ok()) return log.status();
    task->log = *std::move(log);
  }
  if (!plan->output_dir.empty()) {
    auto files = OpenOutputFiles(plan->output_dir);
    if (!files.ok()) return files.status();
    task->out_file = std::move(files->out);
    task->err_file = std::move(files->err);
    task->output_dir = plan->output_dir;
  }
  if (!spec->output_spool_dir.empty()) {
    if (spec->output_spool_dir[0] != '/') {
      return absl::InvalidArgumentError("task.output_spool_dir must be an absolute path");
    }
    auto spool = OutputSpool::Open(spec->output_spool_dir, plan->task_id);
    if (!spool.ok()) return spool.status();
    task->spool = *std::move(spool);
  }
  task->result.task_id = plan->task_id;
  task->result.started_at_ns = RealtimeNs();
  int64_t started_ms = MonotonicMs();
  trace.Mark("files");
  absl::StatusOr<LaunchedTask> launched = absl::UnknownError("not launched");
  if (prepared_) {
    launched = LaunchTask(*plan, &*prepared_, &params);
    // Used, or unfit for this task: a prepared process serves no other task.
    prepared_.reset();
  } else {
    launched = LaunchTask(*plan);
  }
  trace.Mark("launch");
  if (!launched.ok()) {
    Log(StrCat("task ", plan->task_id, ": ", ToStd(launched.status().message())));
    return launched.status();
  }
  task->serial = next_serial_++;
  task->pid = launched->pid;
  task->pidfd = std::move(launched->pidfd);
  task->status = std::move(launched->status_read);
  task->out = std::move(launched->stdout_read);
  task->err = std::move(launched->stderr_read);
  task->stdin_write = std::move(launched->stdin_write);
  task->tty_master = std::move(launched->tty_master);
  task->output_limit = plan->output_limit;
  task->host_ids = plan->userns_fd < 0;
  task->root_writable = plan->root_writable;
  task->overlay_dirs = plan->overlay_dirs;
  task->scratch_dirs = plan->scratch_dirs;
  task->result.pid = launched->pid;
  task->result.start_error = std::move(launched->start_error);
  task->result.warnings = std::move(plan->warnings);
  task->result.layers = std::move(plan->layers);
  task->pidns_ino = PidNamespaceInode(task->pid);
  task->cgroup_id = CgroupId(plan->cgroup_v2);
  task->listener = std::move(launched->seccomp_listener);
  if (plan->timeout_ms > 0) {
    // Bounded only so the sum cannot overflow: rauhad refuses timeouts past ~136 years.
    task->deadline_ms =
        started_ms + static_cast<int64_t>(std::min<uint64_t>(plan->timeout_ms, INT64_MAX / 4));
  }
  task->kill_after_ms = std::min<uint64_t>(plan->kill_after_ms, INT64_MAX / 4);
  if (!task->result.start_error.empty()) {
    Log(StrCat("task ", plan->task_id, " did not start: ", task->result.start_error));
  }
  Watch(task->pidfd.get(), Tag(kPidfd, task->serial), EPOLLIN);
  Watch(task->out.get(), Tag(kStdout, task->serial), EPOLLIN);
  if (task->err) Watch(task->err.get(), Tag(kStderr, task->serial), EPOLLIN);
  if (task->listener) Watch(task->listener.get(), Tag(kNotify, task->serial), EPOLLIN);
  json reply = {{"task_id", plan->task_id}, {"pid", task->pid}};
  tasks_by_serial_[task->serial] = task.get();
  tasks_.emplace(plan->task_id, std::move(task));
  return reply;
}

absl::StatusOr<json> Server::Prepare(const json& params) {
  if (shutting_down_) return absl::FailedPreconditionError("the shim is shutting down");
  auto v2 = params.find("cgroup_v2");
  auto v1 = params.find("cgroup_v1");
  if (v2 == params.end() || !v2->is_string() || v1 == params.end() || !v1->is_array()) {
    return absl::InvalidArgumentError(
        "prepare needs \"cgroup_v2\" (a string) and \"cgroup_v1\" (an array of strings)");
  }
  std::vector<std::string> v1_dirs;
  for (const auto& dir : *v1) {
    if (!dir.is_string()) return absl::InvalidArgumentError("cgroup_v1 holds a non-string");
    v1_dirs.push_back(dir.get<std::string>());
  }
  std::optional<std::vector<std::string>> seccomp_deny;
  if (auto deny = params.find("seccomp_deny"); deny != params.end()) {
    if (!deny->is_array()) return absl::InvalidArgumentError("seccomp_deny is not an array");
    seccomp_deny.emplace();
    for (const auto& name : *deny) {
      if (!name.is_string()) return absl::InvalidArgumentError("seccomp_deny holds a non-string");
      seccomp_deny->push_back(name.get<std::string>());
    }
  }
  // "root": what of the zone's policy shapes a task's root (TaskSpec's writable_paths,
  // devices, zone_address): the prepared process builds that root ahead (root_ahead.h).
  std::optional<TaskSpec> root_spec;
  if (auto root = params.find("root"); root != params.end()) {
    if (!root->is_object()) return absl::InvalidArgumentError("root is not an object");
    // Planned as a task of the zone with the request's part left out (no command, no mounts).
    json fields = {{"task_id", "root-ahead"}, {"argv", {"/bin/true"}}, {"cgroup_v2", *v2},
                   {"cgroup_v1", *v1},        {"seccomp", false},      {"landlock", false}};
    for (const char* key : {"writable_paths", "devices", "zone_address"}) {
      if (auto f = root->find(key); f != root->end()) fields[key] = *f;
    }
    auto spec = TaskSpecFromJson(fields);
    if (!spec.ok()) return Annotate(spec.status(), "prepare's root");
    root_spec = *std::move(spec);
  }
  prepared_.reset();
  SpanTrace trace("rauha-shim", "prepare");
  if (seccomp_deny) {
    // Compiled into the process-wide cache (BuildSeccompProgram) before the clone, so the
    // task's start finds it in both planners: this process's and the prepared one's (a copy
    // of this one). A list that does not compile fails that start, which says why.
    (void)BuildSeccompProgram(*seccomp_deny);
    trace.Mark("seccomp");
  }
  std::shared_ptr<const TaskPlan> root_plan;
  if (root_spec) {
    auto plan = PlanTask(*root_spec, zone_);
    if (!plan.ok()) return Annotate(plan.status(), "prepare's root");
    root_plan = std::make_shared<const TaskPlan>(*std::move(plan));
  }
  auto prepared =
      PrepareTask(v2->get<std::string>(), v1_dirs, zone_, kPrepareTimeoutMs, std::move(root_plan));
  trace.Mark(root_spec ? "process_and_root" : "process");
  if (!prepared.ok()) return prepared.status();
  json reply = {{"pid", prepared->pid}};
  prepared_ = *std::move(prepared);
  return reply;
}

absl::StatusOr<json> Server::Kill(const json& params) {
  auto task = FindTask(params);
  if (!task.ok()) return task.status();
  auto sig = ParseSignal(params);
  if (!sig.ok()) return sig.status();
  Task& t = **task;
  if (t.exited) return json::object();  // already over: nothing to signal
  if (PidfdSendSignal(t.pidfd.get(), *sig) < 0 && errno != ESRCH) {
    return ErrnoStatus(errno, StrCat("kill task ", t.result.task_id));
  }
  t.result.killed = true;
  return json::object();
}

absl::StatusOr<json> Server::Forget(const json& params) {
  auto task = FindTask(params);
  if (!task.ok()) return task.status();
  if (!(*task)->ended) {
    return absl::FailedPreconditionError(StrCat("task \"", (*task)->result.task_id,
                                                "\" is still running; kill or wait for it first"));
  }
  tasks_by_serial_.erase((*task)->serial);
  tasks_.erase((*task)->result.task_id);
  return json::object();
}

// The pidfd is the task's init: the workload's own status and rusage come from the init's
// report; an init that wrote none was SIGKILLed (and the whole namespace with it).
void Server::OnTaskExit(Task& t) {
  int status = 0;
  rusage ru{};
  pid_t r = ::wait4(t.pid, &status, WNOHANG, &ru);
  if (r == 0) return;
  Unwatch(t.pidfd.get());
  t.pidfd.reset();
  t.exited = true;
  t.result.finished_at_ns = RealtimeNs();
  std::optional<InitReport> report = ReadInitReport(t.status.get());
  t.status.reset();
  if (r > 0) {
    // The init's own and that of all it reaped: kept when it could not report.
    t.result.cpu_user_us = Micros(ru.ru_utime);
    t.result.cpu_system_us = Micros(ru.ru_stime);
    t.result.max_rss_kb = static_cast<uint64_t>(ru.ru_maxrss);
  }
  if (r < 0) {
    Log(StrCat("wait4 task ", t.result.task_id, ": ", strerror(errno)));
  } else if (!t.result.start_error.empty()) {
    // A task that never ran has no exit code of its own: the 127 is the shim's.
  } else if (report) {
    t.result.cpu_user_us = report->cpu_user_us;
    t.result.cpu_system_us = report->cpu_system_us;
    t.result.max_rss_kb = report->max_rss_kb;
    if (WIFEXITED(report->wait_status)) t.result.exit_code = WEXITSTATUS(report->wait_status);
    if (WIFSIGNALED(report->wait_status)) t.result.signal = WTERMSIG(report->wait_status);
  } else {
    // Only SIGKILL stops an init before it reports (a kill request, the timeout, the OOM
    // killer), and with it everything in the namespace.
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
      Log(StrCat("task ", t.result.task_id, ": its init ended with wait status ", status,
                 " and no report; treating it as SIGKILL"));
    }
    t.result.signal = SIGKILL;
  }
  t.drain_deadline_ms = MonotonicMs() + kDrainMs;
  if (!t.out && !t.err) FinishTask(t);
}

void Server::OnTaskOutput(Task& t, bool is_stderr) {
  UniqueFd& fd = is_stderr ? t.err : t.out;
  std::string& data = is_stderr ? t.result.stderr_data : t.result.stdout_data;
  bool& truncated = is_stderr ? t.result.stderr_truncated : t.result.stdout_truncated;
  char buf[kReadChunk];
  // Bounded per wake-up so one chatty task cannot starve the others.
  for (int round = 0; round < 16 && fd; ++round) {
    if (t.output_paused) return;  // (an event of this wake-up, from before the pause)
    if (PacedStreamerBehind(t)) {
      PauseOutput(t, true);
      return;
    }
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      Unwatch(fd.get());
      fd.reset();
      break;
    }
    UniqueFd& file = is_stderr ? t.err_file : t.out_file;
    std::string_view chunk(buf, static_cast<size_t>(n));
    if (file) WriteOutputFile(t, file, is_stderr, chunk);
    if (t.log) t.log->Write(is_stderr, chunk, RealtimeNs());
    if (!t.streamers.empty()) SendOutput(t, is_stderr, chunk);
    size_t room = data.size() < t.output_limit ? t.output_limit - data.size() : 0;
    size_t keep = std::min(room, static_cast<size_t>(n));
    data.append(buf, keep);
    if (keep < static_cast<size_t>(n)) truncated = true;
    if (keep > 0) {
      if (auto st = t.spool.Append(is_stderr, std::string_view(buf, keep)); !st.ok()) {
        Log(StrCat("task ", t.result.task_id, ": ", ToStd(st.message()),
                   "; its output would be lost with this shim"));
      }
    }
  }
  if (t.exited && !t.out && !t.err) FinishTask(t);
}

void Server::WriteOutputFile(Task& t, UniqueFd& file, bool is_stderr, std::string_view data) {
  while (!data.empty()) {
    ssize_t w = ::write(file.get(), data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      // A full disk must not stop the task or lose the result: the file stays incomplete.
      std::string what = StrCat(t.output_dir, "/", is_stderr ? "stderr" : "stdout");
      t.result.warnings.push_back(StrCat("writing ", what, ": ",
                                         w < 0 ? strerror(errno) : "wrote nothing",
                                         "; the file is incomplete"));
      Log(StrCat("task ", t.result.task_id, ": ", t.result.warnings.back()));
      file.reset();
      return;
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
}

void Server::OnNotification(Task& t, uint32_t events) {
  for (int round = 0; round < kNotificationsPerWake && t.listener; ++round) {
    if (!NotificationPending(t.listener.get())) {
      // No caller left in the filter: nothing will ever arrive (and RECV would block).
      if (events & (EPOLLHUP | EPOLLERR)) CloseListener(t);
      return;
    }
    auto denial = AnswerNotification(t.listener.get());
    if (!denial.ok()) {
      Log(StrCat("task ", t.result.task_id, ": ", ToStd(denial.status().message()),
                 "; no longer watching its seccomp notifications"));
      CloseListener(t);
      return;
    }
    if (*denial) RecordDenial(t, **denial);
  }
}

void Server::CloseListener(Task& t) {
  if (!t.listener) return;
  Unwatch(t.listener.get());
  t.listener.reset();
}

void Server::RecordDenial(Task& t, const SeccompDenial& d) {
  EnforcementEvent e;
  e.time_ns = RealtimeNs();
  e.zone_id = options_.zone_id;
  e.cgroup_id = t.cgroup_id;
  e.pidns_ino = t.pidns_ino;
  e.pid = d.pid;
  e.comm = d.comm;
  e.layer = "seccomp";
  e.hook = "seccomp";
  e.action = "syscall";
  e.decision = "deny";
  e.object = d.syscall;
  if (d.syscall == "clone") {
    char flags[32];
    std::snprintf(flags, sizeof(flags), "%#llx", static_cast<unsigned long long>(d.arg0));
    e.message = StrCat("clone with namespace flags (", flags,
                       ") refused by seccomp (namespace creation is denied)");
  } else {
    e.message = StrCat(d.syscall, " refused by seccomp (the zone's deny list)");
  }
  if (!t.waiters.empty() || !t.paced.empty()) {
    auto frame = frame::Encode(MakeEventFrame(t.result.task_id, e));
    if (frame.ok()) {
      // Once per connection, however many waits for this task it has pending. A paced
      // streamer gets every one, from the task's start (its "wait" may not have come yet).
      std::vector<uint64_t> sent;
      std::vector<uint64_t> conns = t.paced;
      for (const auto& [conn, id] : t.waiters) conns.push_back(conn);
      for (uint64_t conn : conns) {
        if (std::find(sent.begin(), sent.end(), conn) != sent.end()) continue;
        sent.push_back(conn);
        auto it = conns_.find(conn);
        const bool paced = std::find(t.paced.begin(), t.paced.end(), conn) != t.paced.end();
        if (it == conns_.end() || (!paced && it->second->out.size() > kMaxLiveBacklog)) continue;
        it->second->out += *frame;
        Flush(*it->second);
      }
    }
  }
  if (t.result.enforcement_events.size() < kMaxTaskEvents) {
    t.result.enforcement_events.push_back(std::move(e));
  } else {
    ++t.result.enforcement_events_lost;
  }
}

void Server::FinishTask(Task& t) {
  if (t.ended) return;
  // Whatever is still queued was asked by a process killed while it waited: its syscall never
  // ran, but it was attempted and refused.
  if (t.listener) OnNotification(t, 0);
  CloseListener(t);
  for (UniqueFd* fd : {&t.out, &t.err, &t.pidfd}) {
    if (*fd) {
      Unwatch(fd->get());
      fd->reset();
    }
  }
  t.out_file.reset();
  t.err_file.reset();
  if (t.log) {
    t.log->Flush(RealtimeNs());
    if (!t.log->error().empty()) {
      t.result.warnings.push_back(StrCat(t.log->error(), "; the log is incomplete"));
    }
    t.log.reset();
  }
  if (t.stdin_watched) Unwatch(t.stdin_write.get());
  t.stdin_write.reset();
  t.tty_master.reset();
  t.stdin_pending.clear();
  t.streamers.clear();
  t.paced.clear();
  if (t.output_paused) {
    t.output_paused = false;
    --paused_tasks_;
  }
  if (t.result.finished_at_ns == 0) t.result.finished_at_ns = RealtimeNs();
  t.ended = true;
  t.deadline_ms = 0;
  t.kill_deadline_ms = 0;
  t.drain_deadline_ms = 0;
  auto waiters = std::move(t.waiters);
  t.waiters.clear();
  json result = ToJson(t.result);
  for (const auto& [conn, id] : waiters) Reply(conn, id, result);
}

void Server::CheckDeadlines() {
  int64_t now = MonotonicMs();
  for (auto& [id, task] : tasks_) {
    Task& t = *task;
    if (t.ended) continue;
    if (!t.exited && t.deadline_ms != 0 && now >= t.deadline_ms) {
      t.deadline_ms = 0;
      t.result.timed_out = true;
      if (t.kill_after_ms == 0 || TerminateAll(t.pidfd.get()) < 0) {
        PidfdSendSignal(t.pidfd.get(), SIGKILL);
      } else {
        t.kill_deadline_ms = now + static_cast<int64_t>(t.kill_after_ms);
      }
    }
    if (!t.exited && t.kill_deadline_ms != 0 && now >= t.kill_deadline_ms) {
      t.kill_deadline_ms = 0;
      t.result.killed_after_grace = true;
      PidfdSendSignal(t.pidfd.get(), SIGKILL);
    }
    if (t.exited && !t.output_paused && now >= t.drain_deadline_ms) {
      Log(StrCat("task ", t.result.task_id, ": output still open ", kDrainMs,
                 " ms after exit; closing it"));
      FinishTask(t);
    }
  }
}

int Server::NextTimeoutMs() const {
  int64_t next = INT64_MAX;
  for (const auto& [id, t] : tasks_) {
    if (t->ended) continue;
    if (!t->exited && t->deadline_ms != 0) next = std::min(next, t->deadline_ms);
    if (!t->exited && t->kill_deadline_ms != 0) next = std::min(next, t->kill_deadline_ms);
    if (t->exited && !t->output_paused) next = std::min(next, t->drain_deadline_ms);
  }
  if (shutting_down_) next = std::min(next, shutdown_deadline_ms_);
  if (next == INT64_MAX) return -1;
  int64_t wait = next - MonotonicMs();
  return wait <= 0 ? 0 : static_cast<int>(std::min<int64_t>(wait, INT32_MAX));
}

void Server::BeginShutdown(uint64_t conn, uint64_t id) {
  if (conn != 0) shutdown_replies_.emplace_back(conn, id);
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_deadline_ms_ = MonotonicMs() + kShutdownWaitMs;
  prepared_.reset();  // killed and reaped: it is in the zone's cgroups, which rauhad removes next
  for (auto& [task_id, t] : tasks_) {
    if (t->exited) continue;
    PidfdSendSignal(t->pidfd.get(), SIGKILL);
    t->result.killed = true;
  }
}

bool Server::ShutdownComplete() {
  bool all_ended = std::all_of(tasks_.begin(), tasks_.end(),
                               [](const auto& entry) { return entry.second->ended; });
  if (!all_ended && MonotonicMs() < shutdown_deadline_ms_) return false;
  for (auto& [task_id, t] : tasks_) {
    if (!t->ended) {
      Log(StrCat("task ", task_id, " did not end within ", kShutdownWaitMs, " ms of SIGKILL"));
      FinishTask(*t);
    }
  }
  for (const auto& [conn, id] : shutdown_replies_) Reply(conn, id, json::object());
  // Deliver what is queued (the shutdown replies, late results) before the process exits.
  int64_t deadline = MonotonicMs() + 1000;
  for (auto& [serial, c] : conns_) {
    while (!c->out.empty() && MonotonicMs() < deadline) {
      pollfd p{c->fd.get(), POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(deadline - MonotonicMs())) <= 0) break;
      Flush(*c);
    }
  }
  return true;
}

void Server::SendOutput(Task& t, bool is_stderr, std::string_view data) {
  auto frame = frame::Encode(
      json{{"task_id", t.result.task_id},
           {"stream", is_stderr ? "stderr" : "stdout"},
           {"output", absl::Base64Escape(absl::string_view(data.data(), data.size()))}});
  if (!frame.ok()) return;
  for (uint64_t conn : t.streamers) {
    auto it = conns_.find(conn);
    if (it == conns_.end()) continue;
    const bool paced = std::find(t.paced.begin(), t.paced.end(), conn) != t.paced.end();
    if (!paced && it->second->out.size() > kMaxLiveBacklog) continue;
    it->second->out += *frame;
    Flush(*it->second);
  }
}

bool Server::PacedStreamerBehind(const Task& t) const {
  for (uint64_t conn : t.paced) {
    auto it = conns_.find(conn);
    if (it != conns_.end() && it->second->out.size() > kMaxLiveBacklog) return true;
  }
  return false;
}

void Server::PauseOutput(Task& t, bool pause) {
  if (t.output_paused == pause) return;
  t.output_paused = pause;
  // Removed from the epoll set rather than modified to no events: a pipe whose writer is gone
  // reports EPOLLHUP whatever was asked, and the loop would spin.
  for (auto [fd, kind] : {std::pair{&t.out, kStdout}, std::pair{&t.err, kStderr}}) {
    if (!*fd) continue;
    if (pause) {
      Unwatch(fd->get());
    } else {
      Watch(fd->get(), Tag(kind, t.serial), EPOLLIN);
    }
  }
  paused_tasks_ += pause ? 1 : -1;
  // The drain bound after an exit counts from when the output can flow again.
  if (!pause && t.exited) t.drain_deadline_ms = MonotonicMs() + kDrainMs;
}

void Server::ResumePacedOutput() {
  if (paused_tasks_ == 0) return;
  for (auto& [id, task] : tasks_) {
    if (task->output_paused && !PacedStreamerBehind(*task)) PauseOutput(*task, false);
  }
}

absl::StatusOr<json> Server::Stdin(const json& params) {
  auto task = FindTask(params);
  if (!task.ok()) return task.status();
  Task& t = **task;
  if (!t.stdin_write || t.stdin_eof) {
    return absl::FailedPreconditionError(StrCat(
        "task \"", t.result.task_id, "\" has no open stdin (start it with stdin_pipe or tty)"));
  }
  std::string data;
  auto it = params.find("data_base64");
  if (it != params.end()) {
    if (!it->is_string() || !absl::Base64Unescape(it->get<std::string>(), &data)) {
      return absl::InvalidArgumentError("stdin: \"data_base64\" must be a base64 string");
    }
  }
  if (t.stdin_pending.size() + data.size() > kMaxStdinBacklog) {
    return absl::ResourceExhaustedError(StrCat("task \"", t.result.task_id, "\" has ",
                                               t.stdin_pending.size(),
                                               " bytes of stdin it has not read yet"));
  }
  t.stdin_pending += data;
  auto eof = params.find("eof");
  // A terminal has no end of input of its own: closing it would hang up the session.
  if (eof != params.end() && eof->is_boolean() && eof->get<bool>() && !t.tty_master) {
    t.stdin_eof = true;
  }
  FlushStdin(t);
  return json::object();
}

void Server::FlushStdin(Task& t) {
  while (t.stdin_write && !t.stdin_pending.empty()) {
    ssize_t n = ::write(t.stdin_write.get(), t.stdin_pending.data(), t.stdin_pending.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      // The reader is gone (EPIPE): what is left can never be read.
      t.stdin_pending.clear();
      t.stdin_eof = true;
      break;
    }
    t.stdin_pending.erase(0, static_cast<size_t>(n));
  }
  bool want = t.stdin_write && !t.stdin_pending.empty();
  if (want && !t.stdin_watched) {
    Watch(t.stdin_write.get(), Tag(kStdin, t.serial), EPOLLOUT);
    t.stdin_watched = true;
  } else if (!want && t.stdin_watched) {
    Unwatch(t.stdin_write.get());
    t.stdin_watched = false;
  }
  if (t.stdin_pending.empty() && t.stdin_eof && t.stdin_write) t.stdin_write.reset();
}

absl::StatusOr<json> Server::Resize(const json& params) {
  auto task = FindTask(params);
  if (!task.ok()) return task.status();
  Task& t = **task;
  if (!t.tty_master) {
    return absl::FailedPreconditionError(
        StrCat("task \"", t.result.task_id, "\" has no terminal to resize"));
  }
  auto rows = params.find("rows");
  auto cols = params.find("cols");
  if (rows == params.end() || cols == params.end() || !rows->is_number_unsigned() ||
      !cols->is_number_unsigned() || rows->get<uint64_t>() > 0xFFFF ||
      cols->get<uint64_t>() > 0xFFFF) {
    return absl::InvalidArgumentError("resize: \"rows\" and \"cols\" must be 0 to 65535");
  }
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(rows->get<uint64_t>());
  ws.ws_col = static_cast<unsigned short>(cols->get<uint64_t>());
  if (::ioctl(t.tty_master.get(), TIOCSWINSZ, &ws) < 0) {
    return ErrnoStatus(errno, StrCat("resize the terminal of task ", t.result.task_id));
  }
  return json::object();
}

}  // namespace rauha::shim
