// `rauha zone ...`: create, list, show, delete, stats, verify, pause, resume.
#include <limits>

#include "rauha-cli/commands.h"
#include "rauha-cli/controls_view.h"
#include "rauha/v1/zone.grpc.pb.h"

namespace rauha::cli {
namespace {

namespace zv1 = rauha::zone::v1;
using zv1::ZoneService;

Json ZoneToJson(const zv1::ZoneInfo& z) {
  Json layers = Json::array();
  for (const auto& l : z.layers()) {
    layers.push_back({{"name", l.name()}, {"active", l.active()}, {"detail", l.detail()}});
  }
  Json counters = Json::array();
  for (const auto& c : z.enforcement_counters()) {
    counters.push_back({{"hook", c.hook()}, {"layer", c.layer()}, {"denied", c.denied()}});
  }
  return {
      {"id", z.id()},
      {"name", z.name()},
      {"zone_type", z.zone_type()},
      {"state", z.state()},
      {"container_count", z.container_count()},
      {"created_at", z.created_at()},
      {"task_count", z.task_count()},
      {"state_reason", z.state_reason()},
      {"layers", std::move(layers)},
      {"shim_pid", z.shim_pid()},
      {"network_mode", z.network_mode()},
      {"address", z.address()},
      {"network_rules", z.network_rules()},
      {"controls", ControlsToJson(z.controls())},
      {"enforcement_counters", std::move(counters)},
      {"enforcement_events_lost", z.enforcement_events_lost()},
      {"userns_host_first", z.userns_host_first()},
      {"userns_id_count", z.userns_id_count()},
      {"userns", z.userns()},
      {"network_namespace", z.network_namespace()},
  };
}

// A zone name given as NAME or as --name NAME (the public CLI's spelling).
struct ZoneName {
  std::string positional;
  std::string flag;

  void Register(CLI::App* cmd) {
    auto* pos = cmd->add_option("NAME", positional, "Zone name");
    auto* opt = cmd->add_option("--name", flag, "Zone name (same as NAME)")->type_name("NAME");
    pos->excludes(opt);
  }
  const std::string& get() const { return positional.empty() ? flag : positional; }
};

// Runs `body` with a connected stub, or reports why there is none. A missing zone name is a
// usage error.
template <typename Body>
int WithZone(const Cli& cli, const ZoneName& name, Body body) {
  if (name.get().empty()) return Fail("a zone name is required (NAME or --name NAME)", kExitUsage);
  auto stub = MakeStub<ZoneService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  return body(**stub, name.get());
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

// Stats report "no limit" as 0 or as the kernel's "max" (all ones).
std::string Limit(uint64_t bytes) {
  if (bytes == 0 || bytes == std::numeric_limits<uint64_t>::max() || bytes >= (uint64_t{1} << 62)) {
    return "none";
  }
  return HumanBytes(bytes);
}

struct CreateArgs {
  ZoneName name;
  std::string type = "non-global";
  std::string policy_file;
  std::string preset;
  bool json = false;
};

int RunCreate(const Cli& cli, const CreateArgs& a) {
  if (a.name.get().empty()) {
    return Fail("a zone name is required (NAME or --name NAME)", kExitUsage);
  }
  auto policy = ReadPolicyText(a.policy_file, a.preset);
  if (!policy.ok()) return Fail(policy.status());
  return WithZone(cli, a.name, [&](ZoneService::Stub& stub, const std::string& name) {
    zv1::CreateZoneRequest req;
    req.set_name(name);
    req.set_zone_type(a.type);
    req.set_policy_toml(*policy);
    zv1::CreateZoneResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub.CreateZone(&ctx, req, &resp);
    if (!s.ok()) return Fail(DescribeRpcError(s));
    if (a.json) {
      PrintJson({{"zone_id", resp.zone_id()},
                 {"name", resp.name()},
                 {"state", resp.state()},
                 {"policy_warnings", std::vector<std::string>(resp.policy_warnings().begin(),
                                                              resp.policy_warnings().end())}});
    } else {
      std::cout << Printable(resp.zone_id()) << '\n';
    }
    return 0;
  });
}

int RunList(const Cli& cli, bool json) {
  auto stub = MakeStub<ZoneService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  zv1::ListZonesResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = (*stub)->ListZones(&ctx, zv1::ListZonesRequest(), &resp);
  if (!s.ok()) return Fail(DescribeRpcError(s));
  if (json) {
    Json out = Json::array();
    for (const auto& z : resp.zones()) out.push_back(ZoneToJson(z));
    PrintJson(out);
    return 0;
  }
  Table table({"NAME", "ID", "TYPE", "STATE", "CREATED"});
  for (const auto& z : resp.zones()) {
    table.AddRow({z.name(), z.id(), z.zone_type(), z.state(), z.created_at()});
  }
  std::cout << table.ToString();
  return 0;
}

int RunShow(const Cli& cli, const ZoneName& name, bool json) {
  return WithZone(cli, name, [&](ZoneService::Stub& stub, const std::string& zone) {
    zv1::GetZoneRequest req;
    req.set_name(zone);
    zv1::GetZoneResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub.GetZone(&ctx, req, &resp);
    if (!s.ok()) return Fail(DescribeRpcError(s));
    const zv1::ZoneInfo& z = resp.zone();
    if (json) {
      PrintJson(ZoneToJson(z));
      return 0;
    }
    std::string state = z.state();
    if (!z.state_reason().empty()) state += " (" + z.state_reason() + ")";
    std::cout << KeyValues({
        {"name", z.name()},
        {"id", z.id()},
        {"type", z.zone_type()},
        {"state", state},
        {"created", OrDash(z.created_at())},
        {"containers", std::to_string(z.container_count())},
        {"tasks", std::to_string(z.task_count())},
        {"network", z.network_namespace().empty()
                        ? OrDash(z.network_mode())
                        : z.network_mode() + " (joined " + z.network_namespace() + ")"},
        {"address", OrDash(z.address())},
        {"user ids", OrDash(z.userns())},
        {"shim pid", z.shim_pid() == 0 ? "-" : std::to_string(z.shim_pid())},
    });
    if (z.layers_size() > 0) {
      Table layers({"LAYER", "ACTIVE", "DETAIL"});
      for (const auto& l : z.layers()) layers.AddRow({l.name(), YesNo(l.active()), l.detail()});
      std::cout << "\n" << layers.ToString();
    }
    if (z.controls_size() > 0) std::cout << "\n" << ControlsTable(z.controls());
    Table counters({"HOOK", "LAYER", "DENIED"});
    for (const auto& c : z.enforcement_counters())
      counters.AddRow({c.hook(), c.layer(), std::to_string(c.denied())});
    std::cout << "\ndenials:" << (z.enforcement_counters_size() == 0 ? " none\n" : "\n")
              << (z.enforcement_counters_size() == 0 ? "" : counters.ToString());
    if (z.enforcement_events_lost() > 0)
      std::cout << "events lost (ring buffer full): " << z.enforcement_events_lost() << '\n';
    if (!z.network_rules().empty())
      std::cout << "\nnetwork rules:\n" << Printable(z.network_rules(), /*keep_newlines=*/true);
    return 0;
  });
}

int RunDelete(const Cli& cli, const ZoneName& name, bool force, bool json) {
  return WithZone(cli, name, [&](ZoneService::Stub& stub, const std::string& zone) {
    zv1::DeleteZoneRequest req;
    req.set_name(zone);
    req.set_force(force);
    zv1::DeleteZoneResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub.DeleteZone(&ctx, req, &resp);
    if (!s.ok()) return Fail(DescribeRpcError(s));
    if (json) {
      PrintJson({{"name", zone}, {"deleted", true}});
    } else {
      std::cout << "deleted zone " << Printable(zone) << '\n';
    }
    return 0;
  });
}

Json EgressJson(const zv1::EgressStats& e) {
  Json j = {{"proxy", e.proxy()}, {"nftables", e.nftables()}};
  if (e.proxy()) {
    j["connections_open"] = e.connections_open();
    j["connections_total"] = e.connections_total();
    j["connections_refused"] = e.connections_refused();
    j["bytes_up"] = e.bytes_up();
    j["bytes_down"] = e.bytes_down();
    j["bytes_max"] = e.bytes_max();
    j["budget_closed"] = e.budget_closed();
    j["secrets_injected"] = e.secrets_injected();
    j["secret_misuses"] = e.secret_misuses();
  }
  if (e.nftables()) {
    j["dropped_egress"] = e.dropped_egress();
    j["dropped_zone"] = e.dropped_zone();
    j["dropped_ingress"] = e.dropped_ingress();
  }
  return j;
}

// The egress part of `zone stats`: only what the zone has (a proxy, nftables chains).
void AddEgressRows(const zv1::EgressStats& e,
                   std::vector<std::pair<std::string, std::string>>& rows) {
  if (e.proxy()) {
    rows.push_back(
        {"proxy connections", rauha::StrCat(e.connections_open(), " open, ", e.connections_total(),
                                            " in all, ", e.connections_refused(), " refused")});
    rows.push_back({"proxy bytes", rauha::StrCat(HumanBytes(e.bytes_up()), " up, ",
                                                 HumanBytes(e.bytes_down()), " down")});
    rows.push_back(
        {"proxy budget", e.bytes_max() == 0
                             ? std::string("none")
                             : rauha::StrCat(HumanBytes(e.bytes_max()), " (",
                                             HumanBytes(e.bytes_up() + e.bytes_down()), " used, ",
                                             e.budget_closed(), " connections closed by it)")});
    rows.push_back({"secrets", rauha::StrCat(e.secrets_injected(), " injected, ",
                                             e.secret_misuses(), " misuses")});
  }
  if (e.nftables()) {
    rows.push_back(
        {"packets dropped", rauha::StrCat(e.dropped_egress(), " egress, ", e.dropped_zone(),
                                          " to zones, ", e.dropped_ingress(), " ingress")});
  }
}

int RunStats(const Cli& cli, const ZoneName& name, bool json) {
  return WithZone(cli, name, [&](ZoneService::Stub& stub, const std::string& zone) {
    zv1::ZoneStatsRequest req;
    req.set_zone_name(zone);
    zv1::ZoneStatsResponse r;
    grpc::ClientContext ctx;
    grpc::Status s = stub.ZoneStats(&ctx, req, &r);
    if (!s.ok()) return Fail(DescribeRpcError(s));
    if (json) {
      PrintJson({
          {"zone_id", r.zone_id()},
          {"container_count", r.container_count()},
          {"cpu_usage_percent", r.cpu_usage_percent()},
          {"memory_usage_bytes", r.memory_usage_bytes()},
          {"memory_limit_bytes", r.memory_limit_bytes()},
          {"network_rx_bytes", r.network_rx_bytes()},
          {"network_tx_bytes", r.network_tx_bytes()},
          {"pids_current", r.pids_current()},
          {"pids_max", r.pids_max()},
          {"memory_peak_bytes", r.memory_peak_bytes()},
          {"cpu_usage_ns", r.cpu_usage_ns()},
          {"oom_kills", r.oom_kills()},
          {"egress", EgressJson(r.egress())},
      });
      return 0;
    }
    char cpu[32];
    std::snprintf(cpu, sizeof(cpu), "%.1f%%", r.cpu_usage_percent());
    std::vector<std::pair<std::string, std::string>> rows = {
        {"zone", zone},
        {"id", r.zone_id()},
        {"containers", std::to_string(r.container_count())},
        {"cpu", cpu},
        {"cpu time", rauha::StrCat(r.cpu_usage_ns() / 1000000, " ms")},
        {"memory", HumanBytes(r.memory_usage_bytes())},
        {"memory peak", HumanBytes(r.memory_peak_bytes())},
        {"memory limit", Limit(r.memory_limit_bytes())},
        {"oom kills", std::to_string(r.oom_kills())},
        {"pids",
         rauha::StrCat(r.pids_current(), " / ",
                       r.pids_max() == 0 ? std::string("none") : std::to_string(r.pids_max()))},
        {"network rx", HumanBytes(r.network_rx_bytes())},
        {"network tx", HumanBytes(r.network_tx_bytes())},
    };
    AddEgressRows(r.egress(), rows);
    std::cout << KeyValues(rows);
    return 0;
  });
}

int RunVerify(const Cli& cli, const ZoneName& name, bool json) {
  return WithZone(cli, name, [&](ZoneService::Stub& stub, const std::string& zone) {
    zv1::VerifyIsolationRequest req;
    req.set_zone_name(zone);
    zv1::VerifyIsolationResponse r;
    grpc::ClientContext ctx;
    grpc::Status s = stub.VerifyIsolation(&ctx, req, &r);
    if (!s.ok()) return Fail(DescribeRpcError(s));
    if (json) {
      Json checks = Json::array();
      for (const auto& c : r.checks()) {
        checks.push_back({{"name", c.name()}, {"passed", c.passed()}, {"detail", c.detail()}});
      }
      PrintJson({{"zone", zone}, {"is_isolated", r.is_isolated()}, {"checks", checks}});
    } else {
      Table table({"CHECK", "PASSED", "DETAIL"});
      for (const auto& c : r.checks()) table.AddRow({c.name(), YesNo(c.passed()), c.detail()});
      std::cout << table.ToString() << "\nzone " << Printable(zone) << ": "
                << (r.is_isolated() ? "isolated" : "NOT isolated") << '\n';
    }
    return r.is_isolated() ? 0 : 1;
  });
}

int RunPause(const Cli& cli, const ZoneName& name, bool pause, bool json) {
  return WithZone(cli, name, [&](ZoneService::Stub& stub, const std::string& zone) {
    grpc::ClientContext ctx;
    grpc::Status s;
    if (pause) {
      zv1::PauseZoneRequest req;
      req.set_name(zone);
      zv1::PauseZoneResponse resp;
      s = stub.PauseZone(&ctx, req, &resp);
    } else {
      zv1::ResumeZoneRequest req;
      req.set_name(zone);
      zv1::ResumeZoneResponse resp;
      s = stub.ResumeZone(&ctx, req, &resp);
    }
    if (!s.ok()) return Fail(DescribeRpcError(s));
    const char* done = pause ? "paused" : "resumed";
    if (json) {
      PrintJson({{"name", zone}, {done, true}});
    } else {
      std::cout << done << " zone " << Printable(zone) << '\n';
    }
    return 0;
  });
}

}  // namespace

void AddZoneCommands(CLI::App& app, Cli& cli) {
  CLI::App* zone = app.add_subcommand("zone", "Create, inspect and remove zones");
  zone->require_subcommand(1);

  {
    auto a = std::make_shared<CreateArgs>();
    CLI::App* cmd = zone->add_subcommand("create", "Create a zone; prints its id");
    a->name.Register(cmd);
    cmd->add_option("--type", a->type, "Zone type")
        ->check(CLI::IsMember({"non-global", "privileged"}))
        ->capture_default_str();
    auto* policy = cmd->add_option("--policy", a->policy_file,
                                   "Policy TOML file (checked here first, then sent to rauhad)")
                       ->type_name("FILE");
    auto* preset =
        cmd->add_option("--preset", a->preset,
                        "Shipped policy preset: minimal, standard, strict, ... (default: the "
                        "daemon's default policy)")
            ->type_name("NAME");
    policy->excludes(preset);
    cmd->add_flag("--json", a->json, "Print {zone_id, name, state} as JSON");
    cmd->footer(
        "Examples:\n  rauha zone create frontend --preset strict\n"
        "  rauha zone create --name frontend --policy policies/standard.toml");
    cmd->callback([&cli, a] { cli.exit_code = RunCreate(cli, *a); });
  }
  {
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = zone->add_subcommand("list", "List zones");
    cmd->alias("ls");
    cmd->add_flag("--json", *json, "Print an array of zone objects");
    cmd->callback([&cli, json] { cli.exit_code = RunList(cli, *json); });
  }
  {
    struct Args {
      ZoneName name;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd =
        zone->add_subcommand("show", "Show a zone, with the enforcement layers it really has");
    a->name.Register(cmd);
    cmd->add_flag("--json", a->json, "Print the zone as a JSON object");
    cmd->callback([&cli, a] { cli.exit_code = RunShow(cli, a->name, a->json); });
  }
  {
    struct Args {
      ZoneName name;
      bool force = false;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = zone->add_subcommand("delete", "Delete a zone");
    cmd->alias("rm");
    a->name.Register(cmd);
    cmd->add_flag("-f,--force", a->force,
                  "Kill the zone's running tasks and containers first instead of refusing");
    cmd->add_flag("--json", a->json, "Print {name, deleted} as JSON");
    cmd->callback([&cli, a] { cli.exit_code = RunDelete(cli, a->name, a->force, a->json); });
  }
  struct NameJson {
    ZoneName name;
    bool json = false;
  };
  {
    auto a = std::make_shared<NameJson>();
    CLI::App* cmd = zone->add_subcommand(
        "stats",
        "Resource usage of a zone, and its egress: proxy connections and bytes, packets dropped");
    a->name.Register(cmd);
    cmd->add_flag("--json", a->json, "Print the statistics as a JSON object");
    cmd->callback([&cli, a] { cli.exit_code = RunStats(cli, a->name, a->json); });
  }
  {
    auto a = std::make_shared<NameJson>();
    CLI::App* cmd =
        zone->add_subcommand("verify", "Check a zone's isolation; exits 1 when it is not isolated");
    a->name.Register(cmd);
    cmd->add_flag("--json", a->json, "Print {zone, is_isolated, checks} as JSON");
    cmd->callback([&cli, a] { cli.exit_code = RunVerify(cli, a->name, a->json); });
  }
  {
    auto a = std::make_shared<NameJson>();
    CLI::App* cmd = zone->add_subcommand("pause", "Freeze every process of a zone");
    a->name.Register(cmd);
    cmd->add_flag("--json", a->json, "Print {name, paused} as JSON");
    cmd->callback([&cli, a] { cli.exit_code = RunPause(cli, a->name, true, a->json); });
  }
  {
    auto a = std::make_shared<NameJson>();
    CLI::App* cmd = zone->add_subcommand("resume", "Thaw a paused zone");
    a->name.Register(cmd);
    cmd->add_flag("--json", a->json, "Print {name, resumed} as JSON");
    cmd->callback([&cli, a] { cli.exit_code = RunPause(cli, a->name, false, a->json); });
  }
}

}  // namespace rauha::cli
