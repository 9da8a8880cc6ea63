// Update of containerd.task.v2.Task: the LinuxResources containerd sends (memory limit, CPU
// shares, quota and period, pids limit) become the zone's policy [resources] through rauhad
// (GetPolicy, then ApplyPolicy, which writes the zone's cgroups). A pod is one zone: a
// container's update sets the limits of the whole pod.
#include "containerd-shim-rauha-v2/resources.h"
#include "containerd-shim-rauha-v2/task.h"
#include "containerd-shim-rauha-v2/task_service.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "google/protobuf/empty.pb.h"

namespace rauha::cshim {

namespace task = containerd::task::v2;
namespace types = containerd::v1::types;
using google::protobuf::Empty;

void TaskService::RegisterUpdate(ttrpc::Server& server) {
  server.RegisterMethod<task::UpdateTaskRequest, Empty>(
      "containerd.task.v2.Task", "Update",
      [this](const ttrpc::CallContext&,
             const task::UpdateTaskRequest& req) -> absl::StatusOr<Empty> {
        if (!req.has_resources() || req.resources().value().empty()) {
          return absl::InvalidArgumentError("update: no resources given");
        }
        auto update = ParseLinuxResources(req.resources().value());
        if (!update.ok()) return update.status();
        std::string zone;
        {
          std::lock_guard lock(mu_);
          auto t = Find(req.id());
          if (!t) return absl::NotFoundError("task " + req.id() + " not found");
          if (t->status == types::STOPPED) {
            return absl::FailedPreconditionError("task " + req.id() + " has ended");
          }
          zone = t->zone;
        }
        // One update at a time: each reads the policy the previous one wrote.
        std::lock_guard serial(update_mu_);
        auto current = runtime_->GetPolicy(zone);
        if (!current.ok()) return current.status();
        auto next = ApplyToPolicy(*current, *update);
        if (!next.ok()) return next.status();
        if (auto s = runtime_->ApplyPolicy(zone, *next); !s.ok()) return s;
        return Empty();
      });
}

}  // namespace rauha::cshim
