// containerd.task.v2.Task over ttrpc: the tasks of one pod (one shim per pod), each run in the
// pod's zone through rauhad (zone_runtime.h). Wait blocks on the task's real end (the
// RunSandbox call returning), never polls. Events go out in containerd's order:
// /tasks/create, /tasks/start, /tasks/exit, /tasks/delete.
//
// Methods this version cannot do yet answer Unimplemented saying what is missing (Exec,
// ResizePty, CloseIO, Update; Checkpoint: zones cannot be checkpointed).
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

namespace rauha::cshim {

class TaskService {
 public:
  // `on_idle_shutdown` runs when Shutdown is called with no task left (the shim then exits).
  TaskService(ZoneRuntime* runtime, EventPublisher* events, std::function<void()> on_idle_shutdown);
  ~TaskService();

  void Register(ttrpc::Server& server);

 private:
  struct Task;
  std::shared_ptr<Task> Find(const std::string& id);
  void RunTask(std::shared_ptr<Task> task);
  void RegisterPauseResume(ttrpc::Server& server);
  void RegisterStats(ttrpc::Server& server);

  ZoneRuntime* runtime_;
  EventPublisher* events_;
  std::function<void()> on_idle_shutdown_;
  std::mutex mu_;
  std::condition_variable cv_;  // a task's state changed
  std::map<std::string, std::shared_ptr<Task>> tasks_;
};

}  // namespace rauha::cshim
