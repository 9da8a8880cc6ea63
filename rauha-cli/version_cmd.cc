// `rauha version`: this CLI's version and, when rauhad answers within a second, rauhad's
// (GetVersion). Without a reachable rauhad it still succeeds: the CLI's version is the answer,
// and the line for rauhad says why it is missing.
#include <algorithm>
#include <iostream>

#include "rauha-cli/commands.h"
#include "rauha/v1/zone.grpc.pb.h"

#ifndef RAUHA_VERSION
#error "RAUHA_VERSION must be defined by the build"
#endif

namespace rauha::cli {

namespace zv1 = rauha::zone::v1;

void AddVersionCommand(CLI::App& app, Cli& cli) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd =
      app.add_subcommand("version", "Print the version of this CLI and of rauhad, if it answers");
  cmd->add_flag("--json", *json,
                "Print {cli: {version}, daemon: {version} or null, daemon_error} as JSON");
  cmd->callback([&cli, json] {
    // `version` is what one runs when something is wrong: never wait long for rauhad.
    ClientOptions quick = cli.client;
    quick.connect_timeout_s = std::min(quick.connect_timeout_s, 1.0);
    std::string daemon_version, daemon_error;
    if (auto channel = Connect(quick); !channel.ok()) {
      daemon_error = rauha::ToStd(channel.status().message());
    } else {
      zv1::VersionInfo info;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
      grpc::Status st = zv1::ZoneService::NewStub(*channel)->GetVersion(&ctx, {}, &info);
      if (st.ok()) {
        daemon_version = info.version();
      } else {
        daemon_error = DescribeRpcError(st);
      }
    }
    if (*json) {
      nlohmann::json out = {{"cli", {{"version", RAUHA_VERSION}}}};
      out["daemon"] = daemon_version.empty() ? nlohmann::json(nullptr)
                                             : nlohmann::json{{"version", daemon_version}};
      if (!daemon_error.empty()) out["daemon_error"] = daemon_error;
      PrintJson(out);
    } else {
      std::cout << "rauha " << RAUHA_VERSION << "\n";
      if (!daemon_version.empty()) {
        std::cout << "rauhad " << daemon_version << "\n";
      } else {
        std::cout << "rauhad: not reached (" << daemon_error << ")\n";
      }
    }
    cli.exit_code = 0;
  });
}

}  // namespace rauha::cli
