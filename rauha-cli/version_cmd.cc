// `rauha version`: this CLI's version. rauhad has no version call yet, so it is not asked.
#include <iostream>

#include "rauha-cli/commands.h"

#ifndef RAUHA_VERSION
#error "RAUHA_VERSION must be defined by the build"
#endif

namespace rauha::cli {

void AddVersionCommand(CLI::App& app, Cli& cli) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("version", "Print the version of this CLI");
  cmd->add_flag("--json", *json, "Print {cli: {version}, daemon: null} as JSON");
  cmd->callback([&cli, json] {
    if (*json) {
      PrintJson({{"cli", {{"version", RAUHA_VERSION}}}, {"daemon", nullptr}});
    } else {
      std::cout << "rauha " << RAUHA_VERSION << "\ndaemon: not queried\n";
    }
    cli.exit_code = 0;
  });
}

}  // namespace rauha::cli
