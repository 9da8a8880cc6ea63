#include "containerd-shim-rauha-v2/options.h"

#include <cstdlib>
#include <map>

namespace rauha::cshim {

absl::StatusOr<Options> ParseOptions(const std::vector<std::string>& args) {
  Options o;
  const std::map<std::string, std::string*> valued = {
      {"namespace", &o.ns}, {"address", &o.address}, {"publish-binary", &o.publish_binary},
      {"id", &o.id},        {"bundle", &o.bundle},   {"rauhad-socket", &o.rauhad_socket},
  };
  for (size_t i = 0; i < args.size(); i++) {
    std::string arg = args[i];
    if (arg.empty() || arg[0] != '-') {
      if (!o.action.empty()) return absl::InvalidArgumentError("more than one action: " + arg);
      o.action = arg;
      continue;
    }
    arg.erase(0, arg.find_first_not_of('-'));  // Go's flag package takes -x and --x
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    if (arg == "debug") {
      o.debug = !has_value || value == "true" || value == "1";
      continue;
    }
    auto it = valued.find(arg);
    if (it == valued.end()) return absl::InvalidArgumentError("unknown flag -" + arg);
    if (!has_value) {
      if (i + 1 >= args.size())
        return absl::InvalidArgumentError("flag -" + arg + " needs a value");
      value = args[++i];
    }
    *it->second = value;
  }
  if (o.action.empty()) {
    return absl::InvalidArgumentError("no action: expected start, delete (containerd runs these)");
  }
  if (o.action != "start" && o.action != "delete" && o.action != "serve") {
    return absl::InvalidArgumentError("unknown action \"" + o.action +
                                      "\": expected start or delete");
  }
  if (o.id.empty()) return absl::InvalidArgumentError("flag -id is required");
  if (o.rauhad_socket.empty()) {
    const char* env = std::getenv("RAUHA_SOCKET");
    o.rauhad_socket = env && *env ? env : "/run/rauha/rauhad.sock";
  }
  return o;
}

std::vector<std::string> ToArgs(const Options& o) {
  std::vector<std::string> out = {"-namespace", o.ns, "-address",       o.address,
                                  "-id",        o.id, "-rauhad-socket", o.rauhad_socket};
  if (!o.publish_binary.empty()) out.insert(out.end(), {"-publish-binary", o.publish_binary});
  if (!o.bundle.empty()) out.insert(out.end(), {"-bundle", o.bundle});
  if (o.debug) out.push_back("-debug");
  return out;
}

}  // namespace rauha::cshim
