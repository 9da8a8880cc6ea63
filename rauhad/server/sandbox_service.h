// rauha.sandbox.v1.SandboxService: thin translation between the wire and TaskRunner.
#pragma once

#include "rauha/v1/sandbox.grpc.pb.h"
#include "rauhad/task_runner.h"

namespace rauha {

class SandboxServiceImpl final : public rauha::sandbox::v1::SandboxService::Service {
 public:
  explicit SandboxServiceImpl(TaskRunner* runner) : runner_(runner) {}

  grpc::Status RunSandbox(grpc::ServerContext*, const sandbox::v1::RunSandboxRequest*,
                          sandbox::v1::SandboxResult*) override;
  grpc::Status WaitTask(grpc::ServerContext*, const sandbox::v1::WaitTaskRequest*,
                        sandbox::v1::SandboxResult*) override;
  grpc::Status ListTasks(grpc::ServerContext*, const sandbox::v1::ListTasksRequest*,
                         sandbox::v1::ListTasksResponse*) override;

 private:
  TaskRunner* runner_;
};

}  // namespace rauha
