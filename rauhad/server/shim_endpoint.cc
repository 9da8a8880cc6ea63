#include "rauhad/server/shim_endpoint.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "rauha-common/api_metadata.h"
#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"
#include "rauha/v1/process.pb.h"
#include "rauha/v1/zone.pb.h"
#include "rauhad/config.h"
#include "rauhad/server/container_ttrpc.h"
#include "rauhad/server/invalid_utf8.h"

namespace rauha {
namespace {

namespace zpb = rauha::zone::v1;
namespace ppb = rauha::process::v1;

constexpr char kZoneService[] = "rauha.zone.v1.ZoneService";
constexpr char kProcessService[] = "rauha.process.v1.ProcessService";
constexpr char kSandboxService[] = "rauha.sandbox.v1.SandboxService";
namespace spb = rauha::sandbox::v1;

CallControl ControlOf(const ttrpc::CallContext& ctx) {
  CallControl call;
  call.cancelled = [closed = ctx.connection_closed] { return closed && closed->load(); };
  if (ctx.deadline != absl::InfiniteFuture()) call.deadline = absl::ToChronoTime(ctx.deadline);
  return call;
}

// A method whose answer is an empty message: `f` says only how it went.
template <typename Request, typename Response>
void RegisterEmpty(ttrpc::Server& server, const char* service, const char* method,
                   std::function<absl::Status(const ttrpc::CallContext&, const Request&)> f) {
  server.RegisterMethod<Request, Response>(
      service, method,
      [f = std::move(f)](const ttrpc::CallContext& ctx,
                         const Request& req) -> absl::StatusOr<Response> {
        if (absl::Status s = f(ctx, req); !s.ok()) return s;
        return Response();
      });
}

// A method that fills its answer.
template <typename Request, typename Response>
void RegisterFilled(
    ttrpc::Server& server, const char* service, const char* method,
    std::function<absl::Status(const ttrpc::CallContext&, const Request&, Response*)> f) {
  server.RegisterMethod<Request, Response>(
      service, method,
      [f = std::move(f)](const ttrpc::CallContext& ctx,
                         const Request& req) -> absl::StatusOr<Response> {
        Response resp;
        if (absl::Status s = f(ctx, req, &resp); !s.ok()) return s;
        return resp;
      });
}

// RunSandbox: the request decoded here rather than by RegisterMethod, so that its limits and
// errors are gRPC's (the interceptors of the gRPC server are not on this path).
absl::StatusOr<std::string> RunSandboxOverTtrpc(SandboxServiceImpl* sandboxes,
                                                const ttrpc::CallContext& ctx,
                                                const std::string& payload) {
  if (payload.size() > static_cast<size_t>(kMaxRequestBytes)) {
    return absl::ResourceExhaustedError(StrCat("Received message larger than max (", payload.size(),
                                               " vs. ", kMaxRequestBytes, ")"));
  }
  spb::RunSandboxRequest req;
  (void)TakeInvalidUtf8Field();  // a stale name from this thread's earlier parse
  if (!req.ParseFromString(payload)) {
    std::string path = RequestFieldPath(req.GetDescriptor(), TakeInvalidUtf8Field());
    if (!path.empty()) return absl::InvalidArgumentError(InvalidUtf8Message(path));
    return absl::InvalidArgumentError("cannot decode rauha.sandbox.v1.RunSandboxRequest");
  }
  SpanTrace trace("rauhad", "ttrpc RunSandbox");
  auto result = sandboxes->RunSandbox(ControlOf(ctx), req, [&ctx](const std::string& task_id) {
    if (ctx.send_metadata) ctx.send_metadata(kTaskIdMetadataKey, task_id);
  });
  if (!result.ok()) return result.status();
  return result->SerializeAsString();
}

}  // namespace

ShimEndpoint::ShimEndpoint(ZoneServiceImpl* zones, ProcessServiceImpl* processes,
                           SandboxServiceImpl* sandboxes, ContainerServiceImpl* containers) {
  // The gRPC socket is rauhad's, mode 0600: its owner and root reach it. The same here, by
  // the peer's credentials (a socket's mode alone depends on the directory's too).
  const uid_t self = ::geteuid();
  server_.SetPeerFilter([self](const ucred& peer) { return peer.uid == 0 || peer.uid == self; });

  RegisterFilled<zpb::CreateZoneRequest, zpb::CreateZoneResponse>(
      server_, kZoneService, "CreateZone",
      [zones](const ttrpc::CallContext& ctx, const zpb::CreateZoneRequest& req,
              zpb::CreateZoneResponse* resp) {
        SpanTrace trace("rauhad", "shim-endpoint CreateZone");
        return zones->CreateZone(ControlOf(ctx), req, resp);
      });
  RegisterEmpty<zpb::DeleteZoneRequest, zpb::DeleteZoneResponse>(
      server_, kZoneService, "DeleteZone",
      [zones](const ttrpc::CallContext& ctx, const zpb::DeleteZoneRequest& req) {
        SpanTrace trace("rauhad", "shim-endpoint DeleteZone");
        return zones->DeleteZone(ControlOf(ctx), req);
      });
  RegisterFilled<zpb::ApplyPolicyRequest, zpb::ApplyPolicyResponse>(
      server_, kZoneService, "ApplyPolicy",
      [zones](const ttrpc::CallContext& ctx, const zpb::ApplyPolicyRequest& req,
              zpb::ApplyPolicyResponse* resp) {
        return zones->ApplyPolicy(ControlOf(ctx), req, resp);
      });
  RegisterFilled<zpb::GetPolicyRequest, zpb::GetPolicyResponse>(
      server_, kZoneService, "GetPolicy",
      [zones](const ttrpc::CallContext&, const zpb::GetPolicyRequest& req,
              zpb::GetPolicyResponse* resp) { return zones->GetPolicy(req, resp); });
  RegisterFilled<zpb::ZoneStatsRequest, zpb::ZoneStatsResponse>(
      server_, kZoneService, "ZoneStats",
      [zones](const ttrpc::CallContext&, const zpb::ZoneStatsRequest& req,
              zpb::ZoneStatsResponse* resp) { return zones->ZoneStats(req, resp); });
  RegisterEmpty<zpb::PauseZoneRequest, zpb::PauseZoneResponse>(
      server_, kZoneService, "PauseZone",
      [zones](const ttrpc::CallContext&, const zpb::PauseZoneRequest& req) {
        return zones->PauseZone(req);
      });
  RegisterEmpty<zpb::ResumeZoneRequest, zpb::ResumeZoneResponse>(
      server_, kZoneService, "ResumeZone",
      [zones](const ttrpc::CallContext&, const zpb::ResumeZoneRequest& req) {
        return zones->ResumeZone(req);
      });

  RegisterFilled<ppb::StartProcessRequest, ppb::StartProcessResponse>(
      server_, kProcessService, "StartProcess",
      [processes](const ttrpc::CallContext&, const ppb::StartProcessRequest& req,
                  ppb::StartProcessResponse* resp) {
        SpanTrace trace("rauhad", "shim-endpoint StartProcess");
        return processes->StartProcess(req, resp);
      });
  RegisterFilled<ppb::WaitProcessRequest, ppb::WaitProcessResponse>(
      server_, kProcessService, "WaitProcess",
      [processes](const ttrpc::CallContext& ctx, const ppb::WaitProcessRequest& req,
                  ppb::WaitProcessResponse* resp) {
        return processes->WaitProcess(ControlOf(ctx), req, resp);
      });
  RegisterEmpty<ppb::KillProcessRequest, ppb::KillProcessResponse>(
      server_, kProcessService, "KillProcess",
      [processes](const ttrpc::CallContext&, const ppb::KillProcessRequest& req) {
        return processes->KillProcess(req);
      });
  RegisterEmpty<ppb::DeleteProcessRequest, ppb::DeleteProcessResponse>(
      server_, kProcessService, "DeleteProcess",
      [processes](const ttrpc::CallContext&, const ppb::DeleteProcessRequest& req) {
        return processes->DeleteProcess(req);
      });

  if (sandboxes != nullptr) {
    server_.SetMaxResponsePayload(kMaxRunSandboxResponse);
    server_.Register(kSandboxService, "RunSandbox",
                     [sandboxes](const ttrpc::CallContext& ctx, const std::string& payload) {
                       return RunSandboxOverTtrpc(sandboxes, ctx, payload);
                     });
  }
  if (containers != nullptr) {
    server_.Register(kContainerServiceName, "RunContainer",
                     [containers](const ttrpc::CallContext& ctx, const std::string& payload) {
                       return RunContainerOverTtrpc(containers, ctx, payload);
                     });
    server_.Register(kContainerServiceName, "KillContainer",
                     [containers](const ttrpc::CallContext& ctx, const std::string& payload) {
                       return KillContainerOverTtrpc(containers, ctx, payload);
                     });
  }
}

absl::Status ShimEndpoint::Serve(const std::string& path) {
  absl::StatusOr<UniqueFd> listener = ttrpc::ListenUnix(path);
  if (!listener.ok()) return listener.status();
  path_ = path;
  server_.Serve(std::move(*listener));
  return absl::OkStatus();
}

void ShimEndpoint::Shutdown() {
  server_.Shutdown();
  // Handlers run on detached threads and use the services: let them finish while those live.
  // A WaitProcess notices its closed connection within ProcessRunner's 200 ms slice.
  for (int i = 0; i < 100 && server_.active_requests() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    path_.clear();
  }
}

}  // namespace rauha
