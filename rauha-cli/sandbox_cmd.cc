// `rauha sandbox [OPTIONS] -- CMD ARGS...`: one command in a zone, one JSON result.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "rauha-cli/commands.h"
#include "rauha-cli/pull_display.h"
#include "rauha-cli/result_json.h"
#include "rauha-cli/sandbox_args.h"
#include "rauha-cli/sandbox_call.h"
#include "rauha-cli/sandbox_stream.h"
#include "rauha-cli/signals.h"
#include "rauha-common/api_metadata.h"
#include "rauha-common/policy/policy.h"
#include "rauha/v1/image.grpc.pb.h"
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
  std::string timeout;     // seconds, fractions allowed
  std::string kill_after;  // seconds, fractions allowed
  std::vector<std::string> env;
  std::string policy_file;
  std::string preset;
  std::string image;
  std::string pull = "missing";  // --pull: missing, always or never
  std::string output_limit;
  std::string output_dir;
  std::string user;         // UID[:GID] or a user name of this host
  bool pass_stdin = false;  // -i
  bool stream = false;      // --stream: the output live (RunSandboxStream)
  bool tty = false;         // -t: a terminal in the zone (implies --stream)
  bool json = false;        // with --stream: the JSON result at the end instead of a summary
  std::vector<std::string> command;
};

// The flags that need more than CLI11's checks: InvalidArgument means a usage error (exit 2).
absl::Status CheckUsage(const SandboxArgs& a, sv1::RunSandboxRequest& req) {
  if (!a.timeout.empty()) {
    RAUHA_ASSIGN_OR_RETURN(uint64_t ms, ParseSeconds("--timeout", a.timeout));
    req.set_timeout_ms(ms);
    // For a rauhad that knows only the public field: whole seconds, rounded up.
    req.set_timeout_seconds(static_cast<uint32_t>((ms + 999) / 1000));
  }
  if (!a.kill_after.empty()) {
    RAUHA_ASSIGN_OR_RETURN(uint64_t ms, ParseSeconds("--kill-after", a.kill_after));
    req.set_kill_after_ms(ms);
  }
  if (!a.user.empty()) RAUHA_RETURN_IF_ERROR(ParseUser(a.user, req));
  if (!a.output_limit.empty()) {
    RAUHA_ASSIGN_OR_RETURN(uint64_t bytes, ParseOutputLimit(a.output_limit));
    req.set_output_limit_bytes(bytes);
  }
  return absl::OkStatus();
}

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
  if (!a.output_dir.empty()) {
    // Made here (like a shell redirection would), then named absolutely for rauhad.
    if (::mkdir(a.output_dir.c_str(), 0700) < 0 && errno != EEXIST) {
      return absl::InvalidArgumentError(
          rauha::StrCat("--output-dir ", a.output_dir, ": ", std::strerror(errno)));
    }
    char resolved[PATH_MAX];
    if (realpath(a.output_dir.c_str(), resolved) == nullptr) {
      return absl::InvalidArgumentError(
          rauha::StrCat("--output-dir ", a.output_dir, ": ", std::strerror(errno)));
    }
    req.set_output_dir(resolved);
  }
  req.set_workdir(a.workdir);
  req.set_keep_zone(a.keep_zone);
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
  RAUHA_ASSIGN_OR_RETURN(std::string policy, ReadPolicyText(a.policy_file, a.preset));
  req.set_policy_toml(policy);
  return req;
}

// Whether rauhad's store holds `image` (Inspect answers NOT_FOUND otherwise).
absl::StatusOr<bool> ImageHeld(const Cli& cli, const std::string& image) {
  auto stub = MakeStub<rauha::image::v1::ImageService>(cli);
  if (!stub.ok()) return stub.status();
  grpc::ClientContext ctx;
  rauha::image::v1::InspectRequest req;
  req.set_reference(image);
  rauha::image::v1::InspectResponse resp;
  grpc::Status s = (*stub)->Inspect(&ctx, req, &resp);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return false;
  if (!s.ok()) return absl::UnavailableError(DescribeRpcError(s));
  return true;
}

// Pulls the image with its progress on stderr (stdout is the JSON result's alone), then pins
// the request to the manifest pulled, so the task runs on what was just fetched even if the
// tag moves meanwhile. Returns 0, or the exit code of the error it printed.
int PullForSandbox(const Cli& cli, const std::string& image, sv1::RunSandboxRequest& req) {
  std::fprintf(stderr, "pulling %s\n", image.c_str());
  std::string digest;
  int code = PullWithProgress(cli, image, stderr, kExitRuntimeError, &digest);
  if (code != 0) return code;
  std::fprintf(stderr, "pulled %s %s\n", image.c_str(), digest.c_str());
  req.set_image(digest);
  return 0;
}

// A RunSandbox call's outcome. When rauhad went away after the task started (it sent the id
// once the task was recorded), the task lives on in its shim and a restarted rauhad has its
// result: say which task to collect.
int ReportRunSandbox(const SandboxCall& call) {
  if (call.status.error_code() == grpc::StatusCode::UNAVAILABLE && call.cancelled_by_signal == 0 &&
      !call.task_id.empty()) {
    return Fail(rauha::StrCat("rauhad went away while task ", call.task_id,
                              " ran; collect its result with `rauha task wait ", call.task_id,
                              "` (", DescribeRpcError(call.status), ")"),
                kExitRuntimeError);
  }
  return ReportSandboxCall(call.status, call.result, call.cancelled_by_signal);
}

int RunSandbox(const Cli& cli, const SandboxArgs& a) {
  // Before any connection (a signal cancels the call, the fast path's too).
  StartSignalWatcher();
  if (std::string both = CommandOnBothSidesOfDashes(a.command, cli.trailing); !both.empty()) {
    return Fail(both, kExitUsage);
  }
  std::vector<std::string> command = a.command.empty() ? cli.trailing : a.command;
  if (command.empty() && a.image.empty()) {
    return Fail("sandbox: no command given (rauha sandbox [OPTIONS] -- CMD ARGS...)", kExitUsage);
  }
  // Checked before anything is done (--output-dir is made by BuildRequest).
  sv1::RunSandboxRequest checked;
  if (auto usage = CheckUsage(a, checked); !usage.ok()) {
    return Fail(rauha::StrCat("sandbox: ", rauha::ToStd(usage.message())), kExitUsage);
  }
  auto req = BuildRequest(a, command);
  if (!req.ok()) return Fail(req.status(), kExitRuntimeError);
  req->MergeFrom(checked);
  if (a.stream || a.tty) {
    if (!a.image.empty() && a.pull == "always") {
      if (int code = PullForSandbox(cli, a.image, *req); code != 0) return code;
    } else if (!a.image.empty() && a.pull == "missing") {
      auto held = ImageHeld(cli, a.image);
      if (!held.ok()) return Fail(held.status(), kExitRuntimeError);
      if (!*held) {
        if (int code = PullForSandbox(cli, a.image, *req); code != 0) return code;
      }
    }
    return RunSandboxStreaming(cli, *req, {a.pass_stdin, a.tty, a.json});
  }
  if (a.pass_stdin) {
    auto input = ReadStdin(0);
    if (!input.ok()) return Fail(input.status(), kExitRuntimeError);
    req->set_stdin_data(*std::move(input));
  }
  if (!a.image.empty() && a.pull == "always") {
    // rauhad must answer before the pull: its error, not the pull's, when it is not there.
    if (auto channel = Connect(cli.client); !channel.ok()) {
      return Fail(channel.status(), kExitRuntimeError);
    }
    if (int code = PullForSandbox(cli, a.image, *req); code != 0) return code;
  }
  // Over rauhad's ttrpc endpoint when it is there (no gRPC client in this process), else gRPC
  // (sandbox_call.h).
  auto call = RunSandboxCall(cli.client, *req);
  if (!call.ok()) return Fail(call.status(), kExitRuntimeError);
  if (call->status.error_code() != grpc::StatusCode::NOT_FOUND || a.image.empty() ||
      a.pull != "missing" || call->cancelled_by_signal != 0) {
    return ReportRunSandbox(*call);
  }
  // rauhad refuses an image it does not hold before it makes anything (no zone, no task), so
  // the call can be made again once the image is there. Another NOT_FOUND is reported as is.
  auto held = ImageHeld(cli, a.image);
  if (!held.ok()) return Fail(held.status(), kExitRuntimeError);
  if (*held) return ReportSandboxCall(call->status, call->result, 0);
  if (int code = PullForSandbox(cli, a.image, *req); code != 0) return code;
  auto again = RunSandboxCall(cli.client, *req);
  if (!again.ok()) return Fail(again.status(), kExitRuntimeError);
  return ReportRunSandbox(*again);
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
  cmd->add_option("--user", a->user,
                  "Run as this user: UID[:GID] (GID defaults to UID) or a user name of this host; "
                  "no capabilities, no supplementary groups (default: root with the policy's "
                  "capabilities)")
      ->type_name("UID[:GID]");
  cmd->add_flag("-i,--stdin", a->pass_stdin,
                "Pass this stdin to the command: read to EOF first, at most 1 MiB, seen by the "
                "command as a file (default: /dev/null); with --stream or -t, passed live as it "
                "comes, unbounded");
  cmd->add_flag("--stream", a->stream,
                "Print the command's stdout and stderr here as they come (all of it, whatever "
                "--output-limit), then a one-line summary on stderr (or the JSON result with "
                "--json); SIGINT/SIGTERM go to the command, a second one cancels");
  cmd->add_flag("-t,--tty", a->tty,
                "Give the command a terminal in the zone and put this one in raw mode (keys, "
                "^C included, go to the command; window size follows); implies --stream. "
                "Use -it for a shell");
  cmd->add_option("--output-dir", a->output_dir,
                  "Also write the complete stdout and stderr, unbounded, to DIR/stdout and "
                  "DIR/stderr (DIR is made if missing); the JSON keeps the --output-limit head")
      ->type_name("DIR");
  cmd->add_option("--timeout", a->timeout,
                  "After S seconds (fractions allowed, e.g. 0.5; 0: never) send SIGTERM to "
                  "every process of the command, then SIGKILL after --kill-after")
      ->type_name("S");
  cmd->add_option(
         "--kill-after", a->kill_after,
         "Grace between SIGTERM and SIGKILL at the timeout (default 5; 0: SIGKILL at once)")
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
  cmd->add_option("--pull", a->pull,
                  "With --image: missing (default) pulls the image when rauhad does not hold "
                  "it, always pulls it first, never only runs what is held (progress on stderr)")
      ->check(CLI::IsMember({"missing", "always", "never"}))
      ->type_name("WHEN");
  cmd->add_option("--output-limit", a->output_limit,
                  "Bytes kept of each of stdout and stderr in the result: 1 to 1Mi (1048576, "
                  "also the default; e.g. 4096, 64Ki)")
      ->type_name("BYTES");
  cmd->add_flag("--json", a->json,
                "With --stream or -t: print the JSON result on stdout at the end instead of the "
                "summary (without them the result is always JSON)");
  cmd->add_option("CMD", a->command,
                  "The command and its arguments; put them after -- when they start with -");
  cmd->footer(rauha::StrCat(
      "Runs CMD in a fresh temporary zone (or in --name ZONE) and prints one JSON object:\n"
      "task_id, zone_id, zone_name, command, status, exit_code, signal, duration_ms,\n"
      "started_at, finished_at, stdout, stderr (text; when a stream is not UTF-8 the exact\n"
      "bytes are also in stdout_base64 / stderr_base64), *_truncated, resources, events,\n"
      "enforcement_events, enforcement_events_lost, error, unavailable_controls.\n\n"
      "With --stream the output comes live and the result is summarised on stderr (--json:\n"
      "printed at the end); -it gives an interactive terminal (rauha sandbox -it -- bash).\n\n"
      "Example:\n  rauha sandbox --repo-path . --timeout 600 -- pytest -x tests/\n\n",
      kSandboxExitCodes));
  cmd->callback([&cli, a] { cli.exit_code = RunSandbox(cli, *a); });
}

}  // namespace rauha::cli
