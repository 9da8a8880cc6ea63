// `rauha policy ...`: validate (local), show, apply; and reading --policy / --preset for the
// commands that send a policy.
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/status/status.h"
#include "rauha-cli/commands.h"
#include "rauha-common/policy/policy.h"
#include "rauha/v1/zone.grpc.pb.h"

#ifndef RAUHA_SOURCE_DIR
#error "RAUHA_SOURCE_DIR must name the source tree (its policies/ holds the presets)"
#endif

namespace rauha::cli {
namespace {

namespace zv1 = rauha::zone::v1;

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        rauha::StrCat("cannot read policy file ", path, ": ", std::strerror(errno)));
  }
  // One byte past the limit is enough for ParsePolicy's located error; a huge file named by
  // mistake is not read whole.
  std::string text(rauha::policy::kMaxPolicyBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

// The preset file for NAME: $RAUHA_POLICY_DIR/NAME.toml when that is set; otherwise the first
// of /etc/rauha/policies (installed) and the source tree's policies/ (a build) that exists.
absl::StatusOr<std::string> PresetPath(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    return absl::InvalidArgumentError(
        rauha::StrCat("--preset ", name,
                      ": a preset is a bare name such as \"standard\"; use --policy FILE "
                      "for a file"));
  }
  std::string dir;
  if (const char* env = std::getenv("RAUHA_POLICY_DIR"); env != nullptr && *env != '\0') {
    dir = env;
  } else if (IsDirectory("/etc/rauha/policies")) {
    dir = "/etc/rauha/policies";
  } else {
    dir = RAUHA_SOURCE_DIR "/policies";
  }
  std::string path = rauha::StrCat(dir, "/", name, ".toml");
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(rauha::StrCat(
        "no preset \"", name, "\": ", path, ": ", std::strerror(errno),
        " (presets are the .toml files of ", dir, "; set RAUHA_POLICY_DIR to use another folder)"));
  }
  return path;
}

// "<source>:<line>:<col>: <message>" -> "<source>:<line>:<col>: warning: <message>", the
// compiler style editors understand.
std::string CompilerStyleWarning(const std::string& source, const std::string& warning) {
  size_t at = warning.rfind(source, 0) == 0 ? warning.find(": ", source.size()) : 0;
  if (at == 0 || at == std::string::npos) return "warning: " + warning;
  return warning.substr(0, at) + ": warning:" + warning.substr(at + 1);
}

// A policy file or preset read and checked here, so errors name the file, line and column.
struct CheckedPolicy {
  std::string path;
  std::string text;
  // As for a zone with a network namespace of its own: only rauhad knows a zone's network.
  std::vector<std::string> warnings;
};

absl::StatusOr<CheckedPolicy> ReadAndCheckPolicy(const std::string& file,
                                                 const std::string& preset) {
  CheckedPolicy p;
  p.path = file;
  if (p.path.empty()) {
    RAUHA_ASSIGN_OR_RETURN(p.path, PresetPath(preset));
  }
  RAUHA_ASSIGN_OR_RETURN(p.text, ReadFile(p.path));
  auto parsed = rauha::policy::ParsePolicy(p.text, p.path, &p.warnings);
  if (!parsed.ok()) return parsed.status();
  return p;
}

int RunValidate(const std::string& file, bool json) {
  std::vector<std::string> warnings;
  auto policy = rauha::policy::LoadPolicyFile(file, &warnings);
  if (json) {
    Json out = {{"file", file}, {"valid", policy.ok()}};
    if (!policy.ok()) out["error"] = rauha::ToStd(policy.status().message());
    out["warnings"] = warnings;
    PrintJson(out);
  } else if (policy.ok()) {
    for (const auto& w : warnings) std::cerr << Printable(CompilerStyleWarning(file, w)) << '\n';
    std::cout << Printable(file) << ": valid" << (warnings.empty() ? "" : " (with warnings)")
              << '\n';
  } else {
    // Compiler style, no "rauha:" prefix, so editors can jump to FILE:LINE:COL.
    std::cerr << rauha::ToStd(policy.status().message()) << '\n';
  }
  return policy.ok() ? 0 : 1;
}

int RunShow(const Cli& cli, const std::string& zone, bool json) {
  auto stub = MakeStub<zv1::ZoneService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  zv1::GetPolicyRequest req;
  req.set_zone_name(zone);
  zv1::GetPolicyResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = (*stub)->GetPolicy(&ctx, req, &resp);
  if (!s.ok()) return Fail(DescribeRpcError(s));
  if (json) {
    PrintJson({{"zone", zone}, {"policy_toml", resp.policy_toml()}});
  } else {
    std::cout << resp.policy_toml();
    if (!resp.policy_toml().empty() && resp.policy_toml().back() != '\n') std::cout << '\n';
  }
  return 0;
}

struct ApplyArgs {
  std::string zone;
  std::string file;
  std::string preset;
  bool json = false;
};

int RunApply(const Cli& cli, const ApplyArgs& a) {
  if (a.file.empty() && a.preset.empty()) {
    return Fail("policy apply: give a policy FILE or --preset NAME", kExitUsage);
  }
  auto policy = ReadAndCheckPolicy(a.file, a.preset);
  if (!policy.ok()) return Fail(policy.status());
  auto stub = MakeStub<zv1::ZoneService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  zv1::ApplyPolicyRequest req;
  req.set_zone_name(a.zone);
  req.set_policy_toml(policy->text);
  zv1::ApplyPolicyResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = (*stub)->ApplyPolicy(&ctx, req, &resp);
  if (!s.ok()) return Fail(DescribeRpcError(s));
  // rauhad's warnings, not the local check's: rauhad knows the zone's network (a zone in a
  // pod's network namespace enforces rules an isolated one could not). Located in the file.
  constexpr std::string_view kSent = "<policy_toml>";
  for (std::string w : resp.policy_warnings()) {
    if (w.starts_with(kSent)) w.replace(0, kSent.size(), policy->path);
    std::cerr << Printable(CompilerStyleWarning(policy->path, w)) << '\n';
  }
  const std::string source = a.file.empty() ? "preset " + a.preset : a.file;
  if (a.json) {
    PrintJson({{"zone", a.zone},
               {"applied", true},
               {"source", source},
               {"policy_warnings", std::vector<std::string>(resp.policy_warnings().begin(),
                                                            resp.policy_warnings().end())}});
  } else {
    std::cout << "applied " << Printable(source) << " to zone " << Printable(a.zone) << '\n';
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::string> ReadPolicyText(const std::string& file, const std::string& preset) {
  if (file.empty() && preset.empty()) return std::string();
  RAUHA_ASSIGN_OR_RETURN(CheckedPolicy p, ReadAndCheckPolicy(file, preset));
  // Located in the file here; rauhad would name its copy "<policy_toml>". True of the zones
  // these commands make, which have their own network namespace.
  for (const auto& w : p.warnings) std::cerr << Printable(CompilerStyleWarning(p.path, w)) << '\n';
  return std::move(p.text);
}

void AddPolicyCommands(CLI::App& app, Cli& cli) {
  CLI::App* policy = app.add_subcommand("policy", "Check, show and apply zone policies");
  policy->require_subcommand(1);
  {
    struct Args {
      std::string file;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = policy->add_subcommand(
        "validate", "Check a policy file here, without rauhad; exits 1 when it is invalid");
    cmd->add_option("FILE", a->file, "Policy TOML file")->required();
    cmd->add_flag("--json", a->json, "Print {file, valid, error} as JSON");
    cmd->footer(
        "Prints \"FILE: valid\", or the first error as FILE:LINE:COL: message. A valid policy "
        "may carry warnings (FILE:LINE:COL: warning: ..., on stderr), e.g. network rules on an "
        "isolated zone, which have no effect.");
    cmd->callback([&cli, a] { cli.exit_code = RunValidate(a->file, a->json); });
  }
  {
    struct Args {
      std::string zone;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = policy->add_subcommand("show", "Print a zone's policy as canonical TOML");
    cmd->add_option("ZONE", a->zone, "Zone name")->required();
    cmd->add_flag("--json", a->json, "Print {zone, policy_toml} as JSON");
    cmd->callback([&cli, a] { cli.exit_code = RunShow(cli, a->zone, a->json); });
  }
  {
    auto a = std::make_shared<ApplyArgs>();
    CLI::App* cmd = policy->add_subcommand(
        "apply", "Replace a zone's policy (an invalid policy changes nothing)");
    cmd->add_option("ZONE", a->zone, "Zone name")->required();
    auto* file = cmd->add_option("FILE", a->file, "Policy TOML file");
    auto* preset = cmd->add_option("--preset", a->preset, "Shipped preset instead of a FILE")
                       ->type_name("NAME");
    file->excludes(preset);
    cmd->add_flag("--json", a->json, "Print {zone, applied, source} as JSON");
    cmd->callback([&cli, a] { cli.exit_code = RunApply(cli, *a); });
  }
}

}  // namespace rauha::cli
