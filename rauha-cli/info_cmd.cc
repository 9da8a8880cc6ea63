// `rauha info`: what this machine's kernel offers Rauha, probed here without rauhad, and, when
// rauhad answers, which layer enforces each control (what rauhad really loaded).
#include <iostream>

#include "rauha-cli/commands.h"
#include "rauha-cli/controls_view.h"
#include "rauha-common/kernel_probe.h"
#include "rauha/v1/zone.grpc.pb.h"

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

namespace zv1 = rauha::zone::v1;

// The daemon's enforcement table, or why there is none.
absl::StatusOr<zv1::HostEnforcement> QueryEnforcement(const Cli& cli) {
  auto stub = MakeStub<zv1::ZoneService>(cli);
  if (!stub.ok()) return stub.status();
  zv1::HostEnforcement out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Status s = (*stub)->GetHostEnforcement(&ctx, zv1::GetHostEnforcementRequest{}, &out);
  if (!s.ok()) return absl::UnavailableError(DescribeRpcError(s));
  return out;
}

int RunInfo(const Cli& cli, bool json) {
  const KernelInfo info = ProbeKernel();
  auto enforcement = QueryEnforcement(cli);
  if (json) {
    nlohmann::json out = ToJson(info);
    if (enforcement.ok()) {
      nlohmann::json layers = nlohmann::json::array();
      for (const auto& l : enforcement->layers())
        layers.push_back({{"name", l.name()}, {"active", l.active()}, {"detail", l.detail()}});
      out["enforcement"] = {
          {"layers", std::move(layers)},
          {"controls", nlohmann::json::parse(ControlsToJson(enforcement->controls()).dump())}};
    } else {
      out["enforcement_error"] = ToStd(enforcement.status().message());
    }
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
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
  if (!enforcement.ok()) {
    std::cout << "\nper-control enforcement: ask rauhad (" << enforcement.status().message()
              << ")\n";
    return 0;
  }
  Table layers({"LAYER", "ACTIVE", "DETAIL"});
  for (const auto& l : enforcement->layers())
    layers.AddRow({l.name(), YesNo(l.active()), l.detail()});
  std::cout << "\nenforcement layers (rauhad):\n"
            << layers.ToString() << "\nper control:\n"
            << ControlsTable(enforcement->controls());
  return 0;
}

}  // namespace

void AddInfoCommand(CLI::App& app, Cli& cli) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "info", "Show what this kernel offers rauha and which layer enforces each control (rauhad)");
  cmd->footer(
      "Prints the kernel release, the cgroup layout and controllers, and whether each\n"
      "isolation feature rauha uses (namespaces, seccomp, Landlock, BPF LSM, nftables,\n"
      "overlayfs, ...) works here, with the detail of the probe. When rauhad answers, also\n"
      "the layers it loaded and, per control, the layer that enforces it on this host\n"
      "(lsm, cgroup-bpf, landlock, seccomp, nftables, namespace, capabilities) or NONE.");
  cmd->add_flag("--json", *json, "Print the probe results as JSON");
  cmd->callback([&cli, json] { cli.exit_code = RunInfo(cli, *json); });
}

}  // namespace rauha::cli
