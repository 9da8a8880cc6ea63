#include "rauhad/server/process_service.h"

#include "rauhad/server/status.h"

namespace rauha {

namespace pb = rauha::process::v1;

grpc::Status ProcessServiceImpl::StartProcess(grpc::ServerContext*,
                                              const pb::StartProcessRequest* request,
                                              pb::StartProcessResponse* response) {
  auto pid = runner_->Start(*request);
  if (!pid.ok()) return ToGrpc(pid.status());
  response->set_pid(*pid);
  return grpc::Status::OK;
}

grpc::Status ProcessServiceImpl::WaitProcess(grpc::ServerContext* ctx,
                                             const pb::WaitProcessRequest* request,
                                             pb::WaitProcessResponse* response) {
  auto end = runner_->Wait(request->process_id(), [ctx] { return ctx->IsCancelled(); });
  if (!end.ok()) return ToGrpc(end.status());
  *response = std::move(*end);
  return grpc::Status::OK;
}

grpc::Status ProcessServiceImpl::KillProcess(grpc::ServerContext*,
                                             const pb::KillProcessRequest* request,
                                             pb::KillProcessResponse*) {
  return ToGrpc(runner_->Kill(request->process_id(), request->signal()));
}

grpc::Status ProcessServiceImpl::DeleteProcess(grpc::ServerContext*,
                                               const pb::DeleteProcessRequest* request,
                                               pb::DeleteProcessResponse*) {
  return ToGrpc(runner_->Delete(request->process_id()));
}

}  // namespace rauha
