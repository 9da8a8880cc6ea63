// The task's child process after clone3, in order: stdio, v1 cgroups, root filesystem and
// pivot_root, workdir, rlimits, capabilities, no_new_privs, then a fork: the child stays as
// the namespace's init (init.h) and the grandchild applies Landlock and seccomp (workload
// only), sends the seccomp listener to the shim and execs the workload (or, for a probe
// task, runs probe.h's probes in its place). Nothing of the workload runs before every limit is in
// place, and the init holds all of them but those two.
#pragma once

#include <cstdint>
#include <vector>

#include "rauha-shim/task_plan.h"

namespace rauha::shim {

struct ChildFds {
  int stdout_write;
  int stderr_write;
  int error_pipe;       // O_CLOEXEC: the kernel closes it on a successful exec
  int status_pipe;      // the init's InitReport
  int notify_socket;    // the workload sends its seccomp listener here (seccomp_notify.h)
  int stdin_fd = -1;    // the workload's stdin (read-only); -1: /dev/null
  int join_pidfd = -1;  // an exec: the pidfd of the container's init, whose namespaces it joins
  // Set when the process's root was built ahead (a prepared task, root_ahead.h): a detached
  // tree per plan.mounts entry, attached there instead of building the root (FinishRootAhead).
  const std::vector<int>* mount_trees = nullptr;
  // With mount_trees, for a task on an image (ImageRootAheadServes): a detached tree per
  // directory of its layers (LayerTreesFor), its overlay's lower layers.
  const std::vector<int>* layer_trees = nullptr;
};

// The shim's fds the child still needs after it closed the rest: the zone's user namespace
// and each mount's idmap (index of TaskPlan::mounts), renumbered; -1 where none.
struct KeptFds {
  int userns = -1;
  std::vector<int> mount_idmap;
  std::vector<int> mount_tree;  // ChildFds::mount_trees, renumbered
  std::vector<int> layer_tree;  // ChildFds::layer_trees, renumbered
};

// Debug timing (RAUHA_TRACE_SPANS=1, span_trace.h): the child and the workload record when each
// step ended (CLOCK_MONOTONIC ns) in memory shared with the shim, which logs them after the
// exec. Null (the default): nothing is recorded.
struct ChildSpans {
  static constexpr int kMax = 24;
  int count = 0;
  struct {
    const char* step;  // a literal: the same address in the forked child
    int64_t ns;
  } steps[kMax];
};
extern ChildSpans* child_spans;
// Records the end of `step` (a literal) there; nothing when child_spans is null.
void MarkChildStep(const char* step);

// Never returns. The workload's exec, or any step before it, that fails writes
// "<step>: <error>" to the error pipe and _exits 127.
[[noreturn]] void RunChild(const TaskPlan& plan, const ChildFds& fds);

}  // namespace rauha::shim
