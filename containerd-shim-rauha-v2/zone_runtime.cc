#include "containerd-shim-rauha-v2/zone_runtime.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "rauha-cli/client.h"
#include "rauha/v1/process.grpc.pb.h"
#include "rauha/v1/zone.grpc.pb.h"

namespace rauha::cshim {
namespace {

absl::Status FromGrpc(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      what + ": " + s.error_message());
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> ZoneRuntime::Channel() {
  std::lock_guard lock(mu_);
  if (channel_) return channel_;
  cli::ClientOptions options;
  options.socket = socket_;
  auto channel = cli::Connect(options);
  if (!channel.ok()) return channel.status();
  channel_ = *channel;
  return channel_;
}

absl::Status ZoneRuntime::EnsureZone(const std::string& name, const std::string& policy_toml,
                                     const std::string& netns_path) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  rauha::zone::v1::CreateZoneRequest request;
  request.set_name(name);
  request.set_policy_toml(policy_toml);
  request.set_network_namespace(netns_path);
  rauha::zone::v1::CreateZoneResponse response;
  grpc::ClientContext ctx;
  grpc::Status s =
      rauha::zone::v1::ZoneService::NewStub(*channel)->CreateZone(&ctx, request, &response);
  if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) return absl::OkStatus();
  return FromGrpc(s, "create zone " + name);
}

absl::Status ZoneRuntime::RemoveZone(const std::string& name) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  rauha::zone::v1::DeleteZoneRequest request;
  request.set_name(name);
  request.set_force(true);
  rauha::zone::v1::DeleteZoneResponse response;
  grpc::ClientContext ctx;
  grpc::Status s =
      rauha::zone::v1::ZoneService::NewStub(*channel)->DeleteZone(&ctx, request, &response);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return absl::OkStatus();
  return FromGrpc(s, "delete zone " + name);
}

namespace zpb = rauha::zone::v1;

absl::Status ZoneRuntime::PauseZone(const std::string& name) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  zpb::PauseZoneRequest request;
  request.set_name(name);
  zpb::PauseZoneResponse response;
  grpc::ClientContext ctx;
  return FromGrpc(zpb::ZoneService::NewStub(*channel)->PauseZone(&ctx, request, &response),
                  "pause zone " + name);
}

absl::Status ZoneRuntime::ResumeZone(const std::string& name) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  zpb::ResumeZoneRequest request;
  request.set_name(name);
  zpb::ResumeZoneResponse response;
  grpc::ClientContext ctx;
  return FromGrpc(zpb::ZoneService::NewStub(*channel)->ResumeZone(&ctx, request, &response),
                  "resume zone " + name);
}

absl::StatusOr<zpb::ZoneStatsResponse> ZoneRuntime::ZoneStats(const std::string& name) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  zpb::ZoneStatsRequest request;
  request.set_zone_name(name);
  zpb::ZoneStatsResponse response;
  grpc::ClientContext ctx;
  grpc::Status s = zpb::ZoneService::NewStub(*channel)->ZoneStats(&ctx, request, &response);
  if (!s.ok()) return FromGrpc(s, "stats of zone " + name);
  return response;
}

absl::StatusOr<std::string> ZoneRuntime::GetPolicy(const std::string& name) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  zpb::GetPolicyRequest request;
  request.set_zone_name(name);
  zpb::GetPolicyResponse response;
  grpc::ClientContext ctx;
  grpc::Status s = zpb::ZoneService::NewStub(*channel)->GetPolicy(&ctx, request, &response);
  if (!s.ok()) return FromGrpc(s, "policy of zone " + name);
  return response.policy_toml();
}

absl::Status ZoneRuntime::ApplyPolicy(const std::string& name, const std::string& policy_toml) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  zpb::ApplyPolicyRequest request;
  request.set_zone_name(name);
  request.set_policy_toml(policy_toml);
  zpb::ApplyPolicyResponse response;
  grpc::ClientContext ctx;
  return FromGrpc(zpb::ZoneService::NewStub(*channel)->ApplyPolicy(&ctx, request, &response),
                  "apply the updated resources to zone " + name);
}

namespace ppb = rauha::process::v1;

absl::StatusOr<uint32_t> ZoneRuntime::StartProcess(const std::string& zone, const std::string& id,
                                                   const std::string& rootfs,
                                                   const std::string& join,
                                                   const BundleProcess& process,
                                                   const ProcessIo& io) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  ppb::StartProcessRequest request;
  request.set_zone_name(zone);
  request.set_process_id(id);
  request.set_rootfs(rootfs);
  for (const auto& a : process.args) request.add_args(a);
  for (const auto& e : process.env) request.add_env(e);
  request.set_cwd(process.cwd);
  if (process.uid != 0 || process.gid != 0) {
    request.set_uid(process.uid);
    request.set_gid(process.gid);
  }
  request.set_join_process(join);
  request.set_stdin_path(io.stdin_path());
  request.set_stdout_path(io.stdout_path());
  request.set_stderr_path(io.stderr_path());
  request.set_terminal(io.terminal());
  if (process.capabilities) {
    for (const auto& c : *process.capabilities) request.mutable_capabilities()->add_kept(c);
  }
  for (const auto& r : process.rlimits) {
    auto* l = request.add_rlimits();
    l->set_type(r.type);
    l->set_soft(r.soft);
    l->set_hard(r.hard);
  }
  ppb::StartProcessResponse response;
  grpc::ClientContext ctx;
  grpc::Status s = ppb::ProcessService::NewStub(*channel)->StartProcess(&ctx, request, &response);
  if (!s.ok()) return FromGrpc(s, "start " + id + " in zone " + zone);
  return response.pid();
}

absl::StatusOr<ppb::WaitProcessResponse> ZoneRuntime::WaitProcess(const std::string& id,
                                                                  grpc::ClientContext* ctx) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  ppb::WaitProcessRequest request;
  request.set_process_id(id);
  ppb::WaitProcessResponse response;
  grpc::Status s = ppb::ProcessService::NewStub(*channel)->WaitProcess(ctx, request, &response);
  if (!s.ok()) return FromGrpc(s, "wait for " + id);
  return response;
}

absl::Status ZoneRuntime::KillProcess(const std::string& id, int signal) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  ppb::KillProcessRequest request;
  request.set_process_id(id);
  request.set_signal(signal);
  ppb::KillProcessResponse response;
  grpc::ClientContext ctx;
  return FromGrpc(ppb::ProcessService::NewStub(*channel)->KillProcess(&ctx, request, &response),
                  "kill " + id);
}

absl::Status ZoneRuntime::DeleteProcess(const std::string& id) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  ppb::DeleteProcessRequest request;
  request.set_process_id(id);
  ppb::DeleteProcessResponse response;
  grpc::ClientContext ctx;
  grpc::Status s = ppb::ProcessService::NewStub(*channel)->DeleteProcess(&ctx, request, &response);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return absl::OkStatus();
  return FromGrpc(s, "delete " + id);
}

absl::StatusOr<std::string> ReadPolicyPreset(const std::string& name) {
  if (name.empty() ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
    return absl::InvalidArgumentError("annotation rauha.io/policy \"" + name +
                                      "\" is not a preset name ([a-z0-9_-]+)");
  }
  const char* env = std::getenv("RAUHA_POLICY_DIR");
  std::string path = std::string(env && *env ? env : "/etc/rauha/policies") + "/" + name + ".toml";
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("policy preset \"" + name + "\": cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace rauha::cshim
