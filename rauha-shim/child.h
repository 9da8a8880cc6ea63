// The task's child process between clone3 and execve, in order: stdio, v1 cgroups, root
// filesystem and pivot_root, workdir, rlimits, capabilities, no_new_privs, exec. Nothing of
// the workload runs before every limit is in place.
#pragma once

#include "rauha-shim/task_plan.h"

namespace rauha::shim {

struct ChildFds {
  int stdout_write;
  int stderr_write;
  int error_pipe;  // O_CLOEXEC: the kernel closes it on a successful exec
};

// Never returns: execs the workload, or writes "<step>: <error>" to the error pipe and
// _exits 127.
[[noreturn]] void RunChild(const TaskPlan& plan, const ChildFds& fds);

}  // namespace rauha::shim
