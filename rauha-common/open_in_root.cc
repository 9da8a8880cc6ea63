#include "rauha-common/open_in_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace rauha {

int OpenInRoot(int root_fd, const char* path, int flags, bool cross_mounts) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (cross_mounts ? 0 : RESOLVE_NO_XDEV);
  long fd;
  do {
    // EAGAIN: a concurrent rename in the tree; the kernel asks to retry.
    fd = ::syscall(SYS_openat2, root_fd, path[0] ? path : ".", &how, sizeof(how));
  } while (fd < 0 && (errno == EAGAIN || errno == EINTR));
  return static_cast<int>(fd);
}

}  // namespace rauha
