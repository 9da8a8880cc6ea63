// seccomp user notifications: how the workload's listener reaches the shim, and how the shim
// answers one notification.
//
// The workload's process installs its filter with SECCOMP_FILTER_FLAG_NEW_LISTENER and sends
// the listener over a socketpair made before the task's clone (SCM_RIGHTS), before it execs.
// The shim watches the listener in its event loop and answers each denied syscall with EPERM.
// The syscall waits (killably) for that answer, so every denial that returned to the
// workload has been recorded. A shim that is slow delays the denied syscall only; a shim that
// is gone closes the listener, and from then on denied syscalls fail with ENOSYS instead of
// EPERM (the kernel's rule for a filter without a listener): still refused, but unrecorded.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha::shim {

// The workload's side: one SCM_RIGHTS message carrying `fd` on the connected socket `sock`.
absl::Status SendFd(int sock, int fd);

// The shim's side, non-blocking: the fd in the next message on `sock` (made close-on-exec),
// or an empty UniqueFd when nothing (or a message without an fd) is queued.
UniqueFd ReceiveFd(int sock);

struct SeccompDenial {
  uint32_t pid = 0;     // in the shim's pid namespace (the host's)
  std::string syscall;  // "unshare"; resolved with the notification's arch
  uint64_t arg0 = 0;    // clone's flags, for the message
  std::string comm;     // "" when the process was gone before it could be read
};

// When `listener` is readable: receives one notification, reads the caller's comm, answers
// EPERM. nullopt when there was nothing to receive (the caller was killed in between: the
// syscall never ran, nothing to record). An error means the listener is unusable (its
// filter's processes are all gone, or the fd is not a listener): stop watching it.
absl::StatusOr<std::optional<SeccompDenial>> AnswerNotification(int listener);

// Whether `fd` has a notification waiting (poll with timeout 0). RECV blocks when it has
// none, so the shim calls it only after this says yes.
bool NotificationPending(int fd);

}  // namespace rauha::shim
