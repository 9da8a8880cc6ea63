// `rauha info`: what this machine's kernel offers Rauha, probed here without rauhad.
#include <iostream>

#include "rauha-cli/commands.h"
#include "rauha-common/kernel_probe.h"

namespace rauha::cli {
namespace {

std::string Join(const auto& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

int RunInfo(bool json) {
  const KernelInfo info = ProbeKernel();
  if (json) {
    std::cout << ToJson(info).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    return 0;
  }
  const CgroupLayout& cg = info.cgroups;
  std::vector<std::pair<std::string, std::string>> rows = {
      {"kernel", info.kernel_release},
      {"cgroup mode", std::string(ToString(cg.mode))},
  };
  if (!cg.unified_mount.empty()) {
    rows.push_back({"cgroup v2", rauha::StrCat(cg.unified_mount, " (controllers: ",
                                               cg.unified_controllers.empty()
                                                   ? std::string("none")
                                                   : Join(cg.unified_controllers, ", "),
                                               ")")});
  }
  if (!cg.v1_mounts.empty()) {
    std::vector<std::string> v1;
    for (const auto& [controller, mount] : cg.v1_mounts) v1.push_back(controller);
    rows.push_back({"cgroup v1", Join(v1, ", ")});
  }
  std::cout << KeyValues(rows) << '\n';
  Table table({"FEATURE", "AVAILABLE", "DETAIL"});
  for (const auto& f : info.features) table.AddRow({f.name, YesNo(f.available), f.detail});
  std::cout << table.ToString();
  return 0;
}

}  // namespace

void AddInfoCommand(CLI::App& app, Cli& cli) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "info", "Show what this kernel offers rauha (probed here, no daemon needed)");
  cmd->footer(
      "Prints the kernel release, the cgroup layout and controllers, and whether each\n"
      "isolation feature rauha uses (namespaces, seccomp, Landlock, BPF LSM, nftables,\n"
      "overlayfs, ...) works here, with the detail of the probe.");
  cmd->add_flag("--json", *json, "Print the probe results as JSON");
  cmd->callback([&cli, json] { cli.exit_code = RunInfo(*json); });
}

}  // namespace rauha::cli
