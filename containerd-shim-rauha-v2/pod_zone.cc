// Which zone a containerd task runs in, and how the pod's owner creates it: policy and network
// namespace from what CRI puts in the bundle and the runtime options.
#include <fstream>
#include <sstream>

#include "containerd-shim-rauha-v2/zone_runtime.h"
#include "github.com/containerd/containerd/pkg/runtimeoptions/v1/api.pb.h"

namespace rauha::cshim {

absl::StatusOr<std::string> PodPolicy(const Bundle& bundle,
                                      const google::protobuf::Any& runtime_options) {
  if (auto it = bundle.annotations.find(kPolicyAnnotation); it != bundle.annotations.end()) {
    return ReadPolicyPreset(it->second);
  }
  // containerd sends the bare type name (no type.googleapis.com/ prefix).
  const std::string& type = runtime_options.type_url();
  if (type.empty()) return std::string();
  if (type != "runtimeoptions.v1.Options" && !type.ends_with("/runtimeoptions.v1.Options")) {
    return absl::InvalidArgumentError(
        "runtime options of type " + type +
        " are not understood: rauha takes runtimeoptions.v1.Options (ConfigPath, a policy TOML)");
  }
  runtimeoptions::v1::Options options;
  if (!options.ParseFromString(runtime_options.value())) {
    return absl::InvalidArgumentError("runtime options: runtimeoptions.v1.Options does not parse");
  }
  const std::string& path = options.config_path();
  if (path.empty()) return std::string();
  if (path[0] != '/') {
    return absl::InvalidArgumentError("runtime options ConfigPath \"" + path +
                                      "\" must be an absolute path to a policy TOML file");
  }
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("runtime options ConfigPath: cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status ZoneRuntime::EnsureTaskZone(const std::string& zone, bool owner, const Bundle& bundle,
                                         const google::protobuf::Any& runtime_options) {
  // An app container's namespaces are the sandbox's (/proc/<pause pid>/ns/...): the zone has
  // them already.
  if (!owner) return EnsureZone(zone, "");
  auto policy = PodPolicy(bundle, runtime_options);
  if (!policy.ok()) return policy.status();
  return EnsureZone(zone, *policy, bundle.netns_path, bundle.hostname);
}

}  // namespace rauha::cshim
