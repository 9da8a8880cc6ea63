// The warm zone pool (--warm-zones): sandbox calls served by zones made ahead keep the full
// enforcement, each gets a zone of its own that no later task sees, the pool refills, and its
// zones are invisible to the zone API and gone after rauhad stops or restarts.
//
// A pooled zone shows in the kernel and in rauhad's run directory (run/zones/<zone id>) before
// any call; a call's result names its zone's id, so "this call was served from the pool" is
// "its zone id was in run/zones before the call".
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "rauha-common/audit/chain_verifier.h"
#include "rauha-common/audit/signing_key.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

constexpr auto kDeadline = std::chrono::seconds(60);

std::set<std::string> ZoneDirs(const Daemon& d) {
  std::set<std::string> ids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(d.dir() + "/run/zones", ec)) {
    ids.insert(e.path().filename().string());
  }
  return ids;
}

// Polls `done` until it holds or the (generous) deadline passes.
bool WaitFor(const std::function<bool()>& done) {
  const auto until = std::chrono::steady_clock::now() + kDeadline;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

int ListedZones(Daemon& d) {
  zpb::ListZonesResponse list;
  grpc::ClientContext ctx;
  EXPECT_TRUE(d.Zones()->ListZones(&ctx, {}, &list).ok());
  return list.zones_size();
}

// A /proc file's text; "" when its process is gone. (istreambuf_iterator throws when the
// process exits mid-read: the read fails with ESRCH.)
std::string ReadProcFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// True while a rauha-shim of `zone_id` runs.
bool ShimRuns(const std::string& zone_id) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadProcFile("/proc/" + pid + "/cmdline");
    if (cmdline.find("rauha-shim") != std::string::npos &&
        cmdline.find(zone_id) != std::string::npos)
      return true;
  }
  return false;
}

// The path of `file` in the cgroup directory named `zone_id` of the v1 hierarchy `hierarchy`
// ("" when there is none).
std::string CgroupFile(const std::string& zone_id, const std::string& hierarchy,
                       const std::string& file) {
  std::error_code ec;
  const std::string root = "/sys/fs/cgroup/" + hierarchy;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 5) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->path().filename() == zone_id) return it->path().string() + "/" + file;
  }
  return "";
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The pid of the rauha-shim of `zone_id`, or 0.
pid_t ShimPid(const std::string& zone_id) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadProcFile("/proc/" + pid + "/cmdline");
    if (cmdline.find("rauha-shim") != std::string::npos &&
        cmdline.find(zone_id) != std::string::npos)
      return static_cast<pid_t>(std::stol(pid));
  }
  return 0;
}

// The pids listed in a cgroup.procs file.
std::vector<pid_t> Procs(const std::string& path) {
  std::vector<pid_t> pids;
  std::ifstream in(path);
  for (long pid = 0; in >> pid;) pids.push_back(static_cast<pid_t>(pid));
  return pids;
}

// The "PPid:" of /proc/PID/status, or -1.
pid_t ParentOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("PPid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(5)));
  }
  return -1;
}

std::string NamespaceOf(const std::string& pid, const std::string& ns) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/" + pid + "/ns/" + ns, ec).string();
}

class WarmPoolTest : public DaemonTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      if (RequireAll()) FAIL() << "integration tests need root";
      GTEST_SKIP() << "integration tests need root";
    }
    daemon_ = std::make_unique<Daemon>(std::vector<std::string>{"--warm-zones", "2"});
    daemon_->Start();
  }

  // Waits until the pool holds `n` zones ready to be claimed, and nothing else is in run/zones.
  // (A zone's directory exists before its shim does.)
  std::set<std::string> WaitForPool(size_t n) {
    std::set<std::string> ids;
    EXPECT_TRUE(WaitFor([&] {
      ids = ZoneDirs(*daemon_);
      if (ids.size() != n) return false;
      for (const auto& id : ids) {
        if (!ShimRuns(id) || !PooledZoneReady(*daemon_, id)) return false;
      }
      return true;
    })) << "the pool did not reach "
        << n << " zones; run/zones holds " << ids.size() << "; log:\n"
        << daemon_->log();
    return ids;
  }
};

TEST_F(WarmPoolTest, PooledZonesAreNotUserZones) {
  auto pooled = WaitForPool(2);
  EXPECT_EQ(ListedZones(*daemon_), 0) << "pooled zones are not listed";
  for (const auto& id : pooled) {
    EXPECT_TRUE(ShimRuns(id)) << "the pooled zone's shim runs";
    EXPECT_FALSE(CgroupFile(id, "pids", "pids.max").empty()) << "its cgroups exist";
  }
}

TEST_F(WarmPoolTest, PooledSandboxHasTheFullEnforcement) {
  auto pooled = WaitForPool(2);
  // bash's /dev/tcp connect to TEST-NET-1 from an isolated zone: cgroup/connect4 refuses it.
  auto r = Run({"/bin/bash", "-c", "exec 3<>/dev/tcp/192.0.2.1/9"});
  EXPECT_TRUE(pooled.count(r.zone_id())) << "the call was not served from the pool";
  EXPECT_EQ(r.status(), "failed");
  EXPECT_NE(r.stderr().find("Operation not permitted"), std::string::npos) << r.stderr();
  bool connect_denied = false;
  for (const auto& e : r.enforcement_events()) {
    if (e.hook() == "cgroup/connect4" && e.decision() == "deny" &&
        e.object() == "192.0.2.1:9/tcp" && e.source_zone() == r.zone_name())
      connect_denied = true;
  }
  EXPECT_TRUE(connect_denied) << "no cgroup/connect4 denial in the result";
  // The task's own layers: seccomp refuses a new user namespace, and the task runs in its
  // zone's cgroups.
  auto s = Run(
      {"/bin/sh", "-c", "unshare -U true 2>/dev/null && echo unshare-ok; cat /proc/self/cgroup"});
  EXPECT_TRUE(pooled.count(s.zone_id())) << "the second call was not served from the pool";
  EXPECT_EQ(s.stdout().find("unshare-ok"), std::string::npos) << s.stdout();
  bool seccomp = false;
  for (const auto& e : s.enforcement_events()) seccomp |= e.layer() == "seccomp";
  EXPECT_TRUE(seccomp) << "no seccomp denial in the result";
  EXPECT_NE(s.stdout().find(s.zone_id()), std::string::npos)
      << "the task runs in its zone's cgroups: " << s.stdout();
}

TEST_F(WarmPoolTest, ConsecutivePooledSandboxesSeeNothingOfEachOther) {
  auto pooled = WaitForPool(2);
  auto first = Run({"/bin/sh", "-c",
                    "echo secret > /tmp/left-behind; (sleep 30 >/dev/null 2>&1 &) ; hostname; "
                    "cat /proc/self/cgroup | grep memory; readlink /proc/self/ns/net"});
  ASSERT_EQ(first.status(), "succeeded") << first.stderr();
  auto second =
      Run({"/bin/sh", "-c",
           "ls -A /tmp; cat /tmp/left-behind 2>&1; cat /proc/[0-9]*/comm | grep -c '^sleep$'; "
           "hostname; cat /proc/self/cgroup | grep memory; readlink /proc/self/ns/net"});
  EXPECT_TRUE(pooled.count(first.zone_id()));
  EXPECT_TRUE(pooled.count(second.zone_id()));
  EXPECT_NE(first.zone_id(), second.zone_id()) << "each task gets a zone of its own";
  EXPECT_NE(first.zone_name(), second.zone_name());
  EXPECT_EQ(second.stdout().find("secret"), std::string::npos)
      << "the second task saw the first's file: " << second.stdout();
  EXPECT_NE(second.stdout().find("No such file"), std::string::npos) << second.stdout();
  EXPECT_NE(second.stdout().find("\n0\n"), std::string::npos)
      << "the second task sees a sleep process: " << second.stdout();
  EXPECT_EQ(second.stdout().find(first.zone_id()), std::string::npos)
      << "the second task is in the first's cgroup: " << second.stdout();
  // Hostname and network namespace: the zone's own.
  EXPECT_NE(first.stdout().find(first.zone_name()), std::string::npos) << first.stdout();
  EXPECT_NE(second.stdout().find(second.zone_name()), std::string::npos) << second.stdout();
  auto net_of = [](const std::string& out) { return out.substr(out.rfind("net:[")); };
  ASSERT_NE(first.stdout().rfind("net:["), std::string::npos) << first.stdout();
  ASSERT_NE(second.stdout().rfind("net:["), std::string::npos) << second.stdout();
  EXPECT_NE(net_of(first.stdout()), net_of(second.stdout()));
}

// Each pooled zone holds its task's process already (rauha-shim/prepared_task.h): a child of
// the zone's shim, in a pid namespace of its own and in the zone's cgroups in every v1
// hierarchy, in a mount namespace of its own whose root it built ahead (root_ahead.h: the
// curated /etc, nothing of the request yet). The call that claims the zone runs its task as
// exactly that process, in that mount namespace.
TEST_F(WarmPoolTest, APooledZoneHoldsItsTaskProcessInItsCgroups) {
  auto pooled = WaitForPool(2);
  std::map<std::string, pid_t> prepared;  // by zone id
  for (const auto& id : pooled) {
    const pid_t shim = ShimPid(id);
    ASSERT_GT(shim, 0) << "no shim for pooled zone " << id;
    ASSERT_FALSE(CgroupFile(id, "memory", "cgroup.procs").empty()) << "zone " << id;
    ASSERT_FALSE(CgroupFile(id, "pids", "cgroup.procs").empty()) << "zone " << id;
    // Every v1 hierarchy the zone has a cgroup in (this host: cpu, cpuacct, memory, pids, ...).
    for (const char* hierarchy :
         {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd"}) {
      const std::string procs = CgroupFile(id, hierarchy, "cgroup.procs");
      if (procs.empty()) continue;
      auto pids = Procs(procs);
      ASSERT_EQ(pids.size(), 1u) << procs << " holds " << pids.size() << " processes";
      if (prepared.count(id)) {
        EXPECT_EQ(pids[0], prepared[id]) << "another process in " << procs;
      } else {
        prepared[id] = pids[0];
      }
    }
    const pid_t p = prepared[id];
    EXPECT_EQ(ParentOf(p), shim) << "the prepared process is not the shim's child";
    const std::string pid = std::to_string(p), shim_pid = std::to_string(shim);
    EXPECT_NE(NamespaceOf(pid, "pid"), NamespaceOf(shim_pid, "pid"))
        << "the prepared process is not in a pid namespace of its own";
    EXPECT_NE(NamespaceOf(pid, "mnt"), NamespaceOf(shim_pid, "mnt"))
        << "the prepared process did not build its root ahead, in a mount namespace of its own";
    const std::string root = "/proc/" + pid + "/root";
    EXPECT_TRUE(std::filesystem::exists(root + "/etc/passwd")) << "no curated /etc in its root";
    EXPECT_FALSE(std::filesystem::exists(root + "/etc/shadow")) << "its root is the host's";
    EXPECT_FALSE(std::filesystem::exists(root + "/workspace")) << "a request's mount, before one";
  }
  std::map<std::string, std::string> mounts_of;  // by zone id: the prepared process's
  for (const auto& [id, p] : prepared) mounts_of[id] = NamespaceOf(std::to_string(p), "mnt");
  auto r = Run({"/bin/sh", "-c", "echo $$; cat /proc/1/comm; readlink /proc/self/ns/mnt"});
  ASSERT_EQ(r.status(), "succeeded") << r.stderr();
  ASSERT_TRUE(prepared.count(r.zone_id())) << "the call was not served from the pool";
  bool started_as_prepared = false;
  for (const auto& e : r.events()) {
    if (e.kind() == "started") {
      started_as_prepared =
          e.message().rfind("pid " + std::to_string(prepared[r.zone_id()]) + " in zone ", 0) == 0;
    }
  }
  EXPECT_TRUE(started_as_prepared) << "the task's init is not the prepared process "
                                   << prepared[r.zone_id()] << ": " << r.DebugString();
  // The workload is pid 2 of its namespace, under the init (pid 1), as without a pool, in the
  // root its process built ahead.
  EXPECT_EQ(r.stdout(), "2\nrauha-init\n" + mounts_of[r.zone_id()] + "\n");
}

// A prepared task process takes its mount namespace when its task comes, not when the zone
// was pooled: a mount made on the host in between is what the task's repo_path shows.
TEST_F(WarmPoolTest, APooledTaskSeesMountsMadeAfterItsZoneWasPooled) {
  auto pooled = WaitForPool(2);
  const std::string repo = daemon_->dir() + "/late-mount";
  std::filesystem::create_directories(repo);
  ASSERT_EQ(::mount("tmpfs", repo.c_str(), "tmpfs", 0, "size=1m,mode=0755"), 0)
      << "mount tmpfs at " << repo << ": " << strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{repo};
  std::ofstream(repo + "/marker") << "mounted after pooling\n";
  spb::RunSandboxRequest req;
  req.set_repo_path(repo);
  auto r = Run({"/bin/cat", "/workspace/marker"}, req);
  EXPECT_TRUE(pooled.count(r.zone_id())) << "the call was not served from the pool";
  EXPECT_EQ(r.status(), "succeeded") << r.error() << " " << r.stderr();
  EXPECT_EQ(r.stdout(), "mounted after pooling\n");
}

// The repository of a call served from a root built ahead is attached at the call, with the
// flags the ordinary path gives it: writable, nosuid and nodev, idmapped (its owner shows as
// the task's user), private (no propagation to or from the host); the root itself is
// read-only, and the task runs in the mount namespace its process built ahead.
TEST_F(WarmPoolTest, APooledTasksRepoIsAttachedAtTheCallWithItsFlags) {
  auto pooled = WaitForPool(2);
  std::map<std::string, std::string> mounts_of;  // by zone id: the prepared process's namespace
  for (const auto& id : pooled) {
    const std::string procs = CgroupFile(id, "pids", "cgroup.procs");
    auto pids = Procs(procs);
    ASSERT_EQ(pids.size(), 1u) << procs;
    mounts_of[id] = NamespaceOf(std::to_string(pids[0]), "mnt");
  }
  const std::string repo = daemon_->dir() + "/ahead-repo";
  std::filesystem::create_directories(repo);
  std::ofstream(repo + "/in") << "from the host\n";
  spb::RunSandboxRequest req;
  req.set_repo_path(repo);
  auto r = Run({"/bin/sh", "-c",
                "readlink /proc/self/ns/mnt; cat in; stat -c %u:%g .; echo out > out && echo "
                "wrote; touch /new-in-root 2>&1; grep ' /workspace ' /proc/self/mountinfo"},
               req);
  ASSERT_TRUE(pooled.count(r.zone_id())) << "the call was not served from the pool";
  ASSERT_EQ(r.status(), "succeeded") << r.error() << " " << r.stderr();
  std::istringstream out(r.stdout());
  std::string mnt, in, owner, wrote, touch, mountinfo;
  std::getline(out, mnt);
  std::getline(out, in);
  std::getline(out, owner);
  std::getline(out, wrote);
  std::getline(out, touch);
  std::getline(out, mountinfo);
  EXPECT_EQ(mnt, mounts_of[r.zone_id()]) << "not the root built ahead: " << r.stdout();
  EXPECT_EQ(in, "from the host");
  EXPECT_EQ(owner, "0:0") << "the repo's owner (host root) is not shown as the task's user";
  EXPECT_EQ(wrote, "wrote");
  EXPECT_NE(touch.find("Read-only file system"), std::string::npos) << r.stdout();
  EXPECT_NE(mountinfo.find(" rw,nosuid,nodev"), std::string::npos) << mountinfo;
  EXPECT_NE(mountinfo.find("idmapped"), std::string::npos) << mountinfo;
  EXPECT_EQ(mountinfo.find("shared:"), std::string::npos) << mountinfo;
  EXPECT_EQ(mountinfo.find("master:"), std::string::npos) << mountinfo;
  struct stat st {};
  ASSERT_EQ(::stat((repo + "/out").c_str(), &st), 0) << "the task's write is not on the host";
  EXPECT_EQ(st.st_uid, 0u) << "written through the idmap as the repo's owner";
}

TEST_F(WarmPoolTest, UsedZonesAreRemovedAndThePoolRefills) {
  auto pooled = WaitForPool(2);
  auto r = Run({"/bin/true"});
  ASSERT_EQ(r.status(), "succeeded") << r.stderr();
  ASSERT_TRUE(pooled.count(r.zone_id()));
  // To the API the used zone is gone as soon as the call answers; its teardown follows in the
  // background, and a new zone takes its place.
  zpb::GetZoneRequest get;
  get.set_name(r.zone_name());
  zpb::GetZoneResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(daemon_->Zones()->GetZone(&ctx, get, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  std::set<std::string> now;
  EXPECT_TRUE(WaitFor([&] {
    now = ZoneDirs(*daemon_);
    return now.size() == 2 && !now.count(r.zone_id());
  })) << "the pool did not refill to 2 zones without the used one";
  EXPECT_TRUE(WaitFor([&] { return !ShimRuns(r.zone_id()); })) << "the used zone's shim runs";
  int fresh = 0;
  for (const auto& id : now) fresh += pooled.count(id) ? 0 : 1;
  EXPECT_EQ(fresh, 1) << "one new zone replaced the used one";
  EXPECT_EQ(ListedZones(*daemon_), 0);
}

// A pooled call's audit records: its zone's Running record is signed while the shim starts
// the task (audit::Recorder::Hold) yet stays in its place, before the task's; and the zone,
// retiring once its task ended, goes from Running to Stopping (no Ready: it takes no task
// again). The chain verifies.
TEST_F(WarmPoolTest, APooledCallsZoneRecordsAreInOrderAndItIsNotReadyAgain) {
  auto pooled = WaitForPool(2);
  auto r = Run({"/bin/true"});
  ASSERT_EQ(r.status(), "succeeded") << r.stderr();
  ASSERT_TRUE(pooled.count(r.zone_id())) << "the call was not served from the pool";
  const std::string audit_dir = daemon_->dir() + "/state/audit";
  // The zone's records, in the chain's order, once its deletion is recorded.
  std::vector<std::string> records;
  auto read_records = [&] {
    records.clear();
    std::ifstream in(audit_dir + "/log-000000.ndjson");
    for (std::string line; std::getline(in, line);) {
      auto rec = nlohmann::json::parse(line, nullptr, false);
      if (!rec.is_object() || rec.value("zone_id", "") != r.zone_id()) continue;
      std::string kind = rec.value("kind", "");
      if (kind == "zone.state") kind += ":" + rec["body"].value("state", "");
      records.push_back(kind);
    }
    return !records.empty() && records.back() == "zone.delete";
  };
  ASSERT_TRUE(WaitFor(read_records)) << "no zone.delete record for the used zone";
  EXPECT_EQ(records,
            (std::vector<std::string>{"zone.state:Ready", "zone.create", "zone.state:Running",
                                      "task.start", "task.finish", "zone.state:Stopping",
                                      "zone.state:Destroying", "zone.delete"}));
  auto key = audit::PublicKey::FromPemFile(audit_dir + "/key.pub");
  ASSERT_TRUE(key.ok()) << key.status();
  audit::ChainVerifier verifier(*key);
  std::ifstream in(audit_dir + "/log-000000.ndjson");
  std::stringstream text;
  text << in.rdbuf();
  verifier.AddSegment("log-000000.ndjson", text.str());
  audit::ChainReport report = verifier.Finish();
  EXPECT_TRUE(report.intact) << report.error;
}

TEST_F(WarmPoolTest, PoolZonesAreRemovedWhenRauhadStops) {
  auto pooled = WaitForPool(2);
  daemon_->Stop();
  EXPECT_TRUE(ZoneDirs(*daemon_).empty());
  for (const auto& id : pooled) EXPECT_FALSE(ShimRuns(id)) << "shim of pooled zone " << id;
  // TearDown checks cgroups, mounts, processes and BPF pins of this daemon.
}

TEST_F(WarmPoolTest, PoolZonesOfACrashedRauhadAreRemovedAtTheNextStart) {
  auto pooled = WaitForPool(2);
  daemon_->Kill9();
  for (const auto& id : pooled) EXPECT_TRUE(ShimRuns(id)) << "shims outlive a crash";
  daemon_->set_extra_args({"--warm-zones", "0"});
  daemon_->Start();
  EXPECT_TRUE(WaitFor([&] { return ZoneDirs(*daemon_).empty(); }))
      << "zones of the old pool are still in run/zones";
  for (const auto& id : pooled) {
    EXPECT_TRUE(WaitFor([&] { return !ShimRuns(id); })) << "shim of old pooled zone " << id;
  }
  EXPECT_EQ(ListedZones(*daemon_), 0);
}

TEST_F(WarmPoolTest, AnInlinePolicyIsPooledFromItsSecondCallOn) {
  WaitForPool(2);
  spb::RunSandboxRequest req;
  req.set_policy_toml(PolicyWith("pids_max = 64"));
  auto first = Run({"/bin/true"}, req);
  ASSERT_EQ(first.status(), "succeeded") << first.stderr();
  // Two zones of the default policy (pids.max 512 in the standard preset), and now two of
  // this one, with its limit.
  std::set<std::string> ids = WaitForPool(4);
  std::set<std::string> limited;
  for (const auto& id : ids) {
    if (ReadFirstLine(CgroupFile(id, "pids", "pids.max")) == "64") limited.insert(id);
  }
  EXPECT_EQ(limited.size(), 2u) << "zones pooled with the inline policy's pids.max";
  auto second = Run({"/bin/true"}, req);
  ASSERT_EQ(second.status(), "succeeded") << second.stderr();
  EXPECT_TRUE(limited.count(second.zone_id()))
      << "the second call was not served a pooled zone of its policy";
  EXPECT_FALSE(ids.count(first.zone_id()));
  auto plain = Run({"/bin/true"});
  EXPECT_TRUE(ids.count(plain.zone_id()) && !limited.count(plain.zone_id()))
      << "a call with the default policy got a zone of another policy";
}

// The pool follows demand: every call that finds its policy's pool empty makes the pool keep one
// more zone ready, up to --warm-zones-max; after --warm-zones-shrink-after without calls it is
// back at --warm-zones, the extra zones deleted. (15 s: far longer than refilling three zones
// takes on a loaded machine, so the pool cannot shrink before the test saw it grown.)
TEST_F(WarmPoolTest, APoolFoundEmptyGrowsToItsBoundAndShrinksWhenIdle) {
  daemon_->Stop();
  daemon_->set_extra_args(
      {"--warm-zones", "1", "--warm-zones-max", "3", "--warm-zones-shrink-after", "15"});
  daemon_->Start();
  auto first = WaitForPool(1);
  // Eight calls at once: at most one gets the pooled zone; each of the others finds the pool
  // empty (or takes a zone made for it meanwhile).
  constexpr int kCalls = 8;
  std::vector<spb::SandboxResult> results(kCalls);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kCalls; ++i) {
      threads.emplace_back([&, i] { results[i] = Run({"/bin/true"}); });
    }
    for (auto& t : threads) t.join();
  }
  std::set<std::string> used;
  for (const auto& r : results) {
    EXPECT_EQ(r.status(), "succeeded") << r.error() << r.stderr();
    used.insert(r.zone_id());
  }
  EXPECT_EQ(used.size(), static_cast<size_t>(kCalls)) << "each call had a zone of its own";
  // Grown to its bound: three fresh zones ready at once (with one zone kept, never more than
  // one is ready).
  std::set<std::string> grown;
  EXPECT_TRUE(WaitFor([&] {
    grown = ZoneDirs(*daemon_);
    if (grown.size() != 3) return false;
    for (const auto& id : grown) {
      if (used.count(id) || !ShimRuns(id) || !PooledZoneReady(*daemon_, id)) return false;
    }
    return true;
  })) << "the pool did not grow to 3 ready zones; log:\n"
      << daemon_->log();
  // Served from the grown pool: three calls one after another, each a pooled zone.
  for (int i = 0; i < 3; ++i) {
    auto r = Run({"/bin/true"});
    EXPECT_TRUE(grown.count(r.zone_id())) << "call " << i << " was not served from the pool";
  }
  // Idle: back at one zone, the others deleted, shims and all.
  EXPECT_TRUE(WaitFor([&] {
    return daemon_->log().find("had no call for 15 s: keeping 1 zones, not 3") != std::string::npos;
  })) << "the idle pool did not shrink; log:\n"
      << daemon_->log();
  std::set<std::string> now;
  EXPECT_TRUE(WaitFor([&] {
    now = ZoneDirs(*daemon_);
    return now.size() == 1 && ShimRuns(*now.begin()) && PooledZoneReady(*daemon_, *now.begin());
  })) << "the idle pool did not shrink to --warm-zones; run/zones holds "
      << now.size();
  for (const auto& id : grown) {
    if (!now.count(id)) {
      EXPECT_TRUE(WaitFor([&] { return !ShimRuns(id); })) << id;
    }
  }
  EXPECT_EQ(ListedZones(*daemon_), 0);
}

class NoPoolTest : public DaemonTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      if (RequireAll()) FAIL() << "integration tests need root";
      GTEST_SKIP() << "integration tests need root";
    }
    daemon_ = std::make_unique<Daemon>(std::vector<std::string>{"--warm-zones", "0"});
    daemon_->Start();
  }
};

TEST_F(NoPoolTest, WarmZonesZeroKeepsNoZonesAhead) {
  EXPECT_TRUE(ZoneDirs(*daemon_).empty());
  auto r = Run({"/bin/true"});
  ASSERT_EQ(r.status(), "succeeded") << r.stderr();
  // Made for the call and removed before it answered: nothing is made ahead or after.
  EXPECT_TRUE(ZoneDirs(*daemon_).empty()) << "a zone exists besides the call's";
  auto again = Run({"/bin/true"});
  EXPECT_NE(again.zone_id(), r.zone_id());
  EXPECT_TRUE(ZoneDirs(*daemon_).empty());
}

}  // namespace
}  // namespace rauha::testing
