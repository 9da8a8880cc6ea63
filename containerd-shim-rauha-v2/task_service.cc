#include "containerd-shim-rauha-v2/task_service.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "containerd-shim-rauha-v2/bundle.h"
#include "containerd-shim-rauha-v2/log.h"
#include "containerd-shim-rauha-v2/process_end.h"
#include "containerd-shim-rauha-v2/rootfs_mount.h"
#include "containerd-shim-rauha-v2/task.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "google/protobuf/empty.pb.h"
#include "rauha-common/fd.h"
#include "rauha-common/span_trace.h"

namespace rauha::cshim {

namespace task = containerd::task::v2;
namespace types = containerd::v1::types;
namespace events = containerd::events;
using google::protobuf::Empty;
using google::protobuf::Timestamp;

TaskService::TaskService(ZoneRuntime* runtime, EventPublisher* events,
                         std::function<void()> on_idle_shutdown)
    : runtime_(runtime), events_(events), on_idle_shutdown_(std::move(on_idle_shutdown)) {}

TaskService::~TaskService() {
  std::map<std::string, std::shared_ptr<Task>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(tasks_);
  }
  for (auto& [id, t] : tasks) {
    if (t->call) t->call->Cancel();
    if (t->runner.joinable()) t->runner.join();
    for (auto& [exec_id, e] : t->execs) {
      if (e->call) e->call->Cancel();
      if (e->runner.joinable()) e->runner.join();
    }
  }
}

std::shared_ptr<TaskService::Task> TaskService::Find(const std::string& id) {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : it->second;
}

void TaskService::RunTask(std::shared_ptr<Task> t) {
  auto wait = runtime_->WaitProcess(t->id, t->call.get());
  if (!wait.ok() && wait.status().code() == absl::StatusCode::kCancelled) return;  // shim leaving
  ProcessEnd end = EndOf(wait);
  // An OOM that ended it is told before its exit (CRI reads the reason from that order).
  if (t->oom) t->oom->Stop();
  if (!end.error.empty()) {
    t->io->WriteError("containerd-shim-rauha-v2: " + end.error + "\n");
    Log("task " + t->id + ": " + end.error);
  }
  // Its output relayed, then EOF for containerd's readers, before the exit is told.
  t->io->Finish();
  std::lock_guard lock(mu_);
  t->status = types::STOPPED;
  t->exit_status = end.exit_status;
  t->exited_at = end.exited_at;
  events::TaskExit exit;
  exit.set_container_id(t->id);
  exit.set_id(t->id);
  exit.set_pid(t->pid);
  exit.set_exit_status(t->exit_status);
  *exit.mutable_exited_at() = t->exited_at;
  events_->Publish("/tasks/exit", exit);
  cv_.notify_all();
}

void TaskService::Register(ttrpc::Server& server) {
  const std::string svc = "containerd.task.v2.Task";
  using ttrpc::CallContext;

  server.RegisterMethod<task::CreateTaskRequest, task::CreateTaskResponse>(
      svc, "Create",
      [this](const CallContext&,
             const task::CreateTaskRequest& req) -> absl::StatusOr<task::CreateTaskResponse> {
        if (!req.checkpoint().empty()) {
          return absl::UnimplementedError(
              "restoring from a checkpoint: zones cannot be checkpointed");
        }
        {
          std::lock_guard lock(mu_);
          if (Find(req.id()))
            return absl::AlreadyExistsError("task " + req.id() + " already exists");
        }
        SpanTrace trace("cshim", "Create");
        auto bundle = LoadBundle(req.bundle());
        if (!bundle.ok()) return bundle.status();
        auto t = std::make_shared<Task>();
        t->id = req.id();
        t->bundle = req.bundle();
        t->process = bundle->process;
        t->stdin_path = req.stdin();
        t->stdout_path = req.stdout();
        t->stderr_path = req.stderr();
        t->terminal = req.terminal();
        auto io = ProcessIo::Open(t->stdin_path, t->stdout_path, t->stderr_path, t->terminal,
                                  t->process.console_rows, t->process.console_cols);
        if (!io.ok()) return io.status();
        t->io = *std::move(io);
        std::string group = GroupId(*bundle, req.id());
        t->zone = ZoneName(*bundle, group);
        t->owns_zone = group == req.id();
        auto mounts =
            PlanSpecMounts(bundle->mounts, ContainerdDirsOf(req.bundle()), group, req.id());
        if (!mounts.ok()) return mounts.status();
        t->mounts = std::move(mounts->mounts);
        for (const auto& skipped : mounts->skipped) {
          Log("task " + t->id + ": spec mount " + skipped + " not applied");
        }
        if (!bundle->process.no_new_privileges) {
          // The zone's seccomp filter and Landlock need no_new_privs: the zone keeps it.
          Log("task " + t->id +
              ": process.noNewPrivileges is false or unset in the spec; the zone's policy keeps "
              "no_new_privs set (its seccomp filter and Landlock rules need it)");
        }
        trace.Mark("bundle_io");
        if (req.rootfs_size() > 0) {
          if (auto s = MountRootfs(req.rootfs(), req.bundle() + "/rootfs"); !s.ok()) return s;
          t->rootfs_mounted = true;
        }
        trace.Mark("rootfs_mount");
        if (auto s = runtime_->EnsureTaskZone(t->zone, t->owns_zone, *bundle, req.options());
            !s.ok()) {
          if (t->rootfs_mounted) (void)UnmountRootfs(req.bundle() + "/rootfs");
          return s;
        }
        trace.Mark("zone");
        std::lock_guard lock(mu_);
        tasks_[t->id] = t;
        events::TaskCreate ev;
        ev.set_container_id(t->id);
        ev.set_bundle(t->bundle);
        *ev.mutable_rootfs() = req.rootfs();
        ev.mutable_io()->set_stdin(t->stdin_path);
        ev.mutable_io()->set_stdout(t->stdout_path);
        ev.mutable_io()->set_stderr(t->stderr_path);
        ev.mutable_io()->set_terminal(t->terminal);
        events_->Publish("/tasks/create", ev);
        return task::CreateTaskResponse();
      });

  server.RegisterMethod<task::StartRequest, task::StartResponse>(
      svc, "Start",
      [this](const CallContext&,
             const task::StartRequest& req) -> absl::StatusOr<task::StartResponse> {
        if (!req.exec_id().empty()) return StartExec(req.id(), req.exec_id());
        std::shared_ptr<Task> t;
        {
          std::lock_guard lock(mu_);
          t = Find(req.id());
          if (!t) return absl::NotFoundError("task " + req.id() + " not found");
          if (t->status != types::CREATED || t->starting) {
            return absl::FailedPreconditionError("task " + req.id() + " was started already");
          }
          t->starting = true;
        }
        absl::Status opened = t->io->Starting();
        absl::StatusOr<uint32_t> pid =
            opened.ok() ? runtime_->StartProcess(t->zone, t->id, t->bundle + "/rootfs", "",
                                                 t->process, *t->io, t->mounts)
                        : absl::StatusOr<uint32_t>(opened);
        std::lock_guard lock(mu_);
        t->starting = false;
        if (!pid.ok()) return pid.status();
        t->pid = *pid;
        t->io->Started();
        // A pod is one memory cgroup: each of its tasks reports the pod's OOMs.
        auto oom = OomWatcher::Watch(static_cast<pid_t>(t->pid), [this, id = t->id] {
          std::lock_guard lock(mu_);
          events::TaskOOM ev;
          ev.set_container_id(id);
          events_->Publish("/tasks/oom", ev);
        });
        if (oom.ok()) {
          t->oom = *std::move(oom);
        } else {
          Log("task " + t->id + ": no OOM events: " + std::string(oom.status().message()));
        }
        t->started = true;
        t->status = types::RUNNING;
        t->call = std::make_unique<ttrpc::CallCanceller>();
        events::TaskStart ev;
        ev.set_container_id(t->id);
        ev.set_pid(t->pid);
        events_->Publish("/tasks/start", ev);
        t->runner = std::thread([this, t] { RunTask(t); });
        task::StartResponse resp;
        resp.set_pid(t->pid);
        return resp;
      });

  server.RegisterMethod<task::WaitRequest, task::WaitResponse>(
      svc, "Wait",
      [this](const CallContext& ctx,
             const task::WaitRequest& req) -> absl::StatusOr<task::WaitResponse> {
        if (!req.exec_id().empty()) return WaitExec(ctx, req.id(), req.exec_id());
        std::unique_lock lock(mu_);
        auto t = Find(req.id());
        if (!t) return absl::NotFoundError("task " + req.id() + " not found");
        if (auto s =
                WaitUntil(lock, cv_, ctx.deadline, [&] { return t->status == types::STOPPED; });
            !s.ok()) {
          return s;
        }
        task::WaitResponse resp;
        resp.set_exit_status(t->exit_status);
        *resp.mutable_exited_at() = t->exited_at;
        return resp;
      });

  server.RegisterMethod<task::StateRequest, task::StateResponse>(
      svc, "State",
      [this](const CallContext&,
             const task::StateRequest& req) -> absl::StatusOr<task::StateResponse> {
        if (!req.exec_id().empty()) return StateExec(req.id(), req.exec_id());
        std::lock_guard lock(mu_);
        auto t = Find(req.id());
        if (!t) return absl::NotFoundError("task " + req.id() + " not found");
        task::StateResponse resp;
        resp.set_id(t->id);
        resp.set_bundle(t->bundle);
        resp.set_pid(t->pid);
        resp.set_status(t->status);
        resp.set_stdin(t->stdin_path);
        resp.set_stdout(t->stdout_path);
        resp.set_stderr(t->stderr_path);
        resp.set_terminal(t->terminal);
        resp.set_exit_status(t->exit_status);
        *resp.mutable_exited_at() = t->exited_at;
        return resp;
      });

  server.RegisterMethod<task::KillRequest, Empty>(
      svc, "Kill",
      [this](const CallContext&, const task::KillRequest& req) -> absl::StatusOr<Empty> {
        if (!req.exec_id().empty()) {
          if (auto s = KillExec(req.id(), req.exec_id(), req.signal()); !s.ok()) return s;
          return Empty();
        }
        std::unique_lock lock(mu_);
        auto t = Find(req.id());
        if (!t) return absl::NotFoundError("task " + req.id() + " not found");
        if (t->status == types::STOPPED) {
          return absl::NotFoundError("process already finished");
        }
        if (t->status == types::CREATED) {
          // Nothing runs yet: the task ends here, by the signal asked for.
          t->status = types::STOPPED;
          t->exit_status = 128 + req.signal();
          t->exited_at = Now();
          events::TaskExit exit;
          exit.set_container_id(t->id);
          exit.set_id(t->id);
          exit.set_exit_status(t->exit_status);
          *exit.mutable_exited_at() = t->exited_at;
          events_->Publish("/tasks/exit", exit);
          cv_.notify_all();
          return Empty();
        }
        lock.unlock();
        absl::Status killed = runtime_->KillProcess(t->id, static_cast<int>(req.signal()));
        if (killed.code() == absl::StatusCode::kFailedPrecondition) {
          return absl::NotFoundError("process already finished");
        }
        if (!killed.ok()) return killed;
        return Empty();
      });

  server.RegisterMethod<task::DeleteRequest, task::DeleteResponse>(
      svc, "Delete",
      [this](const CallContext&,
             const task::DeleteRequest& req) -> absl::StatusOr<task::DeleteResponse> {
        if (!req.exec_id().empty()) return DeleteExec(req.id(), req.exec_id());
        std::shared_ptr<Task> t;
        bool zone_unused = false;
        {
          std::lock_guard lock(mu_);
          t = Find(req.id());
          if (!t) return absl::NotFoundError("task " + req.id() + " not found");
          if (t->status == types::RUNNING) {
            return absl::FailedPreconditionError("task " + req.id() + " is running: kill it first");
          }
          tasks_.erase(req.id());
          zone_unused = true;
          for (const auto& [id, other] : tasks_) {
            if (other->zone == t->zone) zone_unused = false;
          }
        }
        SpanTrace trace("cshim", "Delete");
        if (t->runner.joinable()) t->runner.join();
        DropExecs(*t);
        t->io->Finish();
        trace.Mark("runner_io");
        if (t->started) {
          if (auto s = runtime_->DeleteProcess(t->id); !s.ok()) Log(std::string(s.message()));
        }
        trace.Mark("delete_process");
        if (t->rootfs_mounted) {
          if (auto s = UnmountRootfs(t->bundle + "/rootfs"); !s.ok()) Log(std::string(s.message()));
        }
        trace.Mark("rootfs_unmount");
        if (zone_unused && t->owns_zone) {
          if (auto s = runtime_->RemoveZone(t->zone); !s.ok()) Log(std::string(s.message()));
        }
        trace.Mark("remove_zone");
        if (t->status == types::CREATED) {
          t->exit_status = 128 + 9;
          t->exited_at = Now();
        }
        events::TaskDelete ev;
        ev.set_container_id(t->id);
        ev.set_pid(t->pid);
        ev.set_exit_status(t->exit_status);
        *ev.mutable_exited_at() = t->exited_at;
        events_->Publish("/tasks/delete", ev);
        task::DeleteResponse resp;
        resp.set_pid(t->pid);
        resp.set_exit_status(t->exit_status);
        *resp.mutable_exited_at() = t->exited_at;
        return resp;
      });

  server.RegisterMethod<task::PidsRequest, task::PidsResponse>(
      svc, "Pids",
      [this](const CallContext&,
             const task::PidsRequest& req) -> absl::StatusOr<task::PidsResponse> {
        std::lock_guard lock(mu_);
        auto t = Find(req.id());
        if (!t) return absl::NotFoundError("task " + req.id() + " not found");
        task::PidsResponse resp;
        if (t->status == types::RUNNING) resp.add_processes()->set_pid(t->pid);
        for (const auto& [exec_id, e] : t->execs) {
          if (e->status == types::RUNNING) resp.add_processes()->set_pid(e->pid);
        }
        return resp;
      });

  server.RegisterMethod<task::ConnectRequest, task::ConnectResponse>(
      svc, "Connect",
      [this](const CallContext&,
             const task::ConnectRequest& req) -> absl::StatusOr<task::ConnectResponse> {
        task::ConnectResponse resp;
        resp.set_shim_pid(static_cast<uint32_t>(::getpid()));
        resp.set_version(RAUHA_VERSION);
        std::lock_guard lock(mu_);
        if (auto t = Find(req.id())) resp.set_task_pid(t->pid);
        return resp;
      });

  server.RegisterMethod<task::ShutdownRequest, Empty>(
      svc, "Shutdown",
      [this](const CallContext&, const task::ShutdownRequest&) -> absl::StatusOr<Empty> {
        std::lock_guard lock(mu_);
        // One shim serves a whole pod: it stays while another task of the pod lives.
        if (tasks_.empty()) on_idle_shutdown_();
        return Empty();
      });

  RegisterPauseResume(server);
  RegisterStats(server);
  RegisterExec(server);
  RegisterUpdate(server);

  auto unimplemented = [&](const std::string& method, const std::string& why) {
    server.Register(svc, method,
                    [why](const CallContext&, const std::string&) -> absl::StatusOr<std::string> {
                      return absl::UnimplementedError(why);
                    });
  };
  unimplemented("Checkpoint", "checkpoint: rauha zones cannot be checkpointed");
}

}  // namespace rauha::cshim
