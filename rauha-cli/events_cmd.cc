// `rauha events`: follow rauhad's zone events until Ctrl-C.
#include <iostream>

#include "rauha-cli/commands.h"
#include "rauha-cli/signals.h"
#include "rauha/v1/zone.grpc.pb.h"

namespace rauha::cli {
namespace {

namespace zv1 = rauha::zone::v1;

int RunEvents(const Cli& cli, const std::string& zone, bool json) {
  auto stub = MakeStub<zv1::ZoneService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  zv1::WatchEventsRequest req;
  req.set_zone_name(zone);
  grpc::ClientContext ctx;
  CancelOnSignal cancel(&ctx);
  std::unique_ptr<grpc::ClientReader<zv1::ZoneEvent>> reader = (*stub)->WatchEvents(&ctx, req);
  zv1::ZoneEvent ev;
  while (reader->Read(&ev)) {
    // An enforcement event's message is a JSON object (rauha-common/enforcement_event.h).
    Json detail;
    if (ev.event_type() == "enforcement") {
      detail = Json::parse(ev.message(), nullptr, /*allow_exceptions=*/false);
      if (!detail.is_object()) detail = Json();
    }
    if (json) {
      Json out = {{"timestamp", ev.timestamp()},
                  {"zone_name", ev.zone_name()},
                  {"event_type", ev.event_type()},
                  {"message", ev.message()}};
      if (detail.is_object()) out["enforcement"] = detail;
      PrintJson(out, /*indent=*/-1);
    } else if (detail.is_object()) {
      auto field = [&](const char* key) { return Printable(detail.value(key, "")); };
      std::cout << Printable(ev.timestamp()) << "  " << Printable(ev.zone_name()) << "  "
                << field("decision") << "  " << field("layer") << "  " << field("hook") << "  pid "
                << detail.value("pid", 0) << " (" << field("comm") << ")  " << field("object")
                << '\n'
                << std::flush;
    } else {
      std::cout << Printable(ev.timestamp()) << "  " << Printable(ev.zone_name()) << "  "
                << Printable(ev.event_type()) << "  " << Printable(ev.message()) << '\n'
                << std::flush;
    }
  }
  grpc::Status s = reader->Finish();
  // Ctrl-C is how this command is meant to end.
  if (cancel.signal() != 0) return 0;
  if (!s.ok()) return Fail(DescribeRpcError(s));
  return 0;
}

}  // namespace

void AddEventsCommand(CLI::App& app, Cli& cli) {
  struct Args {
    std::string zone;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("events", "Follow zone events until Ctrl-C");
  cmd->add_option("--zone", a->zone, "Only the events of this zone")->type_name("ZONE");
  cmd->add_flag("--json", a->json,
                "One JSON object per line: {timestamp, zone_name, event_type, message}");
  cmd->footer(
      "Prints one line per event: TIMESTAMP  ZONE  TYPE  MESSAGE; enforcement decisions\n"
      "as TIMESTAMP  ZONE  DECISION  LAYER  HOOK  pid PID (COMM)  OBJECT. With --json,\n"
      "an enforcement event also carries \"enforcement\": {hook, layer, action, decision,\n"
      "object, pid, comm, zone_id, target_zone, message, time_ns}.\n"
      "Exits 0 when stopped with Ctrl-C or SIGTERM, 1 when the stream breaks.");
  cmd->callback([&cli, a] { cli.exit_code = RunEvents(cli, a->zone, a->json); });
}

}  // namespace rauha::cli
