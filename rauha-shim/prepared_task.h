// A task process made ahead, for a zone of rauhad's warm pool ("prepare", shim_protocol.h):
// cloned into a new pid namespace and the zone's v2 cgroup, it joins the zone's v1 cgroups
// while the zone waits in the pool and then parks, waiting for its task. The first write to a
// v1 cgroup.procs after a quiet spell waits for an RCU grace period (~10 ms on this machine,
// eval/bench/README.md), which a task started this way no longer pays on its call.
//
// Given a plan to build it from (`root`: the zone's policy, no request), it also builds the
// task's root ahead, in a mount namespace of its own, and pivots into it (root_ahead.h): all
// of the root but the request's mounts and the read-only seal.
//
// The task's plan comes over a socketpair when "start" comes (HandOver): its TaskSpec (in a
// sealed memfd) and the descriptors LaunchTask would have given a freshly cloned child. The
// parked process plans the task from the same spec the shim checked, in the host's mount
// namespace as it is at that moment (it keeps that namespace's fd to go back to it), and goes
// on exactly as a freshly cloned child (child.h). If the root built ahead serves the task, the
// shim sends the task's mounts as detached trees it made at the call; the process returns to
// its own namespace, attaches them and seals the root. Otherwise (no root built, or the task
// needs another) it unshares a mount namespace from the host's then (so its view of the host's
// mounts is that of the moment the task starts) and builds the root as a fresh child would.
// It serves one task at most; the shim kills it if it is not used.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "rauha-common/fd.h"
#include "rauha-shim/child.h"
#include "rauha-shim/task_plan.h"

namespace rauha::shim {

struct PreparedTask {
  pid_t pid = 0;  // in the shim's pid namespace
  UniqueFd pidfd;
  UniqueFd control;  // SOCK_SEQPACKET; the parked process's other end
  std::string cgroup_v2;
  std::vector<std::string> cgroup_v1;
  ChildSpans* spans = nullptr;  // debug timing (child.h), shared with the process; or null
  // What its root was built ahead from (a plan with no mounts), or null: none was.
  std::shared_ptr<const TaskPlan> root;

  PreparedTask() = default;
  PreparedTask(PreparedTask&&) noexcept;
  PreparedTask& operator=(PreparedTask&&) noexcept;
  ~PreparedTask();  // kills and reaps a process that was not handed a task
};

// Clones the process and waits (at most `timeout_ms`) until it is in every cgroup, and, with
// `root`, until it has built that plan's root ahead (rootfs.h, BuildRootAhead). `zone` is what
// its task will be planned with.
absl::StatusOr<PreparedTask> PrepareTask(const std::string& cgroup_v2,
                                         const std::vector<std::string>& cgroup_v1,
                                         const ZoneContext& zone, int timeout_ms,
                                         std::shared_ptr<const TaskPlan> root = nullptr);

// Whether `plan` may start in `prepared`: a task of its own (not an exec into another) in
// the very cgroups the process joined.
bool FitsPrepared(const PreparedTask& prepared, const TaskPlan& plan);

// Sends the task: `spec` (the TaskSpec the shim planned `plan` from; its stdin_data is not
// sent, `fds.stdin_fd` carries it) and the child's descriptors; if the root built ahead serves
// `plan`, a detached tree of each of plan.mounts (MountTreeFor), else their idmaps. On success the
// process is the task's child from here on (its pid and pidfd are the task's; `prepared` keeps
// nothing to kill). An error means nothing was sent: the caller clones a child as usual.
absl::Status HandOver(PreparedTask& prepared, const nlohmann::json& spec, const TaskPlan& plan,
                      const ChildFds& fds);

}  // namespace rauha::shim
