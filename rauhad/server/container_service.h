// rauha.container.v1.ContainerService: thin translation between the wire and
// rauhad/container. The calls that stay open (logs --follow, exec, attach) each take a slot of
// `stream_calls` (RunSandbox's gate), so they cannot hold more threads than tasks can.
#pragma once

#include <functional>
#include "rauha/v1/container.grpc.pb.h"

#include "absl/status/status.h"
#include "rauhad/call_gate.h"
#include "rauhad/container/container_manager.h"
#include "rauhad/server/admit.h"

namespace rauha {

class ContainerServiceImpl final : public rauha::container::v1::ContainerService::Service {
 public:
  ContainerServiceImpl(container::ContainerManager* containers, CallGate* stream_calls)
      : containers_(containers), stream_calls_(stream_calls) {}

  grpc::Status CreateContainer(grpc::ServerContext*, const container::v1::CreateContainerRequest*,
                               container::v1::CreateContainerResponse*) override;
  grpc::Status StartContainer(grpc::ServerContext*, const container::v1::StartContainerRequest*,
                              container::v1::StartContainerResponse*) override;
  grpc::Status StopContainer(grpc::ServerContext*, const container::v1::StopContainerRequest*,
                             container::v1::StopContainerResponse*) override;
  grpc::Status KillContainer(grpc::ServerContext*, const container::v1::KillContainerRequest*,
                             container::v1::KillContainerResponse*) override;
  grpc::Status DeleteContainer(grpc::ServerContext*, const container::v1::DeleteContainerRequest*,
                               container::v1::DeleteContainerResponse*) override;
  grpc::Status GetContainer(grpc::ServerContext*, const container::v1::GetContainerRequest*,
                            container::v1::GetContainerResponse*) override;
  grpc::Status ListContainers(grpc::ServerContext*, const container::v1::ListContainersRequest*,
                              container::v1::ListContainersResponse*) override;
  grpc::Status ContainerLogs(grpc::ServerContext*, const container::v1::ContainerLogsRequest*,
                             grpc::ServerWriter<container::v1::ContainerLogEntry>*) override;
  grpc::Status WaitContainer(grpc::ServerContext*, const container::v1::WaitContainerRequest*,
                             container::v1::WaitContainerResponse*) override;
  grpc::Status ExecInContainer(grpc::ServerContext*, const container::v1::ExecInContainerRequest*,
                               container::v1::ExecInContainerResponse*) override;
  grpc::Status ExecStream(grpc::ServerContext*,
                          grpc::ServerReaderWriter<container::v1::ExecStreamResponse,
                                                   container::v1::ExecStreamRequest>*) override;
  grpc::Status RunContainer(grpc::ServerContext*, const container::v1::RunContainerRequest*,
                            grpc::ServerWriter<container::v1::RunContainerResponse>*) override;
  grpc::Status Attach(grpc::ServerContext*,
                      grpc::ServerReaderWriter<container::v1::AttachResponse,
                                               container::v1::AttachRequest>*) override;

  // RunContainer over either transport (gRPC above, rauhad's ttrpc endpoint for the CLI's fast
  // path: shim_endpoint.h): `write` sends one message of the stream and returns false once
  // the client is gone; `call` says when it is gone while nothing is written.
  absl::Status RunContainer(
      const CallControl& call, const container::v1::RunContainerRequest& req,
      const std::function<bool(const container::v1::RunContainerResponse&)>& write);

 private:
  container::ContainerManager* containers_;
  CallGate* stream_calls_;
};

}  // namespace rauha
