#include "rauhad/container/container.h"

namespace rauha::container {

using nlohmann::json;

json ToJson(const Container& c) {
  json j = {{"id", c.id},
            {"name", c.name},
            {"zone_id", c.zone_id},
            {"zone_name", c.zone_name},
            {"temporary_zone", c.temporary_zone},
            {"image", c.image},
            {"image_digest", c.image_digest},
            {"layer_digests", c.layer_digests},
            {"layer_dirs", c.layer_dirs},
            {"command", c.command},
            {"env", c.env},
            {"workdir", c.workdir},
            {"uid", c.uid},
            {"gid", c.gid},
            {"exposed_ports", c.exposed_ports},
            {"tty", c.tty},
            {"open_stdin", c.open_stdin},
            {"auto_remove", c.auto_remove},
            {"state", c.state},
            {"pid", c.pid},
            {"created_at", c.created_at},
            {"started_at", c.started_at},
            {"finished_at", c.finished_at}};
  if (c.exit_code) j["exit_code"] = *c.exit_code;
  return j;
}

absl::StatusOr<Container> ContainerFromJson(const json& j) {
  try {
    Container c;
    c.id = j.at("id").get<std::string>();
    c.name = j.at("name").get<std::string>();
    c.zone_id = j.at("zone_id").get<std::string>();
    c.zone_name = j.at("zone_name").get<std::string>();
    c.temporary_zone = j.value("temporary_zone", false);
    c.image = j.at("image").get<std::string>();
    c.image_digest = j.value("image_digest", "");
    c.layer_digests = j.at("layer_digests").get<std::vector<std::string>>();
    c.layer_dirs = j.at("layer_dirs").get<std::vector<std::string>>();
    c.command = j.at("command").get<std::vector<std::string>>();
    c.env = j.at("env").get<std::vector<std::string>>();
    c.workdir = j.value("workdir", "/");
    c.uid = j.value("uid", int64_t{-1});
    c.gid = j.value("gid", int64_t{-1});
    c.exposed_ports = j.value("exposed_ports", std::vector<std::string>());
    c.tty = j.value("tty", false);
    c.open_stdin = j.value("open_stdin", false);
    c.auto_remove = j.value("auto_remove", false);
    c.state = j.at("state").get<std::string>();
    c.pid = j.value("pid", int64_t{0});
    if (j.contains("exit_code")) c.exit_code = j.at("exit_code").get<int>();
    c.created_at = j.value("created_at", "");
    c.started_at = j.value("started_at", "");
    c.finished_at = j.value("finished_at", "");
    if (c.state != kCreated && c.state != kRunning && c.state != kStopped) {
      return absl::InvalidArgumentError("unknown container state \"" + c.state + "\"");
    }
    return c;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(std::string("container record: ") + e.what());
  }
}

}  // namespace rauha::container
