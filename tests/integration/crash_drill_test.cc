// Crash drill: rauhad is killed (SIGKILL) at a random moment of a burst of CreateZone,
// RunSandbox and DeleteZone calls, a few rounds in a row, and restarted each time. After each
// restart every zone must be consistent (a listed live zone has its cgroup, its shim, its 9
// cgroup links and their pins; nothing belongs to no zone: no cgroup, pin or shim; a zone
// whose delete was answered is gone, one whose create was answered is there), and a witness
// task started before the drill in another zone must have been refused a denied connect at
// every moment, rauhad up or down.
//
// Seeded (RAUHA_DRILL_SEED overrides the default) so a failure can be replayed; the seed is
// printed.
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/bpf_probe.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

constexpr uint32_t kDefaultSeed = 20261130;
constexpr int kRounds = 6;
constexpr int kOpsPerRound = 8;
constexpr int kMaxKillDelayMs = 700;

using CrashDrill = DaemonTest;

enum class Op { kCreate, kCreateSandboxDelete, kTemporarySandbox, kDeleteOld };

struct Planned {
  Op op;
  std::string zone;  // "" for a temporary sandbox
};

// What the calls were told before rauhad died.
struct Answers {
  std::mutex mu;
  std::set<std::string> created;  // CreateZone answered OK
  std::set<std::string> deleted;  // DeleteZone answered OK
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void RunOp(const std::string& socket, const Planned& p, Answers* answers) {
  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  auto zones = zpb::ZoneService::NewStub(channel);
  auto sandbox = spb::SandboxService::NewStub(channel);
  auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(20); };
  auto create = [&] {
    zpb::CreateZoneRequest req;
    req.set_name(p.zone);
    zpb::CreateZoneResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    bool ok = zones->CreateZone(&ctx, req, &resp).ok();
    if (ok) {
      std::lock_guard lock(answers->mu);
      answers->created.insert(p.zone);
    }
    return ok;
  };
  auto remove = [&] {
    zpb::DeleteZoneRequest req;
    req.set_name(p.zone);
    req.set_force(true);
    zpb::DeleteZoneResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    if (zones->DeleteZone(&ctx, req, &resp).ok()) {
      std::lock_guard lock(answers->mu);
      answers->deleted.insert(p.zone);
    }
  };
  auto run = [&](const std::string& zone) {
    spb::RunSandboxRequest req;
    if (!zone.empty()) req.set_name(zone);
    for (const char* a : {"/bin/sh", "-c", "echo drill"}) req.add_command(a);
    spb::SandboxResult result;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    (void)sandbox->RunSandbox(&ctx, req, &result);
  };
  switch (p.op) {
    case Op::kCreate:
      create();
      break;
    case Op::kCreateSandboxDelete:
      if (create()) {
        run(p.zone);
        remove();
      }
      break;
    case Op::kTemporarySandbox:
      run("");
      break;
    case Op::kDeleteOld:
      remove();
      break;
  }
}

std::vector<zpb::ZoneInfo> ListZones(Daemon& d) {
  zpb::ListZonesResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(d.Zones()->ListZones(&ctx, {}, &resp).ok());
  std::vector<zpb::ZoneInfo> out;
  for (const auto& z : resp.zones()) {
    // ListZones may summarise: read each zone in full (layers carry the cgroup id).
    zpb::GetZoneRequest req;
    req.set_name(z.name());
    zpb::GetZoneResponse full;
    grpc::ClientContext gctx;
    if (d.Zones()->GetZone(&gctx, req, &full).ok()) out.push_back(full.zone());
  }
  return out;
}

// rauhad names the zone of a sandbox call without --name "task-<id>".
bool IsTemporary(const std::string& name) { return name.rfind("task-", 0) == 0; }

bool Live(const zpb::ZoneInfo& z) {
  return z.state() == "Ready" || z.state() == "Running" || z.state() == "Paused";
}

// The zone cgroup directories under the daemon's parent, in every hierarchy, by zone id.
std::map<std::string, int> ZoneCgroupDirs(const Daemon& d) {
  std::map<std::string, int> out;
  for (const auto& parent : d.LeftoverCgroups()) {
    std::error_code ec;
    for (const auto& child : std::filesystem::directory_iterator(parent, ec))
      if (child.is_directory()) ++out[child.path().filename().string()];
  }
  return out;
}

// Checks every zone rauhad lists against the kernel, and that nothing belongs to no zone.
// Returns the names of the live zones.
std::set<std::string> CheckConsistent(Daemon& d, const std::string& round) {
  SCOPED_TRACE(round);
  std::vector<zpb::ZoneInfo> zones = ListZones(d);
  std::map<std::string, int> cgroup_dirs = ZoneCgroupDirs(d);
  std::set<std::string> live_ids, live_names;
  std::set<uint64_t> live_cgroups;
  for (const auto& z : zones) {
    SCOPED_TRACE("zone " + z.name() + " (" + z.state() + ")");
    EXPECT_TRUE(Live(z) || z.state() == "Stopped") << "no zone is left half-way after a restart";
    if (!Live(z)) {
      EXPECT_EQ(cgroup_dirs.count(z.id()), 0u) << "a stopped zone keeps no cgroup";
      continue;
    }
    live_ids.insert(z.id());
    live_names.insert(z.name());
    EXPECT_GT(cgroup_dirs[z.id()], 0) << "its cgroup directories";
    uint64_t cg = ZoneCgroupId(z);
    EXPECT_NE(cg, 0u);
    live_cgroups.insert(cg);
    EXPECT_EQ(CgroupLinkCount(cg), 9) << "its cgroup programs, once each";
    EXPECT_EQ(PinnedLinkCount(d, cg), 9u) << "pinned";
    pid_t shim = static_cast<pid_t>(z.shim_pid());
    EXPECT_TRUE(shim > 0 && ::kill(shim, 0) == 0) << "its shim runs";
    EXPECT_NE(ReadFile("/proc/" + std::to_string(shim) + "/cmdline").find(z.id()),
              std::string::npos)
        << "pid " << shim << " is its shim";
  }
  for (const auto& [id, n] : cgroup_dirs)
    EXPECT_TRUE(live_ids.count(id)) << "cgroup of no live zone: " << id;
  EXPECT_EQ(PinnedZoneIds(d), live_cgroups) << "pins of no live zone (or a live zone unpinned)";
  for (pid_t pid : d.LeftoverProcesses()) {
    if (pid == d.pid()) continue;
    std::string cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    bool ours = false;
    for (const auto& id : live_ids) ours = ours || cmdline.find(id) != std::string::npos;
    EXPECT_TRUE(ours) << "process " << pid << " belongs to no live zone";
  }
  return live_names;
}

TEST_F(CrashDrill, Kill9DuringABurstKeepsZonesConsistentAndEnforcementHeld) {
  uint32_t seed = kDefaultSeed;
  if (const char* s = std::getenv("RAUHA_DRILL_SEED")) seed = std::strtoul(s, nullptr, 10);
  std::printf("crash drill seed %u (RAUHA_DRILL_SEED replays it)\n", seed);
  std::mt19937 rng(seed);

  ASSERT_TRUE(CreateZone("witness").ok());
  uint64_t witness_cg = ZoneCgroupId([&] {
    zpb::GetZoneRequest req;
    req.set_name("witness");
    zpb::GetZoneResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(daemon_->Zones()->GetZone(&ctx, req, &resp).ok());
    return resp.zone();
  }());
  ASSERT_NE(witness_cg, 0u);
  ConnectProbe probe(daemon_.get(), "witness");
  ASSERT_FALSE(probe.task_id().empty());

  Answers answers;
  std::set<std::string> alive = {"witness"};
  std::vector<std::pair<int64_t, int64_t>> down;  // [killed, restarted] windows
  std::set<std::string> unnamed_left;             // temporary zones still listed afterwards
  std::set<std::string> delete_called;            // zones some call tried to delete
  for (int round = 0; round < kRounds; ++round) {
    std::vector<Planned> plan;
    std::vector<std::string> deletable(alive.begin(), alive.end());
    std::erase(deletable, "witness");
    for (int i = 0; i < kOpsPerRound; ++i) {
      std::string name = "drill" + std::to_string(round) + "-" + std::to_string(i);
      switch (rng() % 4) {
        case 0:
          plan.push_back({Op::kCreate, name});
          break;
        case 1:
          plan.push_back({Op::kCreateSandboxDelete, name});
          break;
        case 2:
          plan.push_back({Op::kTemporarySandbox, ""});
          break;
        default:
          if (deletable.empty()) {
            plan.push_back({Op::kCreate, name});
          } else {
            size_t k = rng() % deletable.size();
            plan.push_back({Op::kDeleteOld, deletable[k]});
            deletable.erase(deletable.begin() + static_cast<long>(k));
          }
      }
    }
    int kill_after_ms = static_cast<int>(rng() % kMaxKillDelayMs);
    int down_ms = 100 + static_cast<int>(rng() % 200);

    std::vector<std::thread> clients;
    for (const Planned& p : plan) clients.emplace_back(RunOp, daemon_->socket(), p, &answers);
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
    int64_t killed_at = RealtimeNs();
    daemon_->Kill9();
    for (auto& c : clients) c.join();  // their calls fail once the socket is gone
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
    EXPECT_EQ(CgroupLinkCount(witness_cg), 9)
        << "round " << round << ": the witness zone's programs stay while rauhad is down";
    int64_t restarted_at = RealtimeNs();
    down.emplace_back(killed_at, restarted_at);
    daemon_->Start();
    if (HasFatalFailure()) return;

    std::string label = "round " + std::to_string(round) + " (killed after " +
                        std::to_string(kill_after_ms) + " ms)";
    // Temporary zones of tasks that ended are removed by the restarted rauhad: give it a moment.
    std::set<std::string> live;
    for (int i = 0; i < 50; ++i) {
      live.clear();
      for (const auto& z : ListZones(*daemon_))
        if (Live(z)) live.insert(z.name());
      bool unnamed = false;
      for (const auto& n : live) unnamed = unnamed || IsTemporary(n);
      if (!unnamed) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    live = CheckConsistent(*daemon_, label);
    EXPECT_TRUE(live.count("witness")) << label;
    std::lock_guard lock(answers.mu);
    for (const auto& name : answers.deleted)
      EXPECT_FALSE(live.count(name)) << label << ": " << name << " was deleted";
    for (const auto& p : plan)
      if (p.op == Op::kCreateSandboxDelete || p.op == Op::kDeleteOld) delete_called.insert(p.zone);
    for (const auto& name : answers.created) {
      if (!delete_called.count(name)) {
        EXPECT_TRUE(live.count(name)) << label << ": " << name << " was created";
      }
    }
    std::printf("%s: %zu creates and %zu deletes answered so far; %zu zones live after restart\n",
                label.c_str(), answers.created.size(), answers.deleted.size(), live.size());
    // Zones a kDeleteOld may have removed before the kill are no longer "alive" to the plan.
    alive.clear();
    for (const auto& n : live) {
      if (IsTemporary(n)) {
        unnamed_left.insert(n);
      } else {
        alive.insert(n);
      }
    }
  }

  // Enforcement held on the running task throughout: every probe refused, some while rauhad was
  // down.
  std::vector<ConnectProbe::Line> lines = probe.Finish(daemon_.get());
  int while_down = 0;
  for (const auto& l : lines) {
    EXPECT_EQ(l.outcome, "DENIED") << "probe at " << l.start_ns;
    for (const auto& [from, to] : down)
      if (l.start_ns > from && l.end_ns < to) ++while_down;
  }
  EXPECT_GT(while_down, 0) << lines.size() << " probes, none entirely while rauhad was down";
  std::printf("crash drill: %zu probes, %d while rauhad was down, all refused\n", lines.size(),
              while_down);
  std::string log = daemon_->log();
  int swept = 0;
  for (size_t at = 0; (at = log.find("zones that did not survive", at)) != std::string::npos; ++at)
    ++swept;
  std::printf("crash drill: %d restarts removed pins of zones that did not survive\n", swept);
  if (!unnamed_left.empty()) {
    std::string names;
    for (const auto& n : unnamed_left) names += " " + n;
    std::printf("crash drill: temporary zones still live after a restart (issue 8 item 5):%s\n",
                names.c_str());
  }

  // Clean up through the API; the fixture then checks nothing is left (cgroups, pins, shims).
  for (const auto& z : ListZones(*daemon_)) {
    zpb::DeleteZoneRequest req;
    req.set_name(z.name());
    req.set_force(true);
    zpb::DeleteZoneResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(daemon_->Zones()->DeleteZone(&ctx, req, &resp).ok()) << z.name();
  }
  EXPECT_TRUE(PinnedZoneIds(*daemon_).empty());
}

}  // namespace
}  // namespace rauha::testing
