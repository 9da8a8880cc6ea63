// What the shim reads from an OCI bundle's config.json: the process to run and the
// annotations that place it (CRI's sandbox grouping, rauha.io/zone, rauha.io/policy).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rauha::cshim {

struct BundleRlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t soft = 0;
  uint64_t hard = 0;
};

struct BundleProcess {
  std::vector<std::string> args;
  std::vector<std::string> env;  // "K=V"
  std::string cwd = "/";
  uint32_t uid = 0;
  uint32_t gid = 0;
  bool terminal = false;
  // process.capabilities: the effective and permitted sets within the bounding set; unset when
  // the spec has none (the zone's policy decides).
  std::optional<std::vector<std::string>> capabilities;
  std::vector<BundleRlimit> rlimits;
  bool no_new_privileges = false;
  uint16_t console_rows = 0;  // process.consoleSize
  uint16_t console_cols = 0;
};

// One entry of config.json's "mounts".
struct BundleMount {
  std::string destination;
  std::string type;  // "" when the spec leaves it out (a bind, by its options)
  std::string source;
  std::vector<std::string> options;
};

struct Bundle {
  BundleProcess process;
  std::vector<BundleMount> mounts;
  std::string hostname;  // config.json "hostname" (CRI: the pod's, on its sandbox)
  std::map<std::string, std::string> annotations;
  // linux.namespaces' network entry with a path: the namespace to join (CRI gives the pod's,
  // made by CNI, to its sandbox). Empty: none given.
  std::string netns_path;
};

inline constexpr char kSandboxIdAnnotation[] = "io.kubernetes.cri.sandbox-id";
inline constexpr char kZoneAnnotation[] = "rauha.io/zone";
inline constexpr char kPolicyAnnotation[] = "rauha.io/policy";

// Parses config.json text; InvalidArgument naming the field for a wrong type or no args.
absl::StatusOr<Bundle> ParseBundleConfig(const std::string& json_text);
// Parses an OCI process object (config.json's "process", or containerd's Exec spec, whose
// Any holds that JSON); InvalidArgument naming the field ("process.args ...").
absl::StatusOr<BundleProcess> ParseProcessJson(const std::string& json_text);
// Reads and parses <dir>/config.json.
absl::StatusOr<Bundle> LoadBundle(const std::string& dir);

// The pod a task belongs to: CRI's sandbox id annotation, else the task itself.
std::string GroupId(const Bundle& bundle, const std::string& task_id);
// The zone a pod runs in: annotation rauha.io/zone, else "k8s-" and the group id's first 12
// characters.
std::string ZoneName(const Bundle& bundle, const std::string& group_id);

}  // namespace rauha::cshim
