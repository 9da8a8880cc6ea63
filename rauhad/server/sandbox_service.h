// rauha.sandbox.v1.SandboxService: thin translation between the wire and TaskRunner.
#pragma once

#include <condition_variable>
#include <mutex>

#include "rauha-common/api_metadata.h"
#include "rauha/v1/sandbox.grpc.pb.h"
#include "rauhad/call_gate.h"
#include "rauhad/server/admit.h"
#include "rauhad/server/call_threads.h"
#include "rauhad/task_runner.h"

namespace rauha {

// RunSandbox uses the callback API, since only it can send initial metadata (the task's id,
// kTaskIdMetadataKey) before the response; its task runs on a thread of its own, as a sync
// handler's would (one kept from an earlier call when there is one: CallThreads).
class SandboxServiceImpl final
    : public rauha::sandbox::v1::SandboxService::WithCallbackMethod_RunSandbox<
          rauha::sandbox::v1::SandboxService::Service> {
 public:
  // `task_calls`: the gate RunSandbox and WaitTask pass; each holds a thread for as long as
  // its task runs (null: none).
  explicit SandboxServiceImpl(TaskRunner* runner, CallGate* task_calls = nullptr)
      : runner_(runner), task_calls_(task_calls) {}
  // Waits for RunSandbox threads (after the server's shutdown every call has finished).
  ~SandboxServiceImpl();

  grpc::ServerUnaryReactor* RunSandbox(grpc::CallbackServerContext*,
                                       const sandbox::v1::RunSandboxRequest*,
                                       sandbox::v1::SandboxResult*) override;
  // The same call for another transport (rauhad's ttrpc endpoint, shim_endpoint.h), on the
  // caller's thread: admitted at the same gate, run by the same TaskRunner (checks, audit,
  // events), `on_recorded` told the task's id once it is recorded (gRPC sends it as initial
  // metadata). The destructor waits for these calls too.
  absl::StatusOr<sandbox::v1::SandboxResult> RunSandbox(
      const CallControl& call, const sandbox::v1::RunSandboxRequest& req,
      const std::function<void(const std::string& task_id)>& on_recorded);
  grpc::Status WaitTask(grpc::ServerContext*, const sandbox::v1::WaitTaskRequest*,
                        sandbox::v1::SandboxResult*) override;
  grpc::Status ListTasks(grpc::ServerContext*, const sandbox::v1::ListTasksRequest*,
                         sandbox::v1::ListTasksResponse*) override;
  // sandbox_stream.cc. A sync handler: its thread runs the task and writes the output, a
  // second one reads the client's input, a third passes it to the task's shim.
  grpc::Status RunSandboxStream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<sandbox::v1::RunSandboxStreamResponse,
                               sandbox::v1::RunSandboxStreamRequest>*) override;

 private:
  TaskRunner* runner_;
  CallGate* task_calls_;
  std::mutex mu_;
  std::condition_variable idle_;
  int running_ = 0;  // RunSandbox threads not yet done
  // RunSandbox's threads, kept for the next call (last: destroyed first, once running_ is 0).
  CallThreads threads_;
};

}  // namespace rauha
