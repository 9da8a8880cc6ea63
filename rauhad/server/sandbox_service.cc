#include "rauhad/server/sandbox_service.h"

#include "rauhad/server/admit.h"
#include "rauhad/server/status.h"

namespace rauha {

namespace spb = rauha::sandbox::v1;

grpc::Status SandboxServiceImpl::RunSandbox(grpc::ServerContext* ctx,
                                            const spb::RunSandboxRequest* req,
                                            spb::SandboxResult* resp) {
  auto slot = Admit(task_calls_, ctx);
  if (!slot.ok()) return ToGrpc(slot.status());
  auto result = runner_->Run(*req, [ctx] { return ctx->IsCancelled(); });
  if (!result.ok()) return ToGrpc(result.status());
  *resp = *std::move(result);
  return grpc::Status::OK;
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
