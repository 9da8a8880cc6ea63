#include "containerd-shim-rauha-v2/bundle.h"

#include <fstream>
#include <sstream>

#include "nlohmann/json.hpp"

namespace rauha::cshim {

absl::StatusOr<Bundle> ParseBundleConfig(const std::string& json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("config.json: not a JSON object");
  Bundle b;
  auto bad = [](const std::string& field, const char* want) {
    return absl::InvalidArgumentError("config.json: " + field + " must be " + want);
  };
  if (j.contains("annotations")) {
    const auto& a = j["annotations"];
    if (!a.is_object()) return bad("annotations", "an object");
    for (const auto& [k, v] : a.items()) {
      if (!v.is_string()) return bad("annotations." + k, "a string");
      b.annotations[k] = v.get<std::string>();
    }
  }
  if (j.contains("linux") && j["linux"].is_object() && j["linux"].contains("namespaces")) {
    const auto& namespaces = j["linux"]["namespaces"];
    if (!namespaces.is_array()) return bad("linux.namespaces", "an array");
    for (const auto& ns : namespaces) {
      if (!ns.is_object() || !ns.contains("type") || !ns["type"].is_string()) {
        return bad("linux.namespaces[]", "objects with a string \"type\"");
      }
      if (ns["type"] != "network" || !ns.contains("path")) continue;
      if (!ns["path"].is_string()) return bad("linux.namespaces[network].path", "a string");
      b.netns_path = ns["path"].get<std::string>();
    }
  }
  if (!j.contains("process") || !j["process"].is_object()) return bad("process", "an object");
  const auto& p = j["process"];
  if (!p.contains("args") || !p["args"].is_array() || p["args"].empty()) {
    return bad("process.args", "a non-empty array of strings");
  }
  for (const auto& a : p["args"]) {
    if (!a.is_string()) return bad("process.args", "a non-empty array of strings");
    b.process.args.push_back(a.get<std::string>());
  }
  if (p.contains("env")) {
    if (!p["env"].is_array()) return bad("process.env", "an array of strings");
    for (const auto& e : p["env"]) {
      if (!e.is_string()) return bad("process.env", "an array of strings");
      b.process.env.push_back(e.get<std::string>());
    }
  }
  if (p.contains("cwd")) {
    if (!p["cwd"].is_string()) return bad("process.cwd", "a string");
    b.process.cwd = p["cwd"].get<std::string>();
  }
  if (p.contains("terminal")) {
    if (!p["terminal"].is_boolean()) return bad("process.terminal", "a boolean");
    b.process.terminal = p["terminal"].get<bool>();
  }
  if (p.contains("user")) {
    const auto& u = p["user"];
    if (!u.is_object()) return bad("process.user", "an object");
    for (const char* key : {"uid", "gid"}) {
      if (!u.contains(key)) continue;
      if (!u[key].is_number_unsigned()) return bad(std::string("process.user.") + key, "a uint32");
      (std::string(key) == "uid" ? b.process.uid : b.process.gid) = u[key].get<uint32_t>();
    }
  }
  return b;
}

absl::StatusOr<Bundle> LoadBundle(const std::string& dir) {
  std::ifstream in(dir + "/config.json");
  if (!in) return absl::NotFoundError("cannot read " + dir + "/config.json");
  std::stringstream text;
  text << in.rdbuf();
  return ParseBundleConfig(text.str());
}

std::string GroupId(const Bundle& bundle, const std::string& task_id) {
  auto it = bundle.annotations.find(kSandboxIdAnnotation);
  return it != bundle.annotations.end() && !it->second.empty() ? it->second : task_id;
}

std::string ZoneName(const Bundle& bundle, const std::string& group_id) {
  auto it = bundle.annotations.find(kZoneAnnotation);
  if (it != bundle.annotations.end() && !it->second.empty()) return it->second;
  return "k8s-" + group_id.substr(0, 12);
}

}  // namespace rauha::cshim
