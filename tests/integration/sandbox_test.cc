// RunSandbox end to end: a real rauhad, a real shim, real namespaces, cgroups and mounts.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <thread>

#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

using SandboxTest = DaemonTest;

int ZoneCount(Daemon& d) {
  zpb::ListZonesResponse list;
  grpc::ClientContext ctx;
  EXPECT_TRUE(d.Zones()->ListZones(&ctx, {}, &list).ok());
  return list.zones_size();
}

TEST_F(SandboxTest, StdoutStderrAndExitCode) {
  auto r = Run({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.status(), "failed");
  ASSERT_TRUE(r.has_exit_code());
  EXPECT_EQ(r.exit_code(), 3);
  EXPECT_FALSE(r.has_signal());
  EXPECT_EQ(r.stdout(), "out\n");
  EXPECT_EQ(r.stderr(), "err\n");
  EXPECT_FALSE(r.task_id().empty());
  EXPECT_FALSE(r.zone_id().empty());
  ASSERT_EQ(r.command_size(), 3);
  EXPECT_EQ(r.command(0), "/bin/sh");
  EXPECT_FALSE(r.started_at().empty());
  EXPECT_FALSE(r.finished_at().empty());
  EXPECT_EQ(r.enforcement_events_lost(), 0u);
  EXPECT_EQ(ZoneCount(*daemon_), 0) << "the temporary zone is removed after the task";
}

TEST_F(SandboxTest, SucceedsWithZeroAndReportsResources) {
  auto r = Run({"/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo ok"});
  EXPECT_EQ(r.status(), "succeeded");
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.stdout(), "ok\n");
  EXPECT_GT(r.resources().peak_memory_bytes(), 0u);
  EXPECT_GT(r.resources().cpu_user_ms() + r.resources().cpu_system_ms(), 0u);
  EXPECT_FALSE(r.resources().oom_killed());
}

TEST_F(SandboxTest, SignalIsReported) {
  auto r = Run({"/bin/sh", "-c", "kill -TERM $$; sleep 5"});
  EXPECT_EQ(r.status(), "failed");
  EXPECT_FALSE(r.has_exit_code());
  ASSERT_TRUE(r.has_signal());
  EXPECT_EQ(r.signal(), 15);
}

TEST_F(SandboxTest, TimeoutKillsTheTask) {
  spb::RunSandboxRequest req;
  req.set_timeout_seconds(1);
  auto start = std::chrono::steady_clock::now();
  auto r = Run({"/bin/sleep", "60"}, req);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status(), "timed_out");
  EXPECT_LT(took, std::chrono::seconds(10));
  // SIGTERM first (sleep dies of it); SIGKILL only for what outlives the grace.
  EXPECT_EQ(r.signal(), 15);
}

TEST_F(SandboxTest, EnvAndWorkdir) {
  spb::RunSandboxRequest req;
  (*req.mutable_env())["GREETING"] = "hello zone";
  req.set_workdir("/tmp");
  auto r = Run({"/bin/sh", "-c", "echo \"$GREETING\"; pwd; echo $RAUHA_ZONE"}, req);
  EXPECT_EQ(r.status(), "succeeded");
  EXPECT_EQ(r.stdout().substr(0, r.stdout().find('\n')), "hello zone");
  EXPECT_NE(r.stdout().find("\n/tmp\n"), std::string::npos) << r.stdout();
}

TEST_F(SandboxTest, RepoPathIsWorkspaceAndWritesPersist) {
  std::string repo = daemon_->dir() + "/repo";
  std::filesystem::create_directories(repo);
  std::ofstream(repo + "/README") << "hi\n";
  spb::RunSandboxRequest req;
  req.set_repo_path(repo);
  auto r = Run({"/bin/sh", "-c", "pwd; ls /workspace; echo made > /workspace/out.txt"}, req);
  EXPECT_EQ(r.status(), "succeeded") << r.stderr();
  EXPECT_EQ(r.stdout(), "/workspace\nREADME\n");
  std::ifstream in(repo + "/out.txt");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "made");
}

TEST_F(SandboxTest, MissingCommandIsRuntimeError) {
  auto r = Run({"/no/such/program"});
  EXPECT_EQ(r.status(), "runtime_error");
  EXPECT_FALSE(r.has_exit_code());
  EXPECT_NE(r.error().find("/no/such/program"), std::string::npos) << r.error();
}

TEST_F(SandboxTest, BadRequestsAreRefusedAndChangeNothing) {
  grpc::Status st;
  Run({}, {}, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  spb::RunSandboxRequest rel;
  rel.set_repo_path("relative/path");
  Run({"/bin/true"}, rel, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  spb::RunSandboxRequest missing;
  missing.set_repo_path("/definitely/not/here");
  Run({"/bin/true"}, missing, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  spb::RunSandboxRequest badenv;
  (*badenv.mutable_env())["A=B"] = "x";
  Run({"/bin/true"}, badenv, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  spb::RunSandboxRequest badpolicy;
  badpolicy.set_policy_toml("[resources]\npids_max = \"lots\"\n");
  Run({"/bin/true"}, badpolicy, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ZoneCount(*daemon_), 0);
}

TEST_F(SandboxTest, OutputIsBounded) {
  spb::RunSandboxRequest req;
  req.set_output_limit_bytes(1000);
  auto r = Run({"/bin/sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"}, req);
  EXPECT_EQ(r.status(), "succeeded");
  EXPECT_EQ(r.stdout().size(), 1000u);
  EXPECT_TRUE(r.stdout_truncated());
  EXPECT_FALSE(r.stderr_truncated());
}

TEST_F(SandboxTest, HostSecretsTmpAndProcessesAreInvisible) {
  std::string marker = "/tmp/rauha-host-marker-" + std::to_string(::getpid());
  std::ofstream(marker) << "secret\n";
  // Markers are spelled with an empty quote pair ("VIS""IBLE") so the command line itself,
  // which the task prints as /proc/1/cmdline, never contains them.
  auto r = Run({"/bin/sh", "-c",
                "ls /proc | grep -c '^[0-9]'; "
                "for p in /etc/shadow /etc/gshadow /etc/ssh /root /home /var/lib /var/log /run "
                "/srv /sys/fs " +
                    marker +
                    "; do [ -e $p ] && echo VIS\"\"IBLE $p; done; "
                    "cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                    "hostname; touch /usr/x 2>/dev/null && echo WRI\"\"TABLE /usr; "
                    "touch /x 2>/dev/null && echo WRI\"\"TABLE /; touch /tmp/ok && echo tmp-ok"});
  std::filesystem::remove(marker);
  EXPECT_EQ(r.status(), "succeeded") << r.stderr();
  EXPECT_EQ(r.stdout().find("VISIBLE"), std::string::npos) << r.stdout();
  EXPECT_EQ(r.stdout().find("WRITABLE"), std::string::npos) << r.stdout();
  EXPECT_NE(r.stdout().find("tmp-ok"), std::string::npos) << r.stdout();
  // Only the task's own processes: its init, sh, ls and grep — never the host's.
  int procs = std::atoi(r.stdout().c_str());
  EXPECT_GE(procs, 2) << r.stdout();
  EXPECT_LE(procs, 5) << r.stdout();
  EXPECT_NE(r.stdout().find("\nrauha-init"), std::string::npos) << "PID 1 is the task's init";
  EXPECT_EQ(r.stdout().find("--socket"), std::string::npos) << "the shim's command line leaked";
  EXPECT_NE(r.stdout().find("task-"), std::string::npos) << "hostname is the zone name";
}

TEST_F(SandboxTest, CapabilitiesAreReallyDropped) {
  spb::RunSandboxRequest req;
  req.set_policy_toml(PolicyWith("pids_max = 64", "", "none"));
  auto r = Run({"/bin/sh", "-c",
                "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; "
                "mount -t tmpfs none /tmp 2>&1 && echo MOUNTED; "
                "chown 1:1 /tmp 2>&1 && echo CHOWNED; true"},
               req);
  EXPECT_EQ(r.status(), "succeeded");
  EXPECT_NE(r.stdout().find("CapEff:\t0000000000000000"), std::string::npos) << r.stdout();
  EXPECT_NE(r.stdout().find("CapBnd:\t0000000000000000"), std::string::npos) << r.stdout();
  EXPECT_NE(r.stdout().find("NoNewPrivs:\t1"), std::string::npos) << r.stdout();
  EXPECT_EQ(r.stdout().find("MOUNTED"), std::string::npos) << r.stdout();
  EXPECT_EQ(r.stdout().find("CHOWNED"), std::string::npos) << r.stdout();

  spb::RunSandboxRequest chown_ok;
  chown_ok.set_policy_toml(PolicyWith("pids_max = 64", "", "\"CAP_CHOWN\""));
  r = Run({"/bin/sh", "-c", "grep CapEff /proc/self/status; chown 1:1 /tmp && echo CHOWNED"},
          chown_ok);
  EXPECT_NE(r.stdout().find("CapEff:\t0000000000000001"), std::string::npos) << r.stdout();
  EXPECT_NE(r.stdout().find("CHOWNED"), std::string::npos) << r.stdout();
}

TEST_F(SandboxTest, SyscallsDenyFromPolicyIsEnforced) {
  const std::vector<std::string> cmd = {"/bin/sh", "-c",
                                        "echo x > /tmp/x && chmod 600 /tmp/x && stat -c %a /tmp/x"};
  spb::RunSandboxRequest allowed;
  allowed.set_policy_toml(PolicyWith("pids_max = 64"));
  auto r = Run(cmd, allowed);
  EXPECT_EQ(r.status(), "succeeded") << r.stderr() << r.error();
  EXPECT_EQ(r.stdout(), "600\n");

  spb::RunSandboxRequest denied;
  denied.set_policy_toml(
      PolicyWith("pids_max = 64", "\n[syscalls]\ndeny = [\"chmod\", \"fchmodat\"]\n"));
  r = Run(cmd, denied);
  EXPECT_EQ(r.status(), "failed") << r.error();
  EXPECT_NE(r.stderr().find("Operation not permitted"), std::string::npos) << r.stderr();
  EXPECT_EQ(r.stdout(), "");
  EXPECT_EQ(r.unavailable_controls_size(), 0)
      << "syscalls.deny is enforced: " << r.unavailable_controls(0);
}

TEST_F(SandboxTest, ForkBombIsStoppedByPidsMax) {
  spb::RunSandboxRequest req;
  req.set_policy_toml(PolicyWith("pids_max = 32"));
  req.set_timeout_seconds(4);
  // Each sh forks two more until the zone's pids.max refuses; the timeout ends the storm.
  auto r = Run({"/bin/sh", "-c", "b() { b | b & }; b; sleep 3; echo survived"}, req);
  EXPECT_TRUE(r.status() == "timed_out" || r.status() == "succeeded" || r.status() == "failed")
      << r.status();
  EXPECT_NE(r.stderr().find("fork"), std::string::npos) << "the shell reports the refused fork:\n"
                                                        << r.stderr().substr(0, 400);
  // The daemon stays responsive, and the host can still fork.
  auto ok = Run({"/bin/echo", "alive"});
  EXPECT_EQ(ok.stdout(), "alive\n");
}

TEST_F(SandboxTest, MemoryHogIsOomKilledInsideItsZoneOnly) {
  ASSERT_TRUE(CreateZone("neighbour").ok());
  auto neighbour = std::async(std::launch::async, [&] {
    spb::RunSandboxRequest req;
    req.set_name("neighbour");
    return Run({"/bin/sh", "-c", "sleep 2; echo fine"}, req);
  });
  spb::RunSandboxRequest req;
  req.set_policy_toml(PolicyWith("memory_limit = \"64Mi\"\npids_max = 64"));
  auto r =
      Run({"/usr/bin/python3", "-c", "b = bytearray(256 * 1024 * 1024); print('not killed')"}, req);
  EXPECT_EQ(r.status(), "failed");
  EXPECT_EQ(r.signal(), 9);
  EXPECT_TRUE(r.resources().oom_killed());
  EXPECT_EQ(r.stdout().find("not killed"), std::string::npos);
  bool oom_event = false;
  for (const auto& e : r.events()) {
    if (e.kind() != "oom_kill") continue;
    oom_event = true;
    // The limit is read for the message only when there was a kill (not at every task's end).
    EXPECT_NE(e.message().find("zone memory limit 67108864 bytes"), std::string::npos)
        << e.message();
  }
  EXPECT_TRUE(oom_event);
  auto n = neighbour.get();
  EXPECT_EQ(n.status(), "succeeded");
  EXPECT_EQ(n.stdout(), "fine\n");
  EXPECT_TRUE(daemon_->Channel()->WaitForConnected(std::chrono::system_clock::now() +
                                                   std::chrono::seconds(1)))
      << "rauhad survived";
  zpb::DeleteZoneRequest del;
  del.set_name("neighbour");
  zpb::DeleteZoneResponse dresp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &dresp).ok());
}

TEST_F(SandboxTest, ManySandboxesRunConcurrentlyInTheirOwnZones) {
  std::vector<std::future<spb::SandboxResult>> runs;
  for (int i = 0; i < 8; ++i) {
    runs.push_back(std::async(std::launch::async, [this, i] {
      return Run({"/bin/sh", "-c", "sleep 0.5; hostname; echo " + std::to_string(i)});
    }));
  }
  std::set<std::string> zones;
  for (int i = 0; i < 8; ++i) {
    auto r = runs[i].get();
    EXPECT_EQ(r.status(), "succeeded");
    EXPECT_NE(r.stdout().find("\n" + std::to_string(i) + "\n"), std::string::npos);
    zones.insert(r.zone_id());
  }
  EXPECT_EQ(zones.size(), 8u);
  EXPECT_EQ(ZoneCount(*daemon_), 0);
}

TEST_F(SandboxTest, KeepZoneAndNamedZonesStay) {
  spb::RunSandboxRequest keep;
  keep.set_keep_zone(true);
  auto r = Run({"/bin/true"}, keep);
  EXPECT_EQ(r.status(), "succeeded");
  EXPECT_EQ(ZoneCount(*daemon_), 1);
  spb::RunSandboxRequest named;
  named.set_name("mine");
  r = Run({"/bin/true"}, named);
  EXPECT_EQ(r.zone_name(), "mine");
  EXPECT_EQ(ZoneCount(*daemon_), 2);
  // The daemon's stop removes their processes and cgroups (checked by TearDown).
}

TEST_F(SandboxTest, ClientDisconnectKillsTaskAndRemovesZone) {
  spb::RunSandboxRequest req;
  req.add_command("/bin/sleep");
  req.add_command("60");
  spb::SandboxResult result;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1500));
  auto st = daemon_->Sandbox()->RunSandbox(&ctx, req, &result);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  for (int i = 0; i < 100 && ZoneCount(*daemon_) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(ZoneCount(*daemon_), 0);
  // No sleep of ours is left in any cgroup of this rauhad.
  auto sleeps = [&] {
    int n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string pid = e.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream comm("/proc/" + pid + "/comm"), cgroup("/proc/" + pid + "/cgroup");
      std::string name((std::istreambuf_iterator<char>(comm)), std::istreambuf_iterator<char>());
      std::string groups((std::istreambuf_iterator<char>(cgroup)),
                         std::istreambuf_iterator<char>());
      if (name == "sleep\n" && groups.find(daemon_->cgroup_parent()) != std::string::npos) ++n;
    }
    return n;
  };
  for (int i = 0; i < 100 && sleeps() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(sleeps(), 0) << "the task's sleep outlived its client";
  // Without a warm pool only rauhad itself mentions the test directory now (the zone's shim is
  // gone); with one (RAUHA_TEST_WARM_ZONES), the pooled zones' shims and their prepared task
  // processes do too.
  const char* warm = std::getenv("RAUHA_TEST_WARM_ZONES");
  if (warm == nullptr || std::string(warm).empty() || std::string(warm) == "0") {
    for (int i = 0; i < 100 && daemon_->LeftoverProcesses().size() > 1; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(daemon_->LeftoverProcesses().size(), 1u);
  }
}

}  // namespace
}  // namespace rauha::testing
