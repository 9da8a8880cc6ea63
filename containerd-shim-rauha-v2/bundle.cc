#include "containerd-shim-rauha-v2/bundle.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "nlohmann/json.hpp"

namespace rauha::cshim {

namespace {

absl::Status Bad(const std::string& field, const char* want) {
  return absl::InvalidArgumentError("OCI spec: process." + field + " must be " + want);
}

absl::StatusOr<std::vector<std::string>> Strings(const nlohmann::json& j,
                                                 const std::string& field) {
  if (!j.is_array()) return Bad(field, "an array of strings");
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string()) return Bad(field, "an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

absl::StatusOr<BundleProcess> ParseProcess(const nlohmann::json& p) {
  BundleProcess process;
  if (!p.contains("args") || !p["args"].is_array() || p["args"].empty()) {
    return Bad("args", "a non-empty array of strings");
  }
  auto args = Strings(p["args"], "args");
  if (!args.ok()) return args.status();
  process.args = *std::move(args);
  if (p.contains("env")) {
    auto env = Strings(p["env"], "env");
    if (!env.ok()) return env.status();
    process.env = *std::move(env);
  }
  if (p.contains("cwd")) {
    if (!p["cwd"].is_string()) return Bad("cwd", "a string");
    process.cwd = p["cwd"].get<std::string>();
  }
  if (p.contains("terminal")) {
    if (!p["terminal"].is_boolean()) return Bad("terminal", "a boolean");
    process.terminal = p["terminal"].get<bool>();
  }
  if (p.contains("noNewPrivileges")) {
    if (!p["noNewPrivileges"].is_boolean()) return Bad("noNewPrivileges", "a boolean");
    process.no_new_privileges = p["noNewPrivileges"].get<bool>();
  }
  if (p.contains("user")) {
    const auto& u = p["user"];
    if (!u.is_object()) return Bad("user", "an object");
    for (const char* key : {"uid", "gid"}) {
      if (!u.contains(key)) continue;
      if (!u[key].is_number_unsigned()) return Bad(std::string("user.") + key, "a uint32");
      (std::string(key) == "uid" ? process.uid : process.gid) = u[key].get<uint32_t>();
    }
  }
  if (p.contains("consoleSize")) {
    const auto& c = p["consoleSize"];
    if (!c.is_object()) return Bad("consoleSize", "an object");
    for (const char* key : {"height", "width"}) {
      if (!c.contains(key)) continue;
      if (!c[key].is_number_unsigned() || c[key].get<uint64_t>() > 0xFFFF) {
        return Bad(std::string("consoleSize.") + key, "a uint16");
      }
      (std::string(key) == "height" ? process.console_rows : process.console_cols) =
          c[key].get<uint16_t>();
    }
  }
  if (p.contains("capabilities")) {
    const auto& c = p["capabilities"];
    if (!c.is_object()) return Bad("capabilities", "an object");
    std::map<std::string, std::vector<std::string>> sets;
    for (const char* key : {"bounding", "effective", "permitted"}) {
      if (!c.contains(key)) continue;
      auto set = Strings(c[key], std::string("capabilities.") + key);
      if (!set.ok()) return set.status();
      sets[key] = *std::move(set);
    }
    // The process runs with what it may use (effective or permitted), never past the bounding
    // set; the shim keeps one set.
    std::vector<std::string> kept;
    for (const char* key : {"effective", "permitted"}) {
      for (const auto& cap : sets[key]) {
        bool bounded = !sets.contains("bounding") ||
                       std::find(sets["bounding"].begin(), sets["bounding"].end(), cap) !=
                           sets["bounding"].end();
        if (bounded && std::find(kept.begin(), kept.end(), cap) == kept.end()) kept.push_back(cap);
      }
    }
    process.capabilities = std::move(kept);
  }
  if (p.contains("rlimits")) {
    if (!p["rlimits"].is_array()) return Bad("rlimits", "an array");
    for (const auto& r : p["rlimits"]) {
      if (!r.is_object() || !r.contains("type") || !r["type"].is_string() || !r.contains("soft") ||
          !r["soft"].is_number_unsigned() || !r.contains("hard") ||
          !r["hard"].is_number_unsigned()) {
        return Bad("rlimits", "an array of {type: string, soft: uint64, hard: uint64}");
      }
      process.rlimits.push_back(
          {r["type"].get<std::string>(), r["soft"].get<uint64_t>(), r["hard"].get<uint64_t>()});
    }
  }
  return process;
}

}  // namespace

absl::StatusOr<BundleProcess> ParseProcessJson(const std::string& json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("process spec: not a JSON object");
  return ParseProcess(j);
}

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
  if (j.contains("hostname")) {
    if (!j["hostname"].is_string()) return bad("hostname", "a string");
    b.hostname = j["hostname"].get<std::string>();
  }
  if (j.contains("mounts")) {
    if (!j["mounts"].is_array()) return bad("mounts", "an array");
    for (const auto& m : j["mounts"]) {
      if (!m.is_object() || !m.contains("destination") || !m["destination"].is_string()) {
        return bad("mounts[]", "objects with a string \"destination\"");
      }
      BundleMount mount;
      mount.destination = m["destination"].get<std::string>();
      for (const char* key : {"type", "source"}) {
        if (!m.contains(key)) continue;
        if (!m[key].is_string()) return bad("mounts[" + mount.destination + "]." + key, "a string");
        (std::string(key) == "type" ? mount.type : mount.source) = m[key].get<std::string>();
      }
      if (m.contains("options")) {
        if (!m["options"].is_array()) {
          return bad("mounts[" + mount.destination + "].options", "an array of strings");
        }
        for (const auto& o : m["options"]) {
          if (!o.is_string()) return bad("mounts[" + mount.destination + "].options", "strings");
          mount.options.push_back(o.get<std::string>());
        }
      }
      b.mounts.push_back(std::move(mount));
    }
  }
  if (!j.contains("process") || !j["process"].is_object()) return bad("process", "an object");
  auto process = ParseProcess(j["process"]);
  if (!process.ok()) return process.status();
  b.process = *std::move(process);
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
