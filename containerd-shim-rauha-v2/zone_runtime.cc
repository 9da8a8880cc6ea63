#include "containerd-shim-rauha-v2/zone_runtime.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "rauha-common/shim_endpoint_path.h"

namespace rauha::cshim {
namespace {

constexpr char kZoneService[] = "rauha.zone.v1.ZoneService";
constexpr char kProcessService[] = "rauha.process.v1.ProcessService";

}  // namespace

namespace zpb = rauha::zone::v1;
namespace ppb = rauha::process::v1;

ZoneRuntime::ZoneRuntime(const std::string& rauhad_socket)
    : endpoint_(ShimEndpointPath(rauhad_socket)) {}

absl::StatusOr<std::shared_ptr<ttrpc::Client>> ZoneRuntime::Connection() {
  std::lock_guard lock(mu_);
  if (client_ && client_->connected()) return client_;
  auto client = ttrpc::Client::Connect(endpoint_);
  if (!client.ok()) {
    return absl::UnavailableError("rauhad's shim endpoint " + endpoint_ + ": " +
                                  std::string(client.status().message()) +
                                  " (is rauhad running with this --socket?)");
  }
  client_ = std::move(*client);
  return client_;
}

template <typename Response, typename Request>
absl::StatusOr<Response> ZoneRuntime::Call(const char* service, const char* method,
                                           const Request& request, const std::string& what,
                                           absl::Duration timeout, ttrpc::CallCanceller* cancel) {
  auto client = Connection();
  if (!client.ok()) return client.status();
  absl::StatusOr<Response> response =
      (*client)->CallMethod<Response>(service, method, request, timeout, cancel);
  if (!response.ok()) {
    return absl::Status(response.status().code(),
                        what + ": " + std::string(response.status().message()));
  }
  return response;
}

absl::Status ZoneRuntime::EnsureZone(const std::string& name, const std::string& policy_toml,
                                     const std::string& netns_path, const std::string& hostname) {
  zpb::CreateZoneRequest request;
  request.set_name(name);
  request.set_policy_toml(policy_toml);
  request.set_network_namespace(netns_path);
  request.set_hostname(hostname);
  auto s =
      Call<zpb::CreateZoneResponse>(kZoneService, "CreateZone", request, "create zone " + name);
  if (s.status().code() == absl::StatusCode::kAlreadyExists) return absl::OkStatus();
  return s.status();
}

absl::Status ZoneRuntime::RemoveZone(const std::string& name) {
  zpb::DeleteZoneRequest request;
  request.set_name(name);
  request.set_force(true);
  auto s =
      Call<zpb::DeleteZoneResponse>(kZoneService, "DeleteZone", request, "delete zone " + name);
  if (s.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  return s.status();
}

absl::Status ZoneRuntime::PauseZone(const std::string& name) {
  zpb::PauseZoneRequest request;
  request.set_name(name);
  return Call<zpb::PauseZoneResponse>(kZoneService, "PauseZone", request, "pause zone " + name)
      .status();
}

absl::Status ZoneRuntime::ResumeZone(const std::string& name) {
  zpb::ResumeZoneRequest request;
  request.set_name(name);
  return Call<zpb::ResumeZoneResponse>(kZoneService, "ResumeZone", request, "resume zone " + name)
      .status();
}

absl::StatusOr<zpb::ZoneStatsResponse> ZoneRuntime::ZoneStats(const std::string& name) {
  zpb::ZoneStatsRequest request;
  request.set_zone_name(name);
  return Call<zpb::ZoneStatsResponse>(kZoneService, "ZoneStats", request, "stats of zone " + name);
}

absl::StatusOr<std::string> ZoneRuntime::GetPolicy(const std::string& name) {
  zpb::GetPolicyRequest request;
  request.set_zone_name(name);
  auto response =
      Call<zpb::GetPolicyResponse>(kZoneService, "GetPolicy", request, "policy of zone " + name);
  if (!response.ok()) return response.status();
  return response->policy_toml();
}

absl::Status ZoneRuntime::ApplyPolicy(const std::string& name, const std::string& policy_toml) {
  zpb::ApplyPolicyRequest request;
  request.set_zone_name(name);
  request.set_policy_toml(policy_toml);
  return Call<zpb::ApplyPolicyResponse>(kZoneService, "ApplyPolicy", request,
                                        "apply the updated resources to zone " + name)
      .status();
}

absl::StatusOr<uint32_t> ZoneRuntime::StartProcess(const std::string& zone, const std::string& id,
                                                   const std::string& rootfs,
                                                   const std::string& join,
                                                   const BundleProcess& process,
                                                   const ProcessIo& io,
                                                   const std::vector<SpecMount>& mounts) {
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
  for (const auto& m : mounts) {
    auto* pm = request.add_mounts();
    pm->set_source(m.source);
    pm->set_destination(m.destination);
    pm->set_readonly(m.readonly);
    pm->set_runtime_state(m.runtime_state);
    pm->set_termination_log(m.termination_log);
  }
  auto response = Call<ppb::StartProcessResponse>(kProcessService, "StartProcess", request,
                                                  "start " + id + " in zone " + zone);
  if (!response.ok()) return response.status();
  return response->pid();
}

absl::StatusOr<ppb::WaitProcessResponse> ZoneRuntime::WaitProcess(const std::string& id,
                                                                  ttrpc::CallCanceller* cancel,
                                                                  absl::Duration timeout) {
  ppb::WaitProcessRequest request;
  request.set_process_id(id);
  return Call<ppb::WaitProcessResponse>(kProcessService, "WaitProcess", request, "wait for " + id,
                                        timeout, cancel);
}

absl::Status ZoneRuntime::KillProcess(const std::string& id, int signal) {
  ppb::KillProcessRequest request;
  request.set_process_id(id);
  request.set_signal(signal);
  return Call<ppb::KillProcessResponse>(kProcessService, "KillProcess", request, "kill " + id)
      .status();
}

absl::Status ZoneRuntime::DeleteProcess(const std::string& id) {
  ppb::DeleteProcessRequest request;
  request.set_process_id(id);
  auto s =
      Call<ppb::DeleteProcessResponse>(kProcessService, "DeleteProcess", request, "delete " + id);
  if (s.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  return s.status();
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
