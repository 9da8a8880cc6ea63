#include "rauhad/server/process_service.h"

#include "rauhad/server/status.h"

namespace rauha {

namespace pb = rauha::process::v1;

grpc::Status ProcessServiceImpl::StartProcess(grpc::ServerContext*,
                                              const pb::StartProcessRequest* request,
                                              pb::StartProcessResponse* response) {
  return ToGrpc(StartProcess(*request, response));
}

absl::Status ProcessServiceImpl::StartProcess(const pb::StartProcessRequest& request,
                                              pb::StartProcessResponse* response) {
  auto pid = runner_->Start(request);
  if (!pid.ok()) return pid.status();
  response->set_pid(*pid);
  return absl::OkStatus();
}

grpc::Status ProcessServiceImpl::WaitProcess(grpc::ServerContext* ctx,
                                             const pb::WaitProcessRequest* request,
                                             pb::WaitProcessResponse* response) {
  return ToGrpc(WaitProcess(ControlOf(ctx), *request, response));
}

absl::Status ProcessServiceImpl::WaitProcess(const CallControl& call,
                                             const pb::WaitProcessRequest& request,
                                             pb::WaitProcessResponse* response) {
  auto end = runner_->Wait(request.process_id(), call.cancelled);
  if (!end.ok()) return end.status();
  *response = std::move(*end);
  return absl::OkStatus();
}

grpc::Status ProcessServiceImpl::KillProcess(grpc::ServerContext*,
                                             const pb::KillProcessRequest* request,
                                             pb::KillProcessResponse*) {
  return ToGrpc(KillProcess(*request));
}

absl::Status ProcessServiceImpl::KillProcess(const pb::KillProcessRequest& request) {
  return runner_->Kill(request.process_id(), request.signal());
}

grpc::Status ProcessServiceImpl::DeleteProcess(grpc::ServerContext*,
                                               const pb::DeleteProcessRequest* request,
                                               pb::DeleteProcessResponse*) {
  return ToGrpc(DeleteProcess(*request));
}

absl::Status ProcessServiceImpl::DeleteProcess(const pb::DeleteProcessRequest& request) {
  return runner_->Delete(request.process_id());
}

}  // namespace rauha
