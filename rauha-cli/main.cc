// rauha: the command-line client of rauhad. Parses the command line (CLI11), runs one
// command, and turns its outcome into the process exit code: 0 success, 1 failure, 2 usage;
// `sandbox` and `task wait` return the task's own code (see result_json.h).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "rauha-cli/commands.h"
#include "rauha-cli/result_json.h"
#include "rauha-cli/signals.h"

namespace rauha::cli {
namespace {

// `rauha sandbox [OPTIONS] -- CMD ARGS...`: everything after the first "--" that follows the
// word "sandbox" is the command, untouched by option parsing (CLI11 would otherwise read the
// command's own flags, e.g. `-- pytest -x`, as rauha's).
std::vector<std::string> SplitTrailing(std::vector<std::string>& args) {
  bool in_sandbox = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "sandbox") in_sandbox = true;
    if (args[i] == "--" && in_sandbox) {
      std::vector<std::string> tail(args.begin() + i + 1, args.end());
      args.resize(i);
      return tail;
    }
  }
  return {};
}

int Main(int argc, char** argv) {
  InstallSignalWatcher();

  Cli cli;
  CLI::App app{
      "rauha: run untrusted work, such as AI-agent tasks, in kernel-enforced zones.\n"
      "Talks to rauhad over its unix socket, or over TCP with --host (except: policy validate,\n"
      "audit verify/tail/show).",
      "rauha"};
  app.add_option("--socket", cli.client.socket,
                 "rauhad's socket (default: $RAUHA_SOCKET, else /run/rauha/rauhad.sock)")
      ->type_name("PATH");
  app.add_option("--host", cli.client.host,
                 "rauhad's TCP endpoint (rauhad --listen) instead of the socket (default: "
                 "$RAUHA_HOST if set)")
      ->type_name("ADDR:PORT");
  app.add_option("--tls-ca", cli.client.tls_ca,
                 "with --host: CA certificate (PEM) that signed rauhad's certificate; turns on "
                 "mutual TLS")
      ->type_name("FILE");
  app.add_option("--tls-cert", cli.client.tls_cert,
                 "with --host: this client's certificate (PEM), signed by a CA rauhad trusts")
      ->type_name("FILE");
  app.add_option("--tls-key", cli.client.tls_key, "with --host: the private key of --tls-cert")
      ->type_name("FILE");
  app.add_option("--timeout-connect", cli.client.connect_timeout_s,
                 "Seconds to wait for rauhad to answer before giving up")
      ->type_name("SECONDS")
      ->check(
          [](const std::string& text) -> std::string {
            char* end = nullptr;
            double seconds = std::strtod(text.c_str(), &end);
            if (end == text.c_str() || *end != '\0' || !(seconds > 0)) {
              return "expected a number of seconds above 0, got \"" + text + "\"";
            }
            return "";
          },
          /*validator_description=*/"")
      ->capture_default_str();
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  AddSandboxCommand(app, cli);
  AddZoneCommands(app, cli);
  AddPolicyCommands(app, cli);
  AddTaskCommands(app, cli);
  AddImageCommands(app, cli);
  AddContainerCommands(app, cli);
  AddSecretCommands(app, cli);
  AddEventsCommand(app, cli);
  AddInfoCommand(app, cli);
  AddVersionCommand(app, cli);
  AddAuditCommands(app, cli);
  // Set after the subcommands, which would otherwise inherit it.
  app.footer(
      "Exit codes: 0 success, 1 failure (the message is on stderr as \"rauha: ...\"),\n"
      "2 usage error; rauha sandbox and rauha task wait return the task's own code\n"
      "(see rauha sandbox --help).\n\n"
      "Run 'rauha COMMAND --help' for a command's options.");
  // Subcommands' own subcommands inherit fallthrough only when set on each of them.
  for (CLI::App* sub : app.get_subcommands({})) {
    // `run` and `exec` keep every word from IMAGE / CONTAINER on as the command (docker's
    // habit); a word passed up to rauha's options would be taken from it.
    if (!sub->get_prefix_command()) sub->fallthrough();
    for (CLI::App* leaf : sub->get_subcommands({})) leaf->fallthrough();
  }

  std::vector<std::string> args(argv + 1, argv + argc);
  cli.trailing = SplitTrailing(args);
  // CLI11 takes the arguments in reverse order when given a vector.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    PrintError(e.what());
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && app.got_subcommand("sandbox")) {
      std::cerr << "Put the command after --: rauha sandbox [OPTIONS] -- CMD ARGS...\n";
    } else {
      std::cerr << "Run 'rauha --help' or 'rauha COMMAND --help' for usage.\n";
    }
    return kExitUsage;
  }
  return cli.exit_code;
}

}  // namespace
}  // namespace rauha::cli

int main(int argc, char** argv) { return rauha::cli::Main(argc, argv); }
