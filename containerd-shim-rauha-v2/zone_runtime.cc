#include "containerd-shim-rauha-v2/zone_runtime.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "rauha-cli/client.h"
#include "rauha/v1/sandbox.grpc.pb.h"
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
  if (channel_) return channel_;
  cli::ClientOptions options;
  options.socket = socket_;
  auto channel = cli::Connect(options);
  if (!channel.ok()) return channel.status();
  channel_ = *channel;
  return channel_;
}

absl::Status ZoneRuntime::EnsureZone(const std::string& name, const std::string& policy_preset) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  rauha::zone::v1::CreateZoneRequest request;
  request.set_name(name);
  if (!policy_preset.empty()) {
    auto toml = ReadPolicyPreset(policy_preset);
    if (!toml.ok()) return toml.status();
    request.set_policy_toml(*toml);
  }
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

absl::StatusOr<rauha::sandbox::v1::SandboxResult> ZoneRuntime::Run(const std::string& zone,
                                                                   const BundleProcess& process,
                                                                   grpc::ClientContext* ctx) {
  auto channel = Channel();
  if (!channel.ok()) return channel.status();
  rauha::sandbox::v1::RunSandboxRequest request;
  request.set_name(zone);
  request.set_keep_zone(true);
  for (const auto& a : process.args) request.add_command(a);
  for (const auto& e : process.env) {
    auto eq = e.find('=');
    if (eq == std::string::npos) continue;
    (*request.mutable_env())[e.substr(0, eq)] = e.substr(eq + 1);
  }
  request.set_workdir(process.cwd);
  if (process.uid != 0) request.set_uid(process.uid);
  if (process.gid != 0) request.set_gid(process.gid);
  rauha::sandbox::v1::SandboxResult result;
  grpc::Status s =
      rauha::sandbox::v1::SandboxService::NewStub(*channel)->RunSandbox(ctx, request, &result);
  if (!s.ok()) return FromGrpc(s, "run in zone " + zone);
  return result;
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
