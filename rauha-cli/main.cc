// rauha: the command-line client of rauhad. Parses the command line (CLI11), runs one
// command, and turns its outcome into the process exit code: 0 success, 1 failure, 2 usage;
// `sandbox` and `task wait` return the task's own code (see result_json.h).
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rauha-cli/command_word.h"
#include "rauha-cli/commands.h"
#include "rauha-cli/result_json.h"
#include "rauha-cli/sandbox_args.h"

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

// Each Add*Commands function and the top-level commands it adds, in the order of `rauha
// --help`. A command line that names one of them builds that group alone (MakeAppFor).
struct CommandGroup {
  void (*add)(CLI::App& app, Cli& cli);
  std::string_view names;  // separated by spaces
};
constexpr CommandGroup kCommandGroups[] = {
    {AddSandboxCommand, "sandbox"},
    {AddZoneCommands, "zone"},
    {AddPolicyCommands, "policy"},
    {AddTaskCommands, "task"},
    {AddImageCommands, "image"},
    {AddContainerCommands, "run ps logs wait exec attach start containers stop kill inspect rm"},
    {AddSecretCommands, "secret"},
    {AddEventsCommand, "events"},
    {AddInfoCommand, "info"},
    {AddVersionCommand, "version"},
    {AddAuditCommands, "audit"},
};

bool GroupHas(const CommandGroup& group, std::string_view command) {
  for (std::string_view rest = group.names; !rest.empty();) {
    const size_t space = rest.find(' ');
    if (rest.substr(0, space) == command) return true;
    rest = space == std::string_view::npos ? "" : rest.substr(space + 1);
  }
  return false;
}

void AddGlobalOptions(CLI::App& app, Cli& cli) {
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
}

// The app with its global options, no commands yet.
std::unique_ptr<CLI::App> MakeApp(Cli& cli) {
  auto app = std::make_unique<CLI::App>(
      "rauha: run untrusted work, such as AI-agent tasks, in kernel-enforced zones.\n"
      "Talks to rauhad over its unix socket, or over TCP with --host (except: policy validate,\n"
      "audit verify/tail/show).",
      "rauha");
  AddGlobalOptions(*app, cli);
  app->require_subcommand(1);
  app->fallthrough();  // global options may also follow the subcommand
  return app;
}

// Adds the commands of every group or, when `command` is not empty, of the groups that list it.
void AddCommands(CLI::App& app, Cli& cli, std::string_view command) {
  for (const CommandGroup& group : kCommandGroups) {
    if (command.empty() || GroupHas(group, command)) group.add(app, cli);
  }
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
}

// The app for `args`. Building every command's options was ~15 % of the CPU of a command such
// as `rauha version`, so a command line that names its command before anything but global
// options gets that command's group alone. Everything else (help, usage errors, an unknown
// command) gets every group, and so the same answers as ever; so does a command that its
// listed group turns out not to add (kCommandGroups is out of date: that costs only time).
std::unique_ptr<CLI::App> MakeAppFor(Cli& cli, const std::vector<std::string>& args) {
  std::unique_ptr<CLI::App> app = MakeApp(cli);
  if (const std::string command = CommandWord(*app, args); !command.empty()) {
    AddCommands(*app, cli, command);
    auto named = [&](CLI::App* sub) { return sub->get_name() == command; };
    if (!app->get_subcommands(named).empty()) return app;
    app = MakeApp(cli);
  }
  AddCommands(*app, cli, "");
  return app;
}

int Main(int argc, char** argv) {
  Cli cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  cli.trailing = SplitTrailing(args);
  std::unique_ptr<CLI::App> app_ptr = MakeAppFor(cli, args);
  CLI::App& app = *app_ptr;
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
    // (got_subcommand would throw for a command this app was not built with.)
    const std::vector<CLI::App*> parsed = app.get_subcommands();
    const bool in_sandbox = !parsed.empty() && parsed.front()->get_name() == "sandbox";
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && in_sandbox &&
        !app.remaining().empty()) {
      UsageError usage = UnknownSandboxOptions(args, app.remaining(),
                                               parsed.front()->get_option("CMD")->results());
      PrintError(usage.error);
      std::cerr << usage.hint << "\n";
    } else {
      PrintError(e.what());
      std::cerr << "Run 'rauha --help' or 'rauha COMMAND --help' for usage.\n";
    }
    return kExitUsage;
  }
  return cli.exit_code;
}

}  // namespace
}  // namespace rauha::cli

int main(int argc, char** argv) { return rauha::cli::Main(argc, argv); }
