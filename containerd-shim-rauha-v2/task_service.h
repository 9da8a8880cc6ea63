// containerd.task.v2.Task over ttrpc: the tasks of one pod (one shim per pod), each run in the
// pod's zone through rauhad (zone_runtime.h). Wait blocks on the task's real end (the
// RunSandbox call returning), never polls. Events go out in containerd's order:
// /tasks/create, /tasks/start, /tasks/exit, /tasks/delete.
//
// Execs (exec_service.cc) join the task's container through rauhad, with their own stdio or
// a terminal (process_io.h); their events are /tasks/exec-added, /tasks/exec-started and
// /tasks/exit. Checkpoint answers Unimplemented (zones cannot be checkpointed).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "containerd-shim-rauha-v2/events.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/zone_runtime.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"

namespace rauha::cshim {

class TaskService {
 public:
  // `on_idle_shutdown` runs when Shutdown is called with no task left (the shim then exits).
  TaskService(ZoneRuntime* runtime, EventPublisher* events, std::function<void()> on_idle_shutdown);
  ~TaskService();

  void Register(ttrpc::Server& server);

 private:
  struct Task;
  struct Exec;
  std::shared_ptr<Task> Find(const std::string& id);
  void RunTask(std::shared_ptr<Task> task);
  void RegisterPauseResume(ttrpc::Server& server);
  void RegisterStats(ttrpc::Server& server);

  // update_service.cc: Update (resources) through the zone's policy.
  void RegisterUpdate(ttrpc::Server& server);

  // exec_service.cc: Exec, ResizePty, CloseIO, and the exec side of the others.
  void RegisterExec(ttrpc::Server& server);
  void RunExec(std::shared_ptr<Task> task, std::shared_ptr<Exec> exec);
  absl::StatusOr<containerd::task::v2::StartResponse> StartExec(const std::string& id,
                                                                const std::string& exec_id);
  absl::StatusOr<containerd::task::v2::WaitResponse> WaitExec(const ttrpc::CallContext& ctx,
                                                              const std::string& id,
                                                              const std::string& exec_id);
  absl::StatusOr<containerd::task::v2::StateResponse> StateExec(const std::string& id,
                                                                const std::string& exec_id);
  absl::Status KillExec(const std::string& id, const std::string& exec_id, uint32_t signal);
  absl::StatusOr<containerd::task::v2::DeleteResponse> DeleteExec(const std::string& id,
                                                                  const std::string& exec_id);
  // The task is being deleted: its execs' processes are forgotten in rauhad (they ended with
  // the container's pid namespace).
  void DropExecs(Task& task);

  ZoneRuntime* runtime_;
  EventPublisher* events_;
  std::function<void()> on_idle_shutdown_;
  std::mutex mu_;
  std::mutex update_mu_;        // Update calls, one at a time
  std::condition_variable cv_;  // a task's state changed
  std::map<std::string, std::shared_ptr<Task>> tasks_;
};

}  // namespace rauha::cshim
