// rauha.sandbox.v1.SandboxService: thin translation between the wire and TaskRunner.
#pragma once

#include "rauha/v1/sandbox.grpc.pb.h"
#include "rauhad/call_gate.h"
#include "rauhad/task_runner.h"

namespace rauha {

class SandboxServiceImpl final : public rauha::sandbox::v1::SandboxService::Service {
 public:
  // `task_calls`: the gate RunSandbox and WaitTask pass; each holds a thread for as long as
  // its task runs (null: none).
  explicit SandboxServiceImpl(TaskRunner* runner, CallGate* task_calls = nullptr)
      : runner_(runner), task_calls_(task_calls) {}

  grpc::Status RunSandbox(grpc::ServerContext*, const sandbox::v1::RunSandboxRequest*,
                          sandbox::v1::SandboxResult*) override;
  grpc::Status WaitTask(grpc::ServerContext*, const sandbox::v1::WaitTaskRequest*,
                        sandbox::v1::SandboxResult*) override;
  grpc::Status ListTasks(grpc::ServerContext*, const sandbox::v1::ListTasksRequest*,
                         sandbox::v1::ListTasksResponse*) override;

 private:
  TaskRunner* runner_;
  CallGate* task_calls_;
};

}  // namespace rauha
