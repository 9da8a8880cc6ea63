// rauha.process.v1.ProcessService: thin translation between the wire and ProcessRunner.
#pragma once

#include "rauha/v1/process.grpc.pb.h"
#include "rauhad/process_runner.h"

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

 private:
  ProcessRunner* runner_;
};

}  // namespace rauha
