// `rauha sandbox [OPTIONS] -- CMD ARGS...`: one command in a zone, one JSON result.
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "rauha-cli/commands.h"
#include "rauha-cli/result_json.h"
#include "rauha-cli/signals.h"
#include "rauha-common/policy/policy.h"
#include "rauha/v1/sandbox.grpc.pb.h"

namespace rauha::cli {

const char kSandboxExitCodes[] =
    "Exit codes:\n"
    "  N        the command exited with N\n"
    "  128+N    the command was killed by signal N\n"
    "  124      the command ran past --timeout (status \"timed_out\")\n"
    "  125      rauha could not run it: status \"runtime_error\", or an error from rauha,\n"
    "           rauhad or gRPC (then no JSON; the reason is on stderr)\n"
    "  2        usage error\n"
    "  130/143  rauha got SIGINT/SIGTERM and cancelled the call (for sandbox, rauhad then\n"
    "           kills the task and removes its temporary zone)";

namespace {

namespace sv1 = rauha::sandbox::v1;

struct SandboxArgs {
  std::string zone;
  std::string repo_path;
  std::string workdir;
  bool keep_zone = false;
  uint32_t timeout_s = 0;
  std::vector<std::string> env;
  std::string policy_file;
  std::string preset;
  std::string image;
  std::string output_limit;
  bool json = false;  // accepted for symmetry: the result is always JSON
  std::vector<std::string> command;
};

// Builds the request, or returns the exit code of a usage (2) or local (125) error.
absl::StatusOr<sv1::RunSandboxRequest> BuildRequest(const SandboxArgs& a,
                                                    const std::vector<std::string>& command) {
  sv1::RunSandboxRequest req;
  req.set_image(a.image);
  for (const auto& word : command) req.add_command(word);
  req.set_name(a.zone);
  if (!a.repo_path.empty()) {
    char resolved[PATH_MAX];
    if (realpath(a.repo_path.c_str(), resolved) == nullptr) {
      return absl::InvalidArgumentError(
          rauha::StrCat("--repo-path ", a.repo_path, ": ", std::strerror(errno)));
    }
    req.set_repo_path(resolved);
  }
  req.set_workdir(a.workdir);
  req.set_keep_zone(a.keep_zone);
  req.set_timeout_seconds(a.timeout_s);
  auto& env = *req.mutable_env();
  for (const auto& kv : a.env) {
    size_t eq = kv.find('=');
    if (eq == 0) {
      return absl::InvalidArgumentError(rauha::StrCat("-e ", kv, ": expected KEY=VALUE"));
    }
    if (eq == std::string::npos) {
      // Like docker: a bare KEY passes this shell's value on.
      const char* value = std::getenv(kv.c_str());
      if (value == nullptr) {
        return absl::InvalidArgumentError(
            rauha::StrCat("-e ", kv, ": expected KEY=VALUE, and ", kv, " is not set here"));
      }
      env[kv] = value;
    } else {
      env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  if (!a.output_limit.empty()) {
    auto bytes = rauha::policy::ParseMemorySize(a.output_limit);
    if (!bytes.ok()) {
      return absl::InvalidArgumentError(rauha::StrCat("--output-limit ", a.output_limit, ": ",
                                                      rauha::ToStd(bytes.status().message())));
    }
    req.set_output_limit_bytes(*bytes);
  }
  RAUHA_ASSIGN_OR_RETURN(std::string policy, ReadPolicyText(a.policy_file, a.preset));
  req.set_policy_toml(policy);
  return req;
}

int RunSandbox(const Cli& cli, const SandboxArgs& a) {
  std::vector<std::string> command = a.command;
  command.insert(command.end(), cli.trailing.begin(), cli.trailing.end());
  if (command.empty()) {
    return Fail("sandbox: no command given (rauha sandbox [OPTIONS] -- CMD ARGS...)", kExitUsage);
  }
  auto req = BuildRequest(a, command);
  if (!req.ok()) return Fail(req.status(), kExitRuntimeError);
  auto stub = MakeStub<sv1::SandboxService>(cli);
  if (!stub.ok()) return Fail(stub.status(), kExitRuntimeError);

  grpc::ClientContext ctx;
  sv1::SandboxResult result;
  CancelOnSignal cancel(&ctx);
  grpc::Status s = (*stub)->RunSandbox(&ctx, *req, &result);
  return ReportSandboxCall(s, result, cancel.signal());
}

}  // namespace

int ReportSandboxCall(const grpc::Status& status, const sv1::SandboxResult& result,
                      int cancelled_by_signal) {
  if (!status.ok()) {
    if (cancelled_by_signal != 0) {
      PrintError(rauha::StrCat("cancelled by ", SignalName(cancelled_by_signal)));
      return ExitCodeForSignal(cancelled_by_signal);
    }
    return Fail(DescribeRpcError(status), kExitRuntimeError);
  }
  PrintJson(SandboxResultToJson(result));
  if (result.status() == "runtime_error" && !result.error().empty()) {
    PrintError(rauha::StrCat("runtime error: ", result.error()));
  }
  return ExitCodeForResult(result);
}

void AddSandboxCommand(CLI::App& app, Cli& cli) {
  auto a = std::make_shared<SandboxArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sandbox", "Run one command in a zone and print its result as one JSON object");
  cmd->add_option("--name", a->zone, "Run in this existing zone instead of a temporary one")
      ->type_name("ZONE");
  cmd->add_option("--repo-path", a->repo_path,
                  "Host directory mounted writable at /workspace (made absolute here)")
      ->type_name("DIR");
  cmd->add_option("--workdir", a->workdir,
                  "Working directory inside the zone (default: /workspace with --repo-path, "
                  "else /)")
      ->type_name("DIR");
  cmd->add_flag("--keep-zone", a->keep_zone, "Keep the temporary zone afterwards");
  cmd->add_option("--timeout", a->timeout_s, "Kill the command after S seconds (0: never)")
      ->type_name("S");
  cmd->add_option("-e,--env", a->env, "Environment variable for the command (repeatable)")
      ->type_name("K=V")
      ->allow_extra_args(false);
  auto* policy =
      cmd->add_option("--policy", a->policy_file, "Policy TOML file for the temporary zone")
          ->type_name("FILE");
  auto* preset = cmd->add_option("--preset", a->preset, "Shipped policy preset (e.g. strict)")
                     ->type_name("NAME");
  policy->excludes(preset);
  cmd->add_option("--image", a->image,
                  "OCI image (default: a read-only view of the host's system directories)")
      ->type_name("REF");
  cmd->add_option("--output-limit", a->output_limit,
                  "Bytes kept of each of stdout and stderr (e.g. 1048576, 4Mi)")
      ->type_name("BYTES");
  cmd->add_flag("--json", a->json, "Accepted for symmetry: the result is always JSON");
  cmd->add_option("CMD", a->command,
                  "The command and its arguments; put them after -- when they start with -");
  cmd->footer(rauha::StrCat(
      "Runs CMD in a fresh temporary zone (or in --name ZONE) and prints one JSON object:\n"
      "task_id, zone_id, zone_name, command, status, exit_code, signal, duration_ms,\n"
      "started_at, finished_at, stdout, stderr, *_truncated, resources, events,\n"
      "enforcement_events, enforcement_events_lost, error, unavailable_controls.\n\n"
      "Example:\n  rauha sandbox --repo-path . --timeout 600 -- pytest -x tests/\n\n",
      kSandboxExitCodes));
  cmd->callback([&cli, a] { cli.exit_code = RunSandbox(cli, *a); });
}

}  // namespace rauha::cli
