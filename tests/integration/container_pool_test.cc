// Containers without a zone on a rauhad with a warm pool (--warm-zones): `rauha run` takes a
// zone made ahead instead of making one, and every container still gets a fresh one (nothing of
// one run is visible to the next); the zone outlives a crash of rauhad like a zone made for
// the container; and a deleted container's directory, moved out of the way at once and
// unlinked off the request path, is gone in the end, also when a crash interrupted that; and a
// --rm container that ended while no rauhad ran is removed by the next one.
#include <fstream>
#include <set>
#include <sstream>

#include "tests/integration/container_pool_fixture.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;

class ContainerPoolTest : public PooledContainerTest {
 protected:
  bool ShimRunsFor(const std::string& zone_name) {
    for (const auto& e : fs::directory_iterator("/proc")) {
      const std::string pid = e.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      // Read with read(2): a process that exits meanwhile makes the read fail (ESRCH), which
      // istream iterators turn into an exception.
      std::string cmdline;
      int fd = ::open(("/proc/" + pid + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) cmdline.append(buf, n);
      ::close(fd);
      if (cmdline.find("rauha-shim") != std::string::npos &&
          cmdline.find(std::string("--zone-name") + '\0' + zone_name + '\0') != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  static bool WriteFile(const std::string& path, const std::string& content) {
    std::ofstream out(path);
    out << content;
    return static_cast<bool>(out);
  }

  size_t ListedContainers() {
    grpc::ClientContext ctx;
    cpb::ListContainersResponse all;
    EXPECT_TRUE(containers_->ListContainers(&ctx, {}, &all).ok());
    return static_cast<size_t>(all.containers_size());
  }
};

TEST_F(ContainerPoolTest, RunRmTakesAPooledZoneAndTheNextRunSeesNothingOfIt) {
  // Each run prints its hostname (its zone's name), says whether anything of an earlier run is
  // there (files in its root and /tmp, a process), and leaves all of that behind it.
  const std::string script =
      "/bin/busybox hostname; "
      "if [ -e /mark ] || [ -e /tmp/mark ]; then echo stale-file; fi; "
      "if /bin/busybox pidof sleep >/dev/null; then echo stale-process; fi; "
      "echo x > /mark; echo x > /tmp/mark; /bin/busybox sleep 4242 & "
      "echo done";
  std::set<std::string> hostnames;
  for (size_t run = 1; run <= 2; ++run) {
    std::vector<std::string> ready = PoolReady(run);
    std::string out, err;
    int rc = CliSplit({"run", "--rm", image_, "/bin/busybox", "sh", "-c", script}, &out, &err);
    ASSERT_EQ(rc, 0) << out << err;
    std::string host = out.substr(0, out.find('\n'));
    EXPECT_EQ(out, host + "\ndone\n") << "nothing of an earlier run is visible";
    EXPECT_NE(std::find(ready.begin(), ready.end(), host), ready.end())
        << "run " << run << " ran in zone " << host << ", not one the pool had ready";
    hostnames.insert(host);
    // docker's --rm: the container is gone when the command returns, and with it its zone
    // (to the API: the pool deletes the zone's kernel side after the call).
    EXPECT_EQ(ListedContainers(), 0u);
    EXPECT_EQ(ZoneCount(), 0);
    EXPECT_TRUE(fs::is_empty(State() + "/containers"));
  }
  EXPECT_EQ(hostnames.size(), 2u) << "each run had a zone of its own";
  // Nothing is left in the end: the zones' shims exit, the directories are unlinked.
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  auto leftovers = [&] {
    bool shims = false;
    for (const auto& h : hostnames) shims = shims || ShimRunsFor(h);
    return shims || !fs::is_empty(State() + "/containers-removing");
  };
  while (leftovers() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  for (const auto& h : hostnames) EXPECT_FALSE(ShimRunsFor(h)) << "zone " << h << "'s shim";
  EXPECT_TRUE(fs::is_empty(State() + "/containers-removing"));
}

TEST_F(ContainerPoolTest, APooledZoneLastsAsLongAsItsContainerAcrossARauhadCrash) {
  std::vector<std::string> ready = PoolReady(1);
  std::string id;
  ASSERT_TRUE(Create({"/bin/busybox", "sh", "-c", "echo ran; exit 5"}, &id).ok());
  cpb::ContainerInfo info;
  ASSERT_TRUE(Get(id, &info).ok());
  EXPECT_NE(std::find(ready.begin(), ready.end(), info.zone_name()), ready.end())
      << info.zone_name();
  // Created, never started: a zone of the pool is a temporary zone, which a new rauhad removes
  // when no task runs in it; a container's zone is not one.
  daemon_->Kill9();
  daemon_->Start();
  containers_ = cpb::ContainerService::NewStub(daemon_->Channel());
  ASSERT_TRUE(Get(id, &info).ok());
  EXPECT_EQ(info.state(), "Created");
  ASSERT_EQ(ZoneCount(), 1) << "its zone is still there";
  ASSERT_TRUE(Start(id).ok());
  EXPECT_EQ(WaitForState(id, "Stopped").exit_code(), 5);
  auto logs = Logs(id, false, 0);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].line(), "ran");
  ASSERT_TRUE(Delete(id, false).ok());
  ExpectGone(id);
  EXPECT_EQ(ZoneCount(), 0);
}

TEST_F(ContainerPoolTest, ARunRmContainerThatEndedWhileRauhadWasDownIsRemovedWithItsZone) {
  PoolReady(1);
  // rauha run --rm (one RunContainer call) whose container waits for a file in its /tmp.
  const std::string base = daemon_->dir() + "/rm-cli";
  pid_t cli = SpawnCli({RAUHA_CLI_BIN, "--socket", daemon_->socket(), "run", "--rm", "--name",
                        "ends-alone", image_, "/bin/busybox", "sh", "-c",
                        "until [ -e /tmp/go ]; do /bin/busybox sleep 0.05; done; exit 7"},
                       base + ".out", base + ".err");
  const cpb::ContainerInfo running = WaitForRunningNamed("ends-alone");
  const std::string id = running.id();
  const int64_t pid = running.pid();
  ASSERT_FALSE(id.empty()) << ReadWholeFile(base + ".err");
  // It ends while no rauhad watches it: its shim keeps its result, its record says Running.
  daemon_->Kill9();
  ASSERT_EQ(::waitpid(cli, nullptr, 0), cli);
  ASSERT_TRUE(WriteFile("/proc/" + std::to_string(pid) + "/root/tmp/go", ""));
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (::kill(static_cast<pid_t>(pid), 0) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(::kill(static_cast<pid_t>(pid), 0), 0) << "the container never ended";
  // The next rauhad collects its exit from the shim and removes it, with its zone.
  daemon_->Start();
  containers_ = cpb::ContainerService::NewStub(daemon_->Channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  cpb::WaitContainerRequest req;
  req.set_container_id(id);
  cpb::WaitContainerResponse waited;
  ASSERT_TRUE(containers_->WaitContainer(&ctx, req, &waited).ok());
  EXPECT_EQ(waited.exit_code(), 7);
  EXPECT_TRUE(waited.removed());
  WaitGone(id);
  EXPECT_EQ(ListedContainers(), 0u);
  EXPECT_EQ(ZoneCount(), 0);
  EXPECT_TRUE(fs::is_empty(State() + "/containers"));
}

TEST_F(ContainerPoolTest, DirectoriesACrashLeftInTheRemovalQueueAreRemovedAtStart) {
  // What a rauhad that died between moving a deleted container's directory aside and
  // unlinking it leaves: a tree with a link pointing out of it, which is removed, not followed.
  const std::string outside = daemon_->dir() + "/outside";
  ASSERT_TRUE(WriteFile(outside, "keep me"));
  daemon_->Kill9();
  const std::string left = State() + "/containers-removing/1b4e28ba-2fa1-11d2-883f-0016d3cca427";
  fs::create_directories(left + "/upper/etc/deep");
  ASSERT_TRUE(WriteFile(left + "/upper/etc/deep/file", "x"));
  ASSERT_TRUE(WriteFile(left + "/container.log", "log"));
  fs::create_symlink(outside, left + "/upper/link");
  fs::create_directory_symlink(daemon_->dir(), left + "/upper/dirlink");
  daemon_->Start();
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (fs::exists(left) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(fs::exists(left));
  EXPECT_EQ(ReadWholeFile(outside), "keep me");
  EXPECT_TRUE(fs::exists(daemon_->dir() + "/state"));
}

}  // namespace
}  // namespace rauha::testing
