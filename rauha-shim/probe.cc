#include "rauha-shim/probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <string_view>

#include "nlohmann/json.hpp"
#include "rauha-common/fd.h"
#include "rauha-common/shim_protocol.h"
#include "rauha-common/strcat.h"
#include "rauha-shim/process_title.h"

namespace rauha::shim {
namespace {

constexpr int kProbeTimeoutMs = 5000;
constexpr std::initializer_list<int> kRefusals = {EPERM, EACCES, ENOSYS};

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : StrCat("errno ", err);
}

bool IsIn(int err, std::initializer_list<int> set) {
  for (int e : set) {
    if (e == err) return true;
  }
  return false;
}

// One attempt's outcome: `rc` < 0 with `err` is a failure; `what` names the call.
ProbeResult Outcome(std::string_view name, long rc, int err, std::string_view what,
                    std::initializer_list<int> refusals = kRefusals,
                    std::string_view undone = "undone") {
  ProbeResult p;
  p.name = std::string(name);
  if (rc >= 0) {
    p.detail = StrCat(what, " succeeded (", undone, ")");
    return p;
  }
  p.errno_name = ErrnoName(err);
  if (IsIn(err, refusals)) {
    p.refused = true;
    p.detail = StrCat(what, " failed: ", strerror(err));
  } else {
    p.detail = StrCat(what, " failed with ", p.errno_name, " (", strerror(err),
                      "), which is not a refusal: the call got past the permission checks");
  }
  return p;
}

ProbeResult Mount() {
  char dir[] = "/tmp/.rauha-probe-XXXXXX";
  bool made = ::mkdtemp(dir) != nullptr;
  const char* target = made ? dir : "/tmp";
  long rc = ::mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k");
  int err = errno;
  if (rc == 0) ::umount2(target, MNT_DETACH);
  if (made) ::rmdir(dir);
  return Outcome("mount", rc, err, StrCat("mount(tmpfs, ", target, ")"), kRefusals, "unmounted");
}

ProbeResult Namespace() {
  // Runs in its own process: a namespace it gets dies with it.
  long rc = ::unshare(CLONE_NEWUSER | CLONE_NEWNS);
  return Outcome("namespace", rc, errno, "unshare(CLONE_NEWUSER|CLONE_NEWNS)", kRefusals,
                 "the new namespaces died with the probe's process");
}

ProbeResult Setns() {
  UniqueFd fd(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!fd) return Outcome("setns", -1, errno, "open /proc/self/ns/net");
  // Its own network namespace: if this succeeds, nothing changes, but setns is reachable.
  long rc = ::setns(fd.get(), CLONE_NEWNET);
  return Outcome("setns", rc, errno, "setns(/proc/self/ns/net, CLONE_NEWNET)", kRefusals,
                 "it rejoined its own network namespace");
}

ProbeResult Bpf() {
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  long rc = ::syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
  int err = errno;
  if (rc >= 0) ::close(static_cast<int>(rc));
  return Outcome("bpf", rc, err, "bpf(BPF_MAP_CREATE, array)", kRefusals, "map closed");
}

ProbeResult PerfEventOpen() {
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.disabled = 1;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  long rc = ::syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
  int err = errno;
  if (rc >= 0) ::close(static_cast<int>(rc));
  return Outcome("perf_event_open", rc, err, "perf_event_open(software cpu-clock, self)", kRefusals,
                 "closed unused");
}

ProbeResult KernelModule() {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!fd) return Outcome("kernel_module", -1, errno, "open /dev/null");
  long rc = ::syscall(SYS_finit_module, fd.get(), "", 0);
  return Outcome("kernel_module", rc, errno, "finit_module(/dev/null)", kRefusals,
                 "/dev/null cannot hold a module");
}

ProbeResult Keyring() {
  long rc = ::syscall(SYS_add_key, "user", "rauha-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
  int err = errno;
  if (rc >= 0) ::syscall(SYS_keyctl, KEYCTL_INVALIDATE, rc);
  return Outcome("keyring", rc, err, "add_key(user, process keyring)", kRefusals,
                 "key invalidated");
}

ProbeResult FilesystemWrite() {
  ProbeResult p;
  p.name = "filesystem.write";
  p.refused = true;
  for (const char* path : {"/etc/.rauha-probe", "/usr/.rauha-probe"}) {
    int fd = ::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int err = errno;
    if (fd >= 0) {
      ::close(fd);
      ::unlink(path);
    }
    ProbeResult one = Outcome(p.name, fd, err, StrCat("create ", path),
                              {EPERM, EACCES, EROFS, ENOSYS}, "removed again");
    if (!one.refused) {
      p.refused = false;
      p.errno_name = one.errno_name;
    } else if (p.refused && p.errno_name.empty()) {
      p.errno_name = one.errno_name;
    }
    p.detail = p.detail.empty() ? one.detail : StrCat(p.detail, "; ", one.detail);
  }
  return p;
}

ProbeResult SignalInit() {
  // SIGCONT to a running process changes nothing, should it be delivered.
  long rc = ::kill(1, SIGCONT);
  return Outcome("signal.init", rc, errno, "kill(1, SIGCONT)", kRefusals,
                 "SIGCONT to a running init has no effect");
}

ProbeResult PtraceInit() {
  // SEIZE makes ATTACH's permission check without stopping the init; the attachment ends
  // when the probe's process exits.
  long rc = ::ptrace(PTRACE_SEIZE, 1, nullptr, nullptr);
  return Outcome("ptrace.init", rc, errno, "ptrace(PTRACE_SEIZE, 1)", kRefusals,
                 "detached when the probe's process exited");
}

ProbeResult NetworkEgress() {
  constexpr std::string_view kName = "network.egress";
  const std::initializer_list<int> kNetRefusals = {EPERM, EACCES, ENOSYS, ENETUNREACH,
                                                   EHOSTUNREACH};
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Outcome(kName, -1, errno, "socket(AF_INET, SOCK_STREAM)", kNetRefusals);
  // One hop: a SYN that got out of a bridged zone dies in the host's forwarding (TTL exceeded)
  // instead of leaving the machine.
  int ttl = 1;
  if (::setsockopt(fd.get(), IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) < 0) {
    return Outcome(kName, -1, errno, "setsockopt(IP_TTL, 1)", {});
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(9);
  ::inet_pton(AF_INET, "192.0.2.1", &addr.sin_addr);
  const char* what = "connect(192.0.2.1:9/tcp)";
  long rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc == 0) return Outcome(kName, 0, 0, what, kNetRefusals, "closed");
  if (errno != EINPROGRESS) return Outcome(kName, -1, errno, what, kNetRefusals);
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, 1000) <= 0) {
    ProbeResult r;
    r.name = std::string(kName);
    r.detail = StrCat(what, " still in progress after 1 s: a SYN left the task's network ",
                      "namespace and nothing refused it (dropped or unanswered)");
    return r;
  }
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return Outcome(kName, err == 0 ? 0 : -1, err, what, kNetRefusals, "closed");
}

ProbeResult RawSocket() {
  long rc = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  int err = errno;
  if (rc >= 0) ::close(static_cast<int>(rc));
  return Outcome("network.raw_socket", rc, err, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)",
                 kRefusals, "closed unused");
}

ProbeResult SysctlWrite() {
  const char* path = "/proc/sys/kernel/domainname";
  long rc = ::open(path, O_WRONLY | O_CLOEXEC);
  int err = errno;
  if (rc >= 0) ::close(static_cast<int>(rc));
  return Outcome("sysctl.write", rc, err, StrCat("open ", path, " for writing"),
                 {EPERM, EACCES, EROFS, ENOSYS}, "closed, nothing written");
}

ProbeResult DeviceMknod() {
  std::string path = StrCat("/tmp/.rauha-probe-dev-", ::getpid());
  long rc = ::mknod(path.c_str(), S_IFCHR | 0600, makedev(1, 1));
  int err = errno;
  if (rc == 0) ::unlink(path.c_str());
  return Outcome("device.mknod", rc, err, StrCat("mknod ", path, " c 1:1"),
                 {EPERM, EACCES, EROFS, ENOSYS}, "removed again");
}

ProbeResult CgroupEscape() {
  ProbeResult p;
  p.name = "cgroup.escape";
  p.refused = true;
  bool all_missing = true;
  std::string details;
  for (const char* path :
       {"/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/unified/cgroup.procs",
        "/sys/fs/cgroup/memory/cgroup.procs", "/sys/fs/cgroup/pids/cgroup.procs"}) {
    int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    int err = errno;
    if (fd >= 0) ::close(fd);
    if (fd >= 0 || err != ENOENT) all_missing = false;
    ProbeResult one = Outcome(p.name, fd, err, StrCat("open ", path, " for writing"),
                              {EPERM, EACCES, EROFS, ENOSYS, ENOENT}, "closed, nothing written");
    if (!one.refused) p.refused = false;
    if (p.errno_name.empty() || !one.refused) p.errno_name = one.errno_name;
    details = details.empty() ? one.detail : StrCat(details, "; ", one.detail);
  }
  p.detail = all_missing
                 ? StrCat("not reachable: no cgroup filesystem in the task's root (", details, ")")
                 : details;
  return p;
}

struct Probe {
  const char* name;
  ProbeResult (*run)();
};

constexpr Probe kProbes[] = {
    {"mount", Mount},
    {"namespace", Namespace},
    {"setns", Setns},
    {"bpf", Bpf},
    {"perf_event_open", PerfEventOpen},
    {"kernel_module", KernelModule},
    {"keyring", Keyring},
    {"filesystem.write", FilesystemWrite},
    {"signal.init", SignalInit},
    {"ptrace.init", PtraceInit},
    {"network.egress", NetworkEgress},
    {"network.raw_socket", RawSocket},
    {"sysctl.write", SysctlWrite},
    {"device.mknod", DeviceMknod},
    {"cgroup.escape", CgroupEscape},
};

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Runs one probe in a forked process; its ProbeResult comes back as JSON on a pipe.
ProbeResult RunOne(const Probe& probe) {
  ProbeResult failed;
  failed.name = probe.name;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) {
    failed.detail = StrCat("the probe could not run: pipe2: ", strerror(errno));
    return failed;
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) {
    failed.detail = StrCat("the probe could not run: fork: ", strerror(errno));
    return failed;
  }
  if (pid == 0) {
    read_end.reset();
    std::string out =
        ToJson(probe.run()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string_view rest = out;
    while (!rest.empty()) {
      ssize_t n = ::write(write_end.get(), rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      rest.remove_prefix(static_cast<size_t>(n));
    }
    ::_exit(0);
  }
  write_end.reset();
  std::string got;
  int64_t deadline = NowMs() + kProbeTimeoutMs;
  bool timed_out = false;
  while (true) {
    int64_t left = deadline - NowMs();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_end.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    failed.detail = StrCat("the probe did not finish within ", kProbeTimeoutMs / 1000, " s");
    return failed;
  }
  auto parsed = ProbeResultsFromJson(StrCat("[", got, "]"));
  if (!parsed.ok() || parsed->size() != 1) {
    failed.detail = StrCat("the probe's process ended without a result (wait status ", status, ")");
    return failed;
  }
  return (*parsed)[0];
}

}  // namespace

const std::vector<std::string>& ProbeNames() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& p : kProbes) names.push_back(p.name);
    return names;
  }();
  return kNames;
}

void RunProbes(const std::vector<std::string>& skip) {
  // The events name this process (and its probe children) by comm.
  SetProcessTitle("rauha-probe");
  nlohmann::json out = nlohmann::json::array();
  for (const auto& probe : kProbes) {
    if (std::find(skip.begin(), skip.end(), probe.name) != skip.end()) {
      ProbeResult skipped;
      skipped.name = probe.name;
      skipped.skipped = true;
      skipped.detail = "not attempted: the zone's policy allows it";
      out.push_back(ToJson(skipped));
      continue;
    }
    out.push_back(ToJson(RunOne(probe)));
  }
  std::string text = out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t n = ::write(1, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(1);
    rest.remove_prefix(static_cast<size_t>(n));
  }
  ::_exit(0);
}

}  // namespace rauha::shim
