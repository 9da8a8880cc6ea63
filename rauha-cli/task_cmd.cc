// `rauha task ...`: wait for a task's result, list tasks.
#include <iostream>

#include "rauha-cli/commands.h"
#include "rauha-cli/result_json.h"
#include "rauha-cli/signals.h"
#include "rauha/v1/sandbox.grpc.pb.h"

namespace rauha::cli {
namespace {

namespace sv1 = rauha::sandbox::v1;

int RunWait(const Cli& cli, const std::string& task_id) {
  auto stub = MakeStub<sv1::SandboxService>(cli);
  if (!stub.ok()) return Fail(stub.status(), kExitRuntimeError);
  sv1::WaitTaskRequest req;
  req.set_task_id(task_id);
  grpc::ClientContext ctx;
  sv1::SandboxResult result;
  CancelOnSignal cancel(&ctx);
  grpc::Status s = (*stub)->WaitTask(&ctx, req, &result);
  return ReportSandboxCall(s, result, cancel.signal());
}

std::string JoinCommand(const google::protobuf::RepeatedPtrField<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

int RunList(const Cli& cli, const std::string& zone, bool json) {
  auto stub = MakeStub<sv1::SandboxService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  sv1::ListTasksRequest req;
  req.set_zone_name(zone);
  sv1::ListTasksResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = (*stub)->ListTasks(&ctx, req, &resp);
  if (!s.ok()) return Fail(DescribeRpcError(s));
  if (json) {
    Json out = Json::array();
    for (const auto& t : resp.tasks()) {
      Json command = Json::array();
      for (const auto& w : t.command()) command.push_back(w);
      out.push_back({{"task_id", t.task_id()},
                     {"zone_name", t.zone_name()},
                     {"command", std::move(command)},
                     {"state", t.state()},
                     {"pid", t.pid()},
                     {"started_at", t.started_at()}});
    }
    PrintJson(out);
    return 0;
  }
  Table table({"TASK ID", "ZONE", "STATE", "PID", "STARTED", "COMMAND"});
  for (const auto& t : resp.tasks()) {
    table.AddRow({t.task_id(), t.zone_name(), t.state(),
                  t.pid() == 0 ? "-" : std::to_string(t.pid()), t.started_at(),
                  JoinCommand(t.command())});
  }
  std::cout << table.ToString();
  return 0;
}

}  // namespace

void AddTaskCommands(CLI::App& app, Cli& cli) {
  CLI::App* task = app.add_subcommand("task", "Wait for and list tasks started by rauha sandbox");
  task->require_subcommand(1);
  {
    struct Args {
      std::string task_id;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = task->add_subcommand(
        "wait", "Wait for a task and print its result as JSON, like rauha sandbox");
    cmd->add_option("TASK_ID", a->task_id, "Task id (from rauha task list)")->required();
    cmd->add_flag("--json", a->json, "Accepted for symmetry: the result is always JSON");
    cmd->footer(kSandboxExitCodes);
    cmd->callback([&cli, a] { cli.exit_code = RunWait(cli, a->task_id); });
  }
  {
    struct Args {
      std::string zone;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd =
        task->add_subcommand("list", "List tasks: running, or finished and not yet collected");
    cmd->alias("ls");
    cmd->add_option("--zone", a->zone, "Only the tasks of this zone")->type_name("ZONE");
    cmd->add_flag("--json", a->json, "Print an array of task objects");
    cmd->callback([&cli, a] { cli.exit_code = RunList(cli, a->zone, a->json); });
  }
}

}  // namespace rauha::cli
