#include "rauhad/image/image_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include "nlohmann/json.hpp"
#include "rauha-common/fd.h"
#include "rauha-common/open_in_root.h"
#include "rauha-common/strcat.h"
#include "rauha-common/utf8.h"

namespace rauha::image {
namespace {

using json = nlohmann::json;

absl::Status ReadStrings(const json& obj, const char* key, std::vector<std::string>& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) {
    return absl::InvalidArgumentError(StrCat("image config.", key, " is not an array"));
  }
  for (const auto& e : *it) {
    if (!e.is_string()) {
      return absl::InvalidArgumentError(StrCat("image config.", key, " holds a non-string"));
    }
    out.push_back(e.get<std::string>());
  }
  return absl::OkStatus();
}

std::optional<uint32_t> Number(std::string_view s) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// The merged view's etc/<name>: the topmost layer that has it (or hides it) decides. Read
// in root of that layer, capped at 1 MiB.
std::optional<std::string> ReadMerged(const std::vector<std::string>& layers, const char* name) {
  for (const auto& dir : layers) {
    UniqueFd root(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) continue;
    std::string rel = StrCat("etc/", name);
    UniqueFd entry(OpenInRoot(root.get(), rel.c_str(), O_PATH | O_NOFOLLOW));
    struct stat st;
    if (!entry || ::fstat(entry.get(), &st) < 0) continue;
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return std::nullopt;  // whiteout
    UniqueFd fd(OpenInRoot(root.get(), rel.c_str(), O_RDONLY));
    if (!fd) return std::nullopt;
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof(buf))) > 0 && out.size() < (1u << 20)) {
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  return std::nullopt;
}

// Field `index` (0-based, ':'-separated) of the line whose first field is `key` (or, if
// `by_number`, whose third field is).
std::optional<std::vector<std::string>> FindEntry(const std::string& file, std::string_view key,
                                                  bool by_number) {
  size_t pos = 0;
  while (pos < file.size()) {
    size_t end = file.find('\n', pos);
    if (end == std::string::npos) end = file.size();
    std::string_view line(file.data() + pos, end - pos);
    pos = end + 1;
    std::vector<std::string> fields;
    size_t f = 0;
    while (true) {
      size_t c = line.find(':', f);
      fields.emplace_back(line.substr(f, c == std::string_view::npos ? line.npos : c - f));
      if (c == std::string_view::npos) break;
      f = c + 1;
    }
    if (fields.size() < 3) continue;
    if ((by_number ? fields[2] : fields[0]) == key) return fields;
  }
  return std::nullopt;
}

// config.ExposedPorts: an object whose keys are "PORT/PROTO" (values are empty objects).
absl::Status ReadExposedPorts(const json& cfg, std::vector<std::string>& out) {
  auto it = cfg.find("ExposedPorts");
  if (it == cfg.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_object()) {
    return absl::InvalidArgumentError("image config.ExposedPorts is not an object");
  }
  std::vector<std::pair<uint32_t, std::string>> ports;
  for (const auto& [key, value] : it->items()) {
    std::string_view k = key;
    size_t slash = k.find('/');
    std::optional<uint32_t> port = Number(k.substr(0, slash));
    std::string proto = slash == std::string_view::npos ? "tcp" : std::string(k.substr(slash + 1));
    for (char& ch : proto) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!port || *port == 0 || *port > 65535 ||
        (proto != "tcp" && proto != "udp" && proto != "sctp")) {
      return absl::InvalidArgumentError(
          StrCat("image config.ExposedPorts key \"", ToValidUtf8(key),
                 "\" is not PORT[/PROTO] (PORT 1-65535, PROTO tcp, udp or sctp)"));
    }
    ports.emplace_back(*port, std::move(proto));
  }
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  for (const auto& [port, proto] : ports) out.push_back(StrCat(port, "/", proto));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ImageConfig> ParseImageConfig(const std::string& config_json) {
  json j = json::parse(config_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("the image config is not a JSON object");
  }
  ImageConfig c;
  auto cfg = j.find("config");
  if (cfg == j.end() || cfg->is_null()) return c;
  if (!cfg->is_object()) return absl::InvalidArgumentError("image config.config is not an object");
  if (absl::Status s = ReadStrings(*cfg, "Entrypoint", c.entrypoint); !s.ok()) return s;
  if (absl::Status s = ReadStrings(*cfg, "Cmd", c.cmd); !s.ok()) return s;
  if (absl::Status s = ReadStrings(*cfg, "Env", c.env); !s.ok()) return s;
  for (const char* key : {"WorkingDir", "User"}) {
    auto it = cfg->find(key);
    if (it == cfg->end() || it->is_null()) continue;
    if (!it->is_string()) {
      return absl::InvalidArgumentError(StrCat("image config.", key, " is not a string"));
    }
    (std::string_view(key) == "User" ? c.user : c.working_dir) = it->get<std::string>();
  }
  if (absl::Status s = ReadExposedPorts(*cfg, c.exposed_ports); !s.ok()) return s;
  return c;
}

absl::StatusOr<UserIds> ResolveImageUser(const std::string& user,
                                         const std::vector<std::string>& layer_dirs) {
  if (user.empty()) return UserIds{};
  size_t colon = user.find(':');
  std::string_view name = std::string_view(user).substr(0, colon);
  std::string_view group =
      colon == std::string::npos ? std::string_view() : std::string_view(user).substr(colon + 1);
  UserIds ids;
  std::optional<std::string> passwd;
  if (auto uid = Number(name)) {
    ids.uid = *uid;
    if (group.empty()) {
      passwd = ReadMerged(layer_dirs, "passwd");
      auto e = passwd ? FindEntry(*passwd, name, true) : std::nullopt;
      if (e && e->size() > 3) ids.gid = Number((*e)[3]).value_or(0);
    }
  } else {
    passwd = ReadMerged(layer_dirs, "passwd");
    auto e = passwd ? FindEntry(*passwd, name, false) : std::nullopt;
    if (!e || e->size() < 4 || !Number((*e)[2]) || !Number((*e)[3])) {
      return absl::InvalidArgumentError(
          StrCat("image user \"", name, "\" is not in the image's /etc/passwd"));
    }
    ids.uid = *Number((*e)[2]);
    ids.gid = *Number((*e)[3]);
  }
  if (!group.empty()) {
    if (auto gid = Number(group)) {
      ids.gid = *gid;
    } else {
      auto groups = ReadMerged(layer_dirs, "group");
      auto e = groups ? FindEntry(*groups, group, false) : std::nullopt;
      if (!e || !Number((*e)[2])) {
        return absl::InvalidArgumentError(
            StrCat("image group \"", group, "\" is not in the image's /etc/group"));
      }
      ids.gid = *Number((*e)[2]);
    }
  }
  return ids;
}

}  // namespace rauha::image
