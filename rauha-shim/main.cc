// rauha-shim: holds one zone's namespaces and runs its tasks (see server.h for the loop and
// rauha-common/shim_protocol.h for the protocol). rauhad starts it; it reports "ready <pid>"
// or "error: <message>" on --ready-fd.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "rauha-common/hostname.h"
#include "rauha-common/strcat.h"
#include "rauha-shim/log.h"
#include "rauha-shim/options.h"
#include "rauha-shim/process_title.h"
#include "rauha-shim/server.h"
#include "rauha-shim/zone.h"

namespace {

void WriteAll(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

int StartupError(int ready_fd, std::string_view message) {
  rauha::shim::Log(rauha::StrCat("start-up failed: ", message));
  if (ready_fd >= 0) {
    WriteAll(ready_fd, rauha::StrCat("error: ", message, "\n"));
    ::close(ready_fd);
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rauha::shim;
  RememberArgvArea(argc, argv);
  int ready_fd = FindReadyFd(argc, argv);
  auto options = ParseOptions(argc, argv);
  if (!options.ok()) return StartupError(ready_fd, rauha::ToStd(options.status().message()));
  SetLogFile(options->log_path, options->zone_name);
  if (auto s = EnsureStateDir(options->state_dir); !s.ok()) {
    return StartupError(ready_fd, rauha::ToStd(s.message()));
  }
  // Listen before entering the zone's network namespace: a unix socket belongs to the
  // namespace it was created in, and /proc/net/unix inside the zone lists (with its host path)
  // every socket of the zone's namespace. Created here, the zone never sees it.
  auto listener = ListenUnix(options->socket_path);
  if (!listener.ok()) return StartupError(ready_fd, rauha::ToStd(listener.status().message()));
  auto userns = EnterZoneNamespaces(
      options->hostname.empty() ? rauha::ZoneHostname(options->zone_name) : options->hostname,
      options->isolated_network, options->userns_first, options->netns_path);
  if (!userns.ok()) return StartupError(ready_fd, rauha::ToStd(userns.status().message()));
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  rauha::UniqueFd signals(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signals) {
    return StartupError(ready_fd, rauha::StrCat("signalfd: ", std::strerror(errno)));
  }
  Server server(*options, std::move(*listener), std::move(signals), std::move(*userns));
  if (ready_fd >= 0) {
    WriteAll(ready_fd, rauha::StrCat("ready ", ::getpid(), "\n"));
    ::close(ready_fd);
  }
  int rc = server.Run();
  ::unlink(options->socket_path.c_str());
  // Succeeds only if nothing but the shim's scratch was there.
  ::rmdir(options->state_dir.c_str());
  // Only a failure is logged: a line at every start and exit made a log file per zone.
  if (rc != 0) Log(rauha::StrCat("exiting with status ", rc));
  return rc;
}
