// Pause, Resume and Stats of containerd.task.v2.Task: zone-level operations of rauhad.
#include "containerd-shim-rauha-v2/events.h"
#include "containerd-shim-rauha-v2/task.h"
#include "containerd-shim-rauha-v2/task_service.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "google/protobuf/empty.pb.h"

namespace rauha::cshim {

namespace task = containerd::task::v2;
namespace types = containerd::v1::types;
namespace events = containerd::events;
using google::protobuf::Empty;

// Pause freezes the zone's cgroup: every process of the pod. So a task is paused only when it
// is the one task alive in its zone (a lone container, or a pod with only its sandbox).
void TaskService::RegisterPauseResume(ttrpc::Server& server) {
  auto toggle = [this](const std::string& id, bool pause) -> absl::StatusOr<Empty> {
    std::shared_ptr<Task> t;
    {
      std::lock_guard lock(mu_);
      t = Find(id);
      if (!t) return absl::NotFoundError("task " + id + " not found");
      if (t->status != (pause ? types::RUNNING : types::PAUSED)) {
        return absl::FailedPreconditionError("task " + id +
                                             (pause ? " is not running" : " is not paused"));
      }
      for (const auto& [other_id, other] : tasks_) {
        if (other != t && other->zone == t->zone && other->status != types::STOPPED) {
          return absl::FailedPreconditionError(
              "pausing one container of a pod is not supported: Rauha freezes the pod's whole "
              "zone " +
              t->zone + ", which also runs " + other_id);
        }
      }
    }
    absl::Status s = pause ? runtime_->PauseZone(t->zone) : runtime_->ResumeZone(t->zone);
    if (!s.ok()) return s;
    std::lock_guard lock(mu_);
    if (t->status == types::STOPPED) return Empty();  // it ended meanwhile
    t->status = pause ? types::PAUSED : types::RUNNING;
    if (pause) {
      events::TaskPaused ev;
      ev.set_container_id(t->id);
      events_->Publish("/tasks/paused", ev);
    } else {
      events::TaskResumed ev;
      ev.set_container_id(t->id);
      events_->Publish("/tasks/resumed", ev);
    }
    return Empty();
  };
  const std::string svc = "containerd.task.v2.Task";
  server.RegisterMethod<task::PauseRequest, Empty>(
      svc, "Pause", [toggle](const ttrpc::CallContext&, const task::PauseRequest& req) {
        return toggle(req.id(), true);
      });
  server.RegisterMethod<task::ResumeRequest, Empty>(
      svc, "Resume", [toggle](const ttrpc::CallContext&, const task::ResumeRequest& req) {
        return toggle(req.id(), false);
      });
}

// The zone's cgroup in containerd's cgroup v1 metrics (what `ctr task metrics` and CRI read).
// A zone is one cgroup per pod: a container of a pod reports the pod's figures.
void TaskService::RegisterStats(ttrpc::Server& server) {
  server.RegisterMethod<task::StatsRequest, task::StatsResponse>(
      "containerd.task.v2.Task", "Stats",
      [this](const ttrpc::CallContext&,
             const task::StatsRequest& req) -> absl::StatusOr<task::StatsResponse> {
        std::string zone;
        {
          std::lock_guard lock(mu_);
          auto t = Find(req.id());
          if (!t) return absl::NotFoundError("task " + req.id() + " not found");
          zone = t->zone;
        }
        auto stats = runtime_->ZoneStats(zone);
        if (!stats.ok()) return stats.status();
        io::containerd::cgroups::v1::Metrics metrics;
        metrics.mutable_pids()->set_current(stats->pids_current());
        metrics.mutable_pids()->set_limit(stats->pids_max());
        metrics.mutable_cpu()->mutable_usage()->set_total(stats->cpu_usage_ns());
        auto* mem = metrics.mutable_memory()->mutable_usage();
        mem->set_usage(stats->memory_usage_bytes());
        mem->set_limit(stats->memory_limit_bytes());
        mem->set_max(stats->memory_peak_bytes());
        task::StatsResponse resp;
        resp.mutable_stats()->set_type_url(metrics.GetTypeName());
        resp.mutable_stats()->set_value(metrics.SerializeAsString());
        return resp;
      });
}

}  // namespace rauha::cshim
