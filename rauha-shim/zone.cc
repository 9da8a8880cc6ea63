#include "rauha-shim/zone.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/private_unix_listener.h"
#include "rauha-common/strcat.h"
#include "rauha-common/userns.h"

namespace rauha::shim {
namespace {

absl::Status BringLoopbackUp() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return ErrnoStatus(errno, "socket(AF_INET) to configure lo");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) < 0) return ErrnoStatus(errno, "SIOCGIFFLAGS lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) < 0) return ErrnoStatus(errno, "SIOCSIFFLAGS lo up");
  return absl::OkStatus();
}

// ICMP echo ("ping") sockets need no capability for the groups in this range. It is per
// network namespace and closed ("1 0") in a new one; opening it in the zone's own namespace lets
// ping work without CAP_NET_RAW, which the default policy does not grant. Never the host's.
// With the zone's own user namespace the range is exactly the zone's groups (host ids
// userns_first..+65535, which a task reads as "0 65535"): the shim writes host ids.
absl::Status OpenPingGroupRange(uint32_t userns_first) {
  const char* path = "/proc/sys/net/ipv4/ping_group_range";
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, StrCat("open ", path));
  const std::string kAllGroups = userns_first == 0
                                     ? std::string("0 2147483647")
                                     : StrCat(userns_first, " ", userns_first + (kZoneIdCount - 1));
  if (::write(fd.get(), kAllGroups.data(), kAllGroups.size()) !=
      static_cast<ssize_t>(kAllGroups.size())) {
    return ErrnoStatus(errno, StrCat("write ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<UniqueFd> EnterZoneNamespaces(const std::string& hostname, bool isolated_network,
                                             uint32_t userns_first, const std::string& netns_path) {
  // A given namespace is opened (and checked) before anything changes.
  UniqueFd given_netns;
  if (!netns_path.empty()) {
    given_netns.reset(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!given_netns) return ErrnoStatus(errno, StrCat("open network namespace ", netns_path));
    if (::ioctl(given_netns.get(), NS_GET_NSTYPE) != CLONE_NEWNET) {
      return absl::InvalidArgumentError(
          StrCat(netns_path, " is not a network namespace (a /proc/<pid>/ns/net or nsfs mount)"));
    }
  }
  bool new_netns = isolated_network && !given_netns;
  int flags = CLONE_NEWIPC | CLONE_NEWUTS | (new_netns ? CLONE_NEWNET : 0);
  UniqueFd userns;
  if (userns_first != 0) {
    std::vector<IdMapping> map = {{0, userns_first, kZoneIdCount}};
    auto ns = CreateUserNamespace(map, map, flags);
    if (!ns.ok()) return Annotate(ns.status(), "creating the zone's user namespace");
    // Joining a namespace owned by a child user namespace needs CAP_SYS_ADMIN over it, which
    // host root has; the shim's own credentials stay the host's.
    for (auto [fd, what] : {std::pair{ns->ipc.get(), "ipc"}, std::pair{ns->uts.get(), "uts"},
                            std::pair{ns->net.get(), "net"}}) {
      if (fd >= 0 && ::setns(fd, 0) < 0) {
        return ErrnoStatus(errno, StrCat("setns into the zone's ", what, " namespace"));
      }
    }
    userns = std::move(ns->user);
  } else if (::unshare(flags) < 0) {
    return ErrnoStatus(errno, new_netns ? "unshare(ipc, uts, net)" : "unshare(ipc, uts)");
  }
  if (given_netns && ::setns(given_netns.get(), CLONE_NEWNET) < 0) {
    return ErrnoStatus(errno, StrCat("setns into network namespace ", netns_path));
  }
  if (isolated_network) {
    RAUHA_RETURN_IF_ERROR(BringLoopbackUp());
    RAUHA_RETURN_IF_ERROR(OpenPingGroupRange(userns_first));
  }
  size_t len = hostname.size() > 64 ? 64 : hostname.size();
  if (::sethostname(hostname.data(), len) < 0) {
    return ErrnoStatus(errno, StrCat("sethostname ", hostname.substr(0, len)));
  }
  return userns;
}

absl::Status EnsureStateDir(const std::string& dir) {
  struct stat st;
  // rauhad made it: one stat, not a mkdir per component of the path.
  if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return absl::OkStatus();
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    bool last = pos == dir.size();
    if (::mkdir(prefix.c_str(), last ? 0700 : 0755) < 0 && errno != EEXIST) {
      return ErrnoStatus(errno, StrCat("mkdir ", prefix));
    }
  }
  if (::stat(dir.c_str(), &st) < 0) return ErrnoStatus(errno, StrCat("stat ", dir));
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(StrCat("state dir ", dir, " is not a directory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> ListenUnix(const std::string& path) {
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock) return ErrnoStatus(errno, "socket(AF_UNIX)");
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          StrCat("socket path ", path, " exists and is not a socket; remove it or choose another"));
    }
    ::unlink(path.c_str());
  }
  RAUHA_RETURN_IF_ERROR(BindPrivateAndListen(sock.get(), path));
  return sock;
}

}  // namespace rauha::shim
