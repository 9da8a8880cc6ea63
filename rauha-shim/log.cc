#include "rauha-shim/log.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace rauha::shim {
namespace {

int log_fd = 2;
char zone_name[64] = "";

}  // namespace

bool OpenLog(std::string_view path, std::string_view zone) {
  size_t n = zone.copy(zone_name, sizeof(zone_name) - 1);
  zone_name[n] = '\0';
  if (path.empty()) return true;
  std::string p(path);
  int fd = ::open(p.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  log_fd = fd;
  return true;
}

void Log(std::string_view message) {
  char prefix[160];
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  size_t len = strftime(prefix, sizeof(prefix), "%Y-%m-%dT%H:%M:%S", &t);
  int more = snprintf(prefix + len, sizeof(prefix) - len,
                      ".%03ldZ rauha-shim[%s]: ", ts.tv_nsec / 1000000, zone_name);
  if (more > 0) len += static_cast<size_t>(more);
  if (len >= sizeof(prefix)) len = sizeof(prefix) - 1;
  iovec iov[3] = {{prefix, len},
                  {const_cast<char*>(message.data()), message.size()},
                  {const_cast<char*>("\n"), 1}};
  ssize_t ignored = ::writev(log_fd, iov, 3);
  (void)ignored;
}

}  // namespace rauha::shim
