// What of an OCI image config a task honours (config.Entrypoint, Cmd, Env, WorkingDir, User;
// ExposedPorts as information), and the User resolved to numbers through the image's own
// /etc/passwd and /etc/group.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rauha::image {

struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "K=V"
  std::string working_dir;
  std::string user;  // "", "uid", "uid:gid", "name", "name:group"
  // config.ExposedPorts' keys as docker shows them ("8080/tcp"; a bare "53" is "53/tcp"),
  // in port order, then protocol order.
  std::vector<std::string> exposed_ports;
};

// InvalidArgument naming the field for a config that is not JSON or has wrong types, or an
// ExposedPorts key that is not PORT[/tcp|udp|sctp] with PORT in 1-65535.
absl::StatusOr<ImageConfig> ParseImageConfig(const std::string& config_json);

struct UserIds {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// `user` as numbers. Names are looked up in etc/passwd and etc/group of the merged image
// (`layer_dirs` top first: the topmost layer holding the file, or a whiteout of it, decides);
// a uid alone takes its passwd group, else 0. InvalidArgument for an unknown name.
absl::StatusOr<UserIds> ResolveImageUser(const std::string& user,
                                         const std::vector<std::string>& layer_dirs);

}  // namespace rauha::image
