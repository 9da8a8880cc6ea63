// Helpers of the eBPF enforcer tests (tests/ebpf): fake zones are cgroup v2 directories below
// this process's own cgroup, probes run in forked children.
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "rauha-common/cgroup_layout.h"
#include "rauha-common/enforcement_event.h"
#include "rauha-common/errors.h"

namespace rauha::bpf {

inline bool RequireAll() {
  const char* v = std::getenv("RAUHA_TEST_REQUIRE_ALL");
  return v != nullptr && std::string(v) == "1";
}

#define SKIP_OR_FAIL(reason)                                               \
  do {                                                                     \
    if (RequireAll()) FAIL() << (reason) << " (RAUHA_TEST_REQUIRE_ALL=1)"; \
    GTEST_SKIP() << (reason);                                              \
  } while (0)

// Events the sink received, by zone.
class EventLog {
 public:
  void Add(EnforcementEvent e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  std::vector<EnforcementEvent> Take(const std::string& zone) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<EnforcementEvent> out, rest;
    for (auto& e : events_) (e.zone_id == zone ? out : rest).push_back(std::move(e));
    events_ = std::move(rest);
    return out;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_.size();
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    events_.clear();
  }

 private:
  std::mutex mu_;
  std::vector<EnforcementEvent> events_;
};

// The directory of this process's own cgroup v2 (where test zones are created below).
inline absl::StatusOr<std::string> OwnV2Dir() {
  RAUHA_ASSIGN_OR_RETURN(CgroupLayout layout, DetectCgroupLayout());
  if (layout.unified_mount.empty())
    return absl::FailedPreconditionError("no cgroup2 mount: the eBPF enforcer needs one");
  RAUHA_ASSIGN_OR_RETURN(std::string own, OwnCgroupPath(""));
  return CgroupDir(layout.unified_mount, layout.unified_root, own);
}

// BPF links attached to cgroup `cgroup_id`, whoever made them.
inline int CountCgroupLinks(uint64_t cgroup_id) {
  uint32_t id = 0;
  int n = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    int fd = bpf_link_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_LINK_TYPE_CGROUP &&
        info.cgroup.cgroup_id == cgroup_id)
      ++n;
    ::close(fd);
  }
  return n;
}

// BPF objects (programs, maps, links, BTF) this process holds: they live as long as an fd.
inline int CountOwnBpfFds() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    char link[64], target[128] = {};
    std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t len = ::readlink(link, target, sizeof(target) - 1);
    if (len > 0 && std::strncmp(target, "anon_inode:bpf", 14) == 0) ++n;
  }
  return n;
}

// Runs `fn` in a forked child (after joining `cgroup_procs` unless empty) and returns what it
// returned: 0 for success, else the errno of the operation under test. 255: setup failed.
inline int RunChild(const std::string& cgroup_procs, const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid < 0) return 254;
  if (pid == 0) {
    if (!cgroup_procs.empty()) {
      int fd = ::open(cgroup_procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(255);
      ::close(fd);
    }
    ::_exit(fn() & 0xff);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 253;
}

inline int Errno(int rc) { return rc < 0 ? errno : 0; }

// Arms the LSM checks the way the shim does right before exec.
inline int Arm() { return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? 255 : 0; }

inline int ConnectTo(int family, const char* addr, uint16_t port, int type = SOCK_STREAM) {
  int s = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return 255;
  int rc;
  if (family == AF_INET) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, addr, &sa.sin_addr);
    rc = Errno(::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)));
  } else {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    inet_pton(AF_INET6, addr, &sa.sin6_addr);
    rc = Errno(::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)));
  }
  ::close(s);
  return rc == EINPROGRESS ? 0 : rc;
}

}  // namespace rauha::bpf
