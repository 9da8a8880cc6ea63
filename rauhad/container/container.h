// One container as rauhad records it: what runs (resolved from the image at create), where,
// and its state. Stored as the data column of the containers table (store.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rauha::container {

// The state names clients see (API.md).
inline constexpr const char kCreated[] = "Created";
inline constexpr const char kRunning[] = "Running";
inline constexpr const char kPaused[] = "Paused";
inline constexpr const char kStopped[] = "Stopped";

struct Container {
  std::string id;  // UUID
  std::string name;
  std::string zone_id;
  std::string zone_name;
  bool temporary_zone = false;  // created for this container, deleted with it
  std::string image;            // as the request named it
  std::string image_digest;     // the manifest it resolved to
  std::vector<std::string> layer_digests;
  std::vector<std::string> layer_dirs;  // unpacked, top first
  std::vector<std::string> command;
  std::vector<std::string> env;  // "K=V", the image's under the request's
  std::string workdir = "/";
  int64_t uid = -1;  // -1: root, unchanged
  int64_t gid = -1;
  std::vector<std::string> exposed_ports;  // the image's, as information ("8080/tcp")
  bool tty = false;
  bool open_stdin = false;
  bool auto_remove = false;      // removed by rauhad once it has stopped (run --rm)
  std::string state = kCreated;  // kCreated, kRunning or kStopped (kPaused is the zone's)
  int64_t pid = 0;               // of its init, in the shim's pid namespace, while running
  std::optional<int> exit_code;
  std::string created_at;
  std::string started_at;
  std::string finished_at;
};

nlohmann::json ToJson(const Container& c);
absl::StatusOr<Container> ContainerFromJson(const nlohmann::json& j);

// The container's process: the shim task that runs it (its id, reused by each start).
inline const std::string& TaskIdOf(const Container& c) { return c.id; }

}  // namespace rauha::container
