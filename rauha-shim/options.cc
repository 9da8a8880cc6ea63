#include "rauha-shim/options.h"

#include <cstdlib>
#include <string_view>

#include "rauha-common/hostname.h"
#include "rauha-common/strcat.h"

namespace rauha::shim {
namespace {

constexpr char kUsage[] =
    "usage: rauha-shim --zone-id ID --zone-name NAME --socket PATH --state-dir DIR "
    "--network isolated|host [--netns PATH] [--hostname NAME] [--userns HOST_FIRST] [--ready-fd N] "
    "[--log PATH]";

bool ParseFd(std::string_view text, int* out) {
  if (text.empty() || text.size() > 9) return false;
  int v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  bool have_network = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view name = arg;
    std::string_view value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (name == "--help" || name == "-h") return absl::InvalidArgumentError(kUsage);
    if (!has_value) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(StrCat("flag ", name, " needs a value; ", kUsage));
      }
      value = argv[++i];
    }
    if (name == "--zone-id") {
      o.zone_id = value;
    } else if (name == "--zone-name") {
      o.zone_name = value;
    } else if (name == "--socket") {
      o.socket_path = value;
    } else if (name == "--state-dir") {
      o.state_dir = value;
    } else if (name == "--log") {
      o.log_path = value;
    } else if (name == "--network") {
      if (value == "isolated") {
        o.isolated_network = true;
      } else if (value == "host") {
        o.isolated_network = false;
      } else {
        return absl::InvalidArgumentError(
            StrCat("--network must be \"isolated\" or \"host\", not \"", value, "\""));
      }
      have_network = true;
    } else if (name == "--netns") {
      if (value.empty() || value[0] != '/') {
        return absl::InvalidArgumentError(
            StrCat("--netns must be an absolute path to a network namespace, not \"", value, "\""));
      }
      o.netns_path = value;
    } else if (name == "--hostname") {
      if (!IsHostname(value)) {
        return absl::InvalidArgumentError(
            StrCat("--hostname must be labels of 1-63 [A-Za-z0-9-] joined by '.', 64 bytes at "
                   "most, not \"",
                   value, "\""));
      }
      o.hostname = value;
    } else if (name == "--userns") {
      uint64_t first = 0;
      bool digits = !value.empty() && value.size() <= 10;
      for (char c : value) {
        digits = digits && c >= '0' && c <= '9';
        if (digits) first = first * 10 + static_cast<uint64_t>(c - '0');
      }
      if (!digits || first == 0 || first + 65536 > 0xFFFFFFFFull) {
        return absl::InvalidArgumentError(StrCat(
            "--userns must be the first host id of the zone's 65536 (1 .. 4294901759), not \"",
            value, "\""));
      }
      o.userns_first = static_cast<uint32_t>(first);
    } else if (name == "--ready-fd") {
      if (!ParseFd(value, &o.ready_fd)) {
        return absl::InvalidArgumentError(
            StrCat("--ready-fd must be a file descriptor number, not \"", value, "\""));
      }
    } else {
      return absl::InvalidArgumentError(StrCat("unknown flag ", name, "; ", kUsage));
    }
  }
  const char* missing = nullptr;
  if (o.zone_id.empty())
    missing = "--zone-id";
  else if (o.zone_name.empty())
    missing = "--zone-name";
  else if (o.socket_path.empty())
    missing = "--socket";
  else if (o.state_dir.empty())
    missing = "--state-dir";
  else if (!have_network)
    missing = "--network";
  if (missing) return absl::InvalidArgumentError(StrCat(missing, " is required; ", kUsage));
  if (!o.netns_path.empty() && !o.isolated_network) {
    return absl::InvalidArgumentError("--netns needs --network isolated (not the host's network)");
  }
  if (o.socket_path.size() >= 108) {
    return absl::InvalidArgumentError(StrCat("--socket ", o.socket_path,
                                             " is longer than a unix socket path may be "
                                             "(107 bytes); choose a shorter path"));
  }
  if (o.state_dir[0] != '/' || o.socket_path[0] != '/') {
    return absl::InvalidArgumentError("--state-dir and --socket must be absolute paths");
  }
  return o;
}

int FindReadyFd(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    int fd = -1;
    if (arg == "--ready-fd" && i + 1 < argc && ParseFd(argv[i + 1], &fd)) return fd;
    if (arg.starts_with("--ready-fd=") && ParseFd(arg.substr(11), &fd)) return fd;
  }
  return -1;
}

}  // namespace rauha::shim
