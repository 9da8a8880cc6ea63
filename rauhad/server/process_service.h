// rauha.process.v1.ProcessService: thin translation between the wire and ProcessRunner.
#pragma once

#include "rauha/v1/process.grpc.pb.h"
#include "rauhad/process_runner.h"
#include "rauhad/server/admit.h"

namespace rauha {

class ProcessServiceImpl final : public rauha::process::v1::ProcessService::Service {
 public:
  explicit ProcessServiceImpl(ProcessRunner* runner) : runner_(runner) {}

  grpc::Status StartProcess(grpc::ServerContext*, const process::v1::StartProcessRequest*,
                            process::v1::StartProcessResponse*) override;
  grpc::Status WaitProcess(grpc::ServerContext*, const process::v1::WaitProcessRequest*,
                           process::v1::WaitProcessResponse*) override;
  grpc::Status KillProcess(grpc::ServerContext*, const process::v1::KillProcessRequest*,
                           process::v1::KillProcessResponse*) override;
  grpc::Status DeleteProcess(grpc::ServerContext*, const process::v1::DeleteProcessRequest*,
                             process::v1::DeleteProcessResponse*) override;

  // Transport-neutral: the gRPC methods above and the shim's ttrpc endpoint (shim_endpoint.h)
  // both run these.
  absl::Status StartProcess(const process::v1::StartProcessRequest& req,
                            process::v1::StartProcessResponse* resp);
  absl::Status WaitProcess(const CallControl& call, const process::v1::WaitProcessRequest& req,
                           process::v1::WaitProcessResponse* resp);
  absl::Status KillProcess(const process::v1::KillProcessRequest& req);
  absl::Status DeleteProcess(const process::v1::DeleteProcessRequest& req);

 private:
  ProcessRunner* runner_;
};

}  // namespace rauha
