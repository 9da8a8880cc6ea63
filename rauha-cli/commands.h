// The command groups of `rauha`, each registered on the CLI11 app by its own file, and the few
// helpers they share. A command's callback stores its exit code in Cli::exit_code.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "rauha-cli/client.h"
#include "rauha-cli/output.h"
#include "rauha-cli/result_json.h"
#include "rauha-cli/signals.h"
#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauha/v1/sandbox.pb.h"

namespace rauha::cli {

struct Cli {
  ClientOptions client;
  std::vector<std::string> trailing;  // the words after "--" (the command of `rauha sandbox`)
  int exit_code = 0;
};

void AddZoneCommands(CLI::App& app, Cli& cli);       // zone_cmd.cc
void AddPolicyCommands(CLI::App& app, Cli& cli);     // policy_cmd.cc
void AddSandboxCommand(CLI::App& app, Cli& cli);     // sandbox_cmd.cc
void AddTaskCommands(CLI::App& app, Cli& cli);       // task_cmd.cc
void AddEventsCommand(CLI::App& app, Cli& cli);      // events_cmd.cc
void AddInfoCommand(CLI::App& app, Cli& cli);        // info_cmd.cc
void AddVersionCommand(CLI::App& app, Cli& cli);     // version_cmd.cc
void AddImageCommands(CLI::App& app, Cli& cli);      // image_cmd.cc
void AddAuditCommands(CLI::App& app, Cli& cli);      // audit_cmd.cc
void AddContainerCommands(CLI::App& app, Cli& cli);  // container_cmd.cc
void AddSecretCommands(CLI::App& app, Cli& cli);     // secret_cmd.cc

// A connected stub for `Service`, or the "cannot reach rauhad" error. Starts the signal
// watcher first (signals.h): its mask must be in place before gRPC starts its threads.
template <typename Service>
absl::StatusOr<std::unique_ptr<typename Service::Stub>> MakeStub(const Cli& cli) {
  StartSignalWatcher();
  auto channel = Connect(cli.client);
  if (!channel.ok()) return channel.status();
  return Service::NewStub(*channel);
}

// Prints "rauha: <message>" and returns `code`.
inline int Fail(std::string_view message, int code = 1) {
  PrintError(message);
  return code;
}
inline int Fail(const absl::Status& status, int code = 1) {
  return Fail(rauha::ToStd(status.message()), code);
}

// The policy TOML of --policy FILE or --preset NAME (at most one is non-empty; both empty
// gives ""), checked locally first so errors name the file, line and column, its warnings (as
// for a zone with its own network namespace) printed on stderr. Presets are
// NAME.toml in $RAUHA_POLICY_DIR, else /etc/rauha/policies, else the source tree's policies/.
absl::StatusOr<std::string> ReadPolicyText(const std::string& file, const std::string& preset);

// Prints a finished RunSandbox / WaitTask call the way `rauha sandbox` documents and returns
// its exit code: the result as one JSON object, or the error on stderr (125), or 128 + N when
// signal N cancelled the call.
int ReportSandboxCall(const grpc::Status& status, const rauha::sandbox::v1::SandboxResult& result,
                      int cancelled_by_signal);

// Help footer listing the exit codes of `sandbox` and `task wait`.
extern const char kSandboxExitCodes[];

}  // namespace rauha::cli
