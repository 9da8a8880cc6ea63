#include "rauhad/server/sandbox_service.h"

#include <chrono>
#include <cstdio>
#include <system_error>
#include <thread>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

#include "rauhad/server/admit.h"
#include "rauhad/server/status.h"

namespace rauha {

namespace spb = rauha::sandbox::v1;

SandboxServiceImpl::~SandboxServiceImpl() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return running_ == 0; });
}

grpc::ServerUnaryReactor* SandboxServiceImpl::RunSandbox(grpc::CallbackServerContext* ctx,
                                                         const spb::RunSandboxRequest* req,
                                                         spb::SandboxResult* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // Admitted before a thread is made for it (the gate has no queue: this does not block).
  auto slot = Admit(task_calls_, ctx);
  if (!slot.ok()) {
    reactor->Finish(ToGrpc(slot.status()));
    return reactor;
  }
  auto run = [this, ctx, req, resp, reactor, slot = *std::move(slot)]() mutable {
    grpc::Status status = [&] {
      auto on_recorded = [ctx, reactor](const std::string& task_id) {
        ctx->AddInitialMetadata(kTaskIdMetadataKey, task_id);
        reactor->StartSendInitialMetadata();
      };
      auto result = runner_->Run(
          *req, [ctx] { return ctx->IsCancelled(); }, on_recorded);
      if (!result.ok()) return ToGrpc(result.status());
      *resp = *std::move(result);
      return grpc::Status::OK;
    }();
    slot = CallGate::Slot();
    reactor->Finish(status);
    std::lock_guard lock(mu_);
    --running_;
    idle_.notify_all();
  };
  {
    std::lock_guard lock(mu_);
    ++running_;
  }
  try {
    threads_.Run(std::move(run));
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(mu_);
      --running_;
      idle_.notify_all();
    }
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 StrCat("cannot start a thread for the task: ", e.what())));
  }
  return reactor;
}

absl::StatusOr<spb::SandboxResult> SandboxServiceImpl::RunSandbox(
    const CallControl& call, const spb::RunSandboxRequest& req,
    const std::function<void(const std::string& task_id)>& on_recorded) {
  RAUHA_ASSIGN_OR_RETURN(CallGate::Slot slot, Admit(task_calls_, call));
  {
    std::lock_guard lock(mu_);
    ++running_;
  }
  struct Done {
    SandboxServiceImpl* self;
    ~Done() {
      std::lock_guard lock(self->mu_);
      --self->running_;
      self->idle_.notify_all();
    }
  } done{this};
  // gRPC counts a passed deadline as a cancellation; so does this.
  std::function<bool()> cancelled = [&call] {
    return (call.cancelled && call.cancelled()) ||
           std::chrono::system_clock::now() >= call.deadline;
  };
  return runner_->Run(req, cancelled, on_recorded);
}

grpc::Status SandboxServiceImpl::WaitTask(grpc::ServerContext* ctx, const spb::WaitTaskRequest* req,
                                          spb::SandboxResult* resp) {
  if (req->task_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "task_id is empty");
  }
  auto slot = Admit(task_calls_, ctx);
  if (!slot.ok()) return ToGrpc(slot.status());
  auto result = runner_->Wait(req->task_id(), [ctx] { return ctx->IsCancelled(); });
  if (!result.ok()) return ToGrpc(result.status());
  *resp = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status SandboxServiceImpl::ListTasks(grpc::ServerContext*, const spb::ListTasksRequest* req,
                                           spb::ListTasksResponse* resp) {
  for (auto& t : runner_->List(req->zone_name())) *resp->add_tasks() = std::move(t);
  return grpc::Status::OK;
}

}  // namespace rauha
