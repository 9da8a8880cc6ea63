// Starting one task: clone3 into new mount and pid namespaces (and the zone's v2 cgroup),
// build the task's root in the child, drop privileges, fork the workload off the child (which
// stays as the namespace's init, init.h) and exec it. A failed step is reported on an
// O_CLOEXEC pipe ("<step>: <strerror>") and the process exits 127; EOF means exec succeeded.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "rauha-common/fd.h"
#include "rauha-shim/task_plan.h"

namespace rauha::shim {

struct PreparedTask;

struct LaunchedTask {
  pid_t pid = 0;  // the task's init, in the shim's pid namespace
  UniqueFd pidfd;
  UniqueFd status_read;  // non-blocking: the init's InitReport (init.h)
  UniqueFd stdout_read;  // non-blocking, close-on-exec
  UniqueFd stderr_read;  // empty with a tty (stdout_read then reads the terminal)
  // TaskSpec.stdin_pipe: the pipe's write end; tty: the terminal's master (non-blocking).
  UniqueFd stdin_write;
  UniqueFd tty_master;        // tty only: for TIOCSWINSZ
  UniqueFd seccomp_listener;  // the workload's notification listener, or empty (seccomp_notify.h)
  std::string start_error;    // non-empty: the workload never ran; the child exits 127
};

// Starts the child (which mounts its tmpfs on plan.rootfs_dir in its own mount namespace). Returns
// once the child has exec'd or reported its failure. An error means no child exists.
//
// With `prepared` (and `spec`, the TaskSpec `plan` was made from) that fits the plan
// (prepared_task.h), that process becomes the child instead of a new clone; it is then used
// up. Otherwise, or if it cannot take the task, a child is cloned as usual.
absl::StatusOr<LaunchedTask> LaunchTask(const TaskPlan& plan, PreparedTask* prepared = nullptr,
                                        const nlohmann::json* spec = nullptr);

}  // namespace rauha::shim
