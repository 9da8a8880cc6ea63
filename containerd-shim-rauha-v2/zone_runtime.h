// The shim's side of rauhad: the pod's zone (rauha.zone.v1) and the processes run in it
// (rauha.process.v1: on containerd's rootfs, with containerd's FIFOs as stdio, confined by the
// zone's policy). The same messages as rauhad's gRPC API, over ttrpc to rauhad's shim endpoint
// (rauhad/server/shim_endpoint.h) beside its gRPC socket: one shim runs per pod, and a gRPC
// client would cost each of them ~3 MiB.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "containerd-shim-rauha-v2/bundle.h"
#include "containerd-shim-rauha-v2/process_io.h"
#include "containerd-shim-rauha-v2/spec_mounts.h"
#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "google/protobuf/any.pb.h"
#include "rauha/v1/process.pb.h"
#include "rauha/v1/zone.pb.h"

namespace rauha::cshim {

class ZoneRuntime {
 public:
  // `rauhad_socket`: rauhad's gRPC socket (--socket); the shim endpoint listens beside it.
  explicit ZoneRuntime(const std::string& rauhad_socket);

  // Creates zone `name` with policy `policy_toml` ("": rauhad's default) whose tasks share the
  // network namespace at `netns_path` ("": the zone's own) and see `hostname` ("": derived
  // from the name); an existing zone of that name is joined as it is.
  absl::Status EnsureZone(const std::string& name, const std::string& policy_toml,
                          const std::string& netns_path = "", const std::string& hostname = "");
  // The zone a task being created runs in (pod_zone.cc). The pod's owner (its sandbox, or a
  // lone container) creates it: policy from annotation rauha.io/policy (a preset), else the
  // file runtime options' ConfigPath names, else rauhad's default; network namespace from the
  // spec's linux.namespaces, hostname from the spec's (the pod's). App containers join it as it
  // is.
  absl::Status EnsureTaskZone(const std::string& zone, bool owner, const Bundle& bundle,
                              const google::protobuf::Any& runtime_options);
  // Removes the zone, killing what still runs in it; NotFound is OK.
  absl::Status RemoveZone(const std::string& name);
  // Freezes / thaws the zone's cgroup (every process of the pod).
  absl::Status PauseZone(const std::string& name);
  absl::Status ResumeZone(const std::string& name);
  absl::StatusOr<rauha::zone::v1::ZoneStatsResponse> ZoneStats(const std::string& name);
  // The zone's policy as TOML, and a new one applied to the live zone (its cgroup limits).
  absl::StatusOr<std::string> GetPolicy(const std::string& name);
  absl::Status ApplyPolicy(const std::string& name, const std::string& policy_toml);

  // Starts `process` as `id` in zone `zone` on the mounted `rootfs`, or (an exec, `rootfs`
  // empty) in the root and namespaces of the running process `join`; stdio from `io`; the
  // spec's binds `mounts` (spec_mounts.h; none for an exec). Returns its pid.
  absl::StatusOr<uint32_t> StartProcess(const std::string& zone, const std::string& id,
                                        const std::string& rootfs, const std::string& join,
                                        const BundleProcess& process, const ProcessIo& io,
                                        const std::vector<SpecMount>& mounts = {});
  // Blocks until the process ends, at most `timeout`; `cancel` lets another thread end the
  // wait (Cancelled).
  absl::StatusOr<rauha::process::v1::WaitProcessResponse> WaitProcess(
      const std::string& id, ttrpc::CallCanceller* cancel,
      absl::Duration timeout = absl::InfiniteDuration());
  absl::Status KillProcess(const std::string& id, int signal);
  // Forgets an ended process; NotFound is OK.
  absl::Status DeleteProcess(const std::string& id);

 private:
  // The connection to rauhad, made at the first call and again after rauhad closed it (a
  // restart); calls share it.
  absl::StatusOr<std::shared_ptr<ttrpc::Client>> Connection();
  template <typename Response, typename Request>
  absl::StatusOr<Response> Call(const char* service, const char* method, const Request& request,
                                const std::string& what,
                                absl::Duration timeout = absl::InfiniteDuration(),
                                ttrpc::CallCanceller* cancel = nullptr);
  std::string endpoint_;
  std::mutex mu_;
  std::shared_ptr<ttrpc::Client> client_;
};

// The policy TOML of preset `name` from $RAUHA_POLICY_DIR or /etc/rauha/policies;
// InvalidArgument for a name that is not [a-z0-9_-]+, NotFound for an unknown preset.
absl::StatusOr<std::string> ReadPolicyPreset(const std::string& name);

// The policy TOML a pod's zone gets (pod_zone.cc): annotation rauha.io/policy's preset, else
// the file named by runtime options' ConfigPath (runtimeoptions.v1.Options, what containerd's
// CRI passes for `[... .runtimes.rauha.options] ConfigPath`), else "" (rauhad's default).
absl::StatusOr<std::string> PodPolicy(const Bundle& bundle,
                                      const google::protobuf::Any& runtime_options);

}  // namespace rauha::cshim
