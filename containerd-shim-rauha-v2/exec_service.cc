// Exec, ResizePty and CloseIO of containerd.task.v2.Task, and Start/Wait/State/Kill/Delete
// of an exec id: a process that joins a running task's container (its mount and pid
// namespaces, cgroup and confinement) through rauhad, stdio on its own FIFOs or a terminal.
// Events: /tasks/exec-added at Exec, /tasks/exec-started at Start, /tasks/exit (id = the exec
// id) when it ends, published under the service's lock so containerd sees them in order.
#include "containerd-shim-rauha-v2/exec.h"
#include "containerd-shim-rauha-v2/log.h"
#include "containerd-shim-rauha-v2/process_end.h"
#include "containerd-shim-rauha-v2/task.h"
#include "containerd-shim-rauha-v2/task_service.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "google/protobuf/empty.pb.h"

namespace rauha::cshim {

namespace task = containerd::task::v2;
namespace types = containerd::v1::types;
namespace events = containerd::events;
using google::protobuf::Empty;

namespace {

// containerd's exec spec: the OCI process as JSON in an Any
// ("types.containerd.io/opencontainers/runtime-spec/1/Process").
absl::StatusOr<BundleProcess> ExecProcess(const google::protobuf::Any& spec) {
  if (spec.value().empty()) return absl::InvalidArgumentError("exec: the process spec is empty");
  return ParseProcessJson(spec.value());
}

}  // namespace

void TaskService::RegisterExec(ttrpc::Server& server) {
  const std::string svc = "containerd.task.v2.Task";
  using ttrpc::CallContext;

  server.RegisterMethod<task::ExecProcessRequest, Empty>(
      svc, "Exec",
      [this](const CallContext&, const task::ExecProcessRequest& req) -> absl::StatusOr<Empty> {
        if (req.exec_id().empty()) return absl::InvalidArgumentError("exec: exec_id is empty");
        auto process = ExecProcess(req.spec());
        if (!process.ok()) return process.status();
        {
          std::lock_guard lock(mu_);
          auto t = Find(req.id());
          if (!t) return absl::NotFoundError("task " + req.id() + " not found");
          if (t->execs.contains(req.exec_id())) {
            return absl::AlreadyExistsError("exec " + req.exec_id() + " already exists in task " +
                                            req.id());
          }
          if (t->status != types::RUNNING) {
            return absl::FailedPreconditionError("task " + req.id() +
                                                 " is not running: nothing to exec in");
          }
        }
        auto e = std::make_shared<Exec>();
        e->exec_id = req.exec_id();
        e->process_id = ExecProcessId(req.id(), req.exec_id());
        e->process = *std::move(process);
        e->stdin_path = req.stdin();
        e->stdout_path = req.stdout();
        e->stderr_path = req.stderr();
        e->terminal = req.terminal();
        auto io = ProcessIo::Open(e->stdin_path, e->stdout_path, e->stderr_path, e->terminal,
                                  e->process.console_rows, e->process.console_cols);
        if (!io.ok()) return io.status();
        e->io = *std::move(io);
        std::lock_guard lock(mu_);
        auto t = Find(req.id());
        if (!t) return absl::NotFoundError("task " + req.id() + " not found");
        if (!t->execs.emplace(e->exec_id, e).second) {
          return absl::AlreadyExistsError("exec " + req.exec_id() + " already exists in task " +
                                          req.id());
        }
        events::TaskExecAdded ev;
        ev.set_container_id(t->id);
        ev.set_exec_id(e->exec_id);
        events_->Publish("/tasks/exec-added", ev);
        return Empty();
      });

  server.RegisterMethod<task::ResizePtyRequest, Empty>(
      svc, "ResizePty",
      [this](const CallContext&, const task::ResizePtyRequest& req) -> absl::StatusOr<Empty> {
        ProcessIo* io = nullptr;
        std::shared_ptr<Task> t;
        std::shared_ptr<Exec> e;
        {
          std::lock_guard lock(mu_);
          t = Find(req.id());
          if (!t) return absl::NotFoundError("task " + req.id() + " not found");
          if (req.exec_id().empty()) {
            io = t->io.get();
          } else {
            auto it = t->execs.find(req.exec_id());
            if (it == t->execs.end()) {
              return absl::NotFoundError("exec " + req.exec_id() + " not found in task " +
                                         req.id());
            }
            e = it->second;
            io = e->io.get();
          }
        }
        if (auto s = io->Resize(req.height(), req.width()); !s.ok()) return s;
        return Empty();
      });

  server.RegisterMethod<task::CloseIORequest, Empty>(
      svc, "CloseIO",
      [this](const CallContext&, const task::CloseIORequest& req) -> absl::StatusOr<Empty> {
        std::shared_ptr<Task> t;
        std::shared_ptr<Exec> e;
        {
          std::lock_guard lock(mu_);
          t = Find(req.id());
          if (!t) return absl::NotFoundError("task " + req.id() + " not found");
          if (!req.exec_id().empty()) {
            auto it = t->execs.find(req.exec_id());
            if (it == t->execs.end()) {
              return absl::NotFoundError("exec " + req.exec_id() + " not found in task " +
                                         req.id());
            }
            e = it->second;
          }
        }
        if (req.stdin()) (e ? e->io : t->io)->CloseStdin();
        return Empty();
      });
}

absl::StatusOr<task::StartResponse> TaskService::StartExec(const std::string& id,
                                                           const std::string& exec_id) {
  std::shared_ptr<Task> t;
  std::shared_ptr<Exec> e;
  {
    std::lock_guard lock(mu_);
    t = Find(id);
    if (!t) return absl::NotFoundError("task " + id + " not found");
    auto it = t->execs.find(exec_id);
    if (it == t->execs.end()) {
      return absl::NotFoundError("exec " + exec_id + " not found in task " + id);
    }
    e = it->second;
    if (e->status != types::CREATED || e->starting) {
      return absl::FailedPreconditionError("exec " + exec_id + " was started already");
    }
    if (t->status != types::RUNNING) {
      return absl::FailedPreconditionError("task " + id + " is not running: nothing to exec in");
    }
    e->starting = true;
  }
  absl::Status opened = e->io->Starting();
  absl::StatusOr<uint32_t> pid =
      opened.ok() ? runtime_->StartProcess(t->zone, e->process_id, "", t->id, e->process, *e->io)
                  : absl::StatusOr<uint32_t>(opened);
  std::lock_guard lock(mu_);
  e->starting = false;
  if (!pid.ok()) return pid.status();
  e->pid = *pid;
  e->started = true;
  e->status = types::RUNNING;
  e->call = std::make_unique<ttrpc::CallCanceller>();
  e->io->Started();
  events::TaskExecStarted ev;
  ev.set_container_id(t->id);
  ev.set_exec_id(e->exec_id);
  ev.set_pid(e->pid);
  events_->Publish("/tasks/exec-started", ev);
  e->runner = std::thread([this, t, e] { RunExec(t, e); });
  task::StartResponse resp;
  resp.set_pid(e->pid);
  return resp;
}

void TaskService::RunExec(std::shared_ptr<Task> t, std::shared_ptr<Exec> e) {
  auto wait = runtime_->WaitProcess(e->process_id, e->call.get());
  if (!wait.ok() && wait.status().code() == absl::StatusCode::kCancelled) return;  // shim leaving
  ProcessEnd end = EndOf(wait);
  if (!end.error.empty()) {
    e->io->WriteError("containerd-shim-rauha-v2: " + end.error + "\n");
    Log("exec " + e->exec_id + " of task " + t->id + ": " + end.error);
  }
  e->io->Finish();
  std::lock_guard lock(mu_);
  e->status = types::STOPPED;
  e->exit_status = end.exit_status;
  e->exited_at = end.exited_at;
  events::TaskExit exit;
  exit.set_container_id(t->id);
  exit.set_id(e->exec_id);
  exit.set_pid(e->pid);
  exit.set_exit_status(e->exit_status);
  *exit.mutable_exited_at() = e->exited_at;
  events_->Publish("/tasks/exit", exit);
  cv_.notify_all();
}

absl::StatusOr<task::WaitResponse> TaskService::WaitExec(const ttrpc::CallContext& ctx,
                                                         const std::string& id,
                                                         const std::string& exec_id) {
  std::unique_lock lock(mu_);
  auto t = Find(id);
  if (!t) return absl::NotFoundError("task " + id + " not found");
  auto it = t->execs.find(exec_id);
  if (it == t->execs.end()) {
    return absl::NotFoundError("exec " + exec_id + " not found in task " + id);
  }
  std::shared_ptr<Exec> e = it->second;
  if (auto s = WaitUntil(lock, cv_, ctx.deadline, [&] { return e->status == types::STOPPED; });
      !s.ok()) {
    return s;
  }
  task::WaitResponse resp;
  resp.set_exit_status(e->exit_status);
  *resp.mutable_exited_at() = e->exited_at;
  return resp;
}

absl::StatusOr<task::StateResponse> TaskService::StateExec(const std::string& id,
                                                           const std::string& exec_id) {
  std::lock_guard lock(mu_);
  auto t = Find(id);
  if (!t) return absl::NotFoundError("task " + id + " not found");
  auto it = t->execs.find(exec_id);
  if (it == t->execs.end()) {
    return absl::NotFoundError("exec " + exec_id + " not found in task " + id);
  }
  const Exec& e = *it->second;
  task::StateResponse resp;
  resp.set_id(e.exec_id);
  resp.set_exec_id(e.exec_id);
  resp.set_bundle(t->bundle);
  resp.set_pid(e.pid);
  resp.set_status(e.status);
  resp.set_stdin(e.stdin_path);
  resp.set_stdout(e.stdout_path);
  resp.set_stderr(e.stderr_path);
  resp.set_terminal(e.terminal);
  resp.set_exit_status(e.exit_status);
  *resp.mutable_exited_at() = e.exited_at;
  return resp;
}

absl::Status TaskService::KillExec(const std::string& id, const std::string& exec_id,
                                   uint32_t signal) {
  std::shared_ptr<Exec> e;
  {
    std::lock_guard lock(mu_);
    auto t = Find(id);
    if (!t) return absl::NotFoundError("task " + id + " not found");
    auto it = t->execs.find(exec_id);
    if (it == t->execs.end()) {
      return absl::NotFoundError("exec " + exec_id + " not found in task " + id);
    }
    e = it->second;
    if (e->status == types::STOPPED) return absl::NotFoundError("process already finished");
    if (e->status == types::CREATED && !e->starting) {
      // Nothing runs yet: it ends here, by the signal asked for.
      e->status = types::STOPPED;
      e->exit_status = 128 + signal;
      e->exited_at = Now();
      e->io->Finish();
      events::TaskExit exit;
      exit.set_container_id(id);
      exit.set_id(exec_id);
      exit.set_exit_status(e->exit_status);
      *exit.mutable_exited_at() = e->exited_at;
      events_->Publish("/tasks/exit", exit);
      cv_.notify_all();
      return absl::OkStatus();
    }
  }
  absl::Status killed = runtime_->KillProcess(e->process_id, static_cast<int>(signal));
  if (killed.code() == absl::StatusCode::kFailedPrecondition) {
    return absl::NotFoundError("process already finished");
  }
  return killed;
}

absl::StatusOr<task::DeleteResponse> TaskService::DeleteExec(const std::string& id,
                                                             const std::string& exec_id) {
  std::shared_ptr<Exec> e;
  {
    std::lock_guard lock(mu_);
    auto t = Find(id);
    if (!t) return absl::NotFoundError("task " + id + " not found");
    auto it = t->execs.find(exec_id);
    if (it == t->execs.end()) {
      return absl::NotFoundError("exec " + exec_id + " not found in task " + id);
    }
    e = it->second;
    if (e->status == types::RUNNING || e->starting) {
      return absl::FailedPreconditionError("exec " + exec_id + " is running: kill it first");
    }
    t->execs.erase(it);
  }
  if (e->runner.joinable()) e->runner.join();
  e->io->Finish();
  if (e->started) {
    if (auto s = runtime_->DeleteProcess(e->process_id); !s.ok()) Log(std::string(s.message()));
  }
  // runc's shim publishes /tasks/delete for a task's own process only; so do we.
  task::DeleteResponse resp;
  resp.set_pid(e->pid);
  resp.set_exit_status(e->exit_status);
  *resp.mutable_exited_at() = e->exited_at;
  return resp;
}

void TaskService::DropExecs(Task& t) {
  std::map<std::string, std::shared_ptr<Exec>> execs;
  {
    std::lock_guard lock(mu_);
    execs.swap(t.execs);
  }
  for (auto& [exec_id, e] : execs) {
    // The container's pid namespace is gone, and with it every exec in it: their waits end.
    if (e->runner.joinable()) e->runner.join();
    e->io->Finish();
    if (e->started) {
      if (auto s = runtime_->DeleteProcess(e->process_id); !s.ok()) Log(std::string(s.message()));
    }
  }
}

}  // namespace rauha::cshim
