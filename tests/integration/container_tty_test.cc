// Containers in the states and on the devices docker users rely on, against a real rauhad:
// a pseudo-terminal opened inside the container (its own devpts instance); `rauha run -it`
// driven through a real pty the test opens, as a person at a terminal would; Paused (its
// zone's cgroup frozen, as the kernel reports it) and back; and the image lease of a
// container whose process outlived a rauhad crash.
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>

#include <fstream>

#include "tests/integration/container_fixture.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;

class ContainerTtyTest : public ContainerTest {
 protected:
  // Whether the kernel holds the process frozen, by its cgroup freezer: the v1 freezer's
  // freezer.state (a hybrid host), or the v2 cgroup.events of its cgroup (at
  // /sys/fs/cgroup or /sys/fs/cgroup/unified). `*seen` says what was read.
  static bool Frozen(pid_t pid, std::string* seen) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
    std::string line;
    bool frozen = false;
    seen->clear();
    while (std::getline(in, line)) {
      std::string files[2];
      if (line.find(":freezer:") != std::string::npos) {
        files[0] =
            "/sys/fs/cgroup/freezer" + line.substr(line.find(":freezer:") + 9) + "/freezer.state";
      } else if (line.starts_with("0::")) {
        files[0] = "/sys/fs/cgroup" + line.substr(3) + "/cgroup.events";
        files[1] = "/sys/fs/cgroup/unified" + line.substr(3) + "/cgroup.events";
      }
      for (const auto& f : files) {
        if (f.empty() || !fs::exists(f)) continue;
        std::string text = ReadWholeFile(f);
        *seen += f + ": " + text + "\n";
        frozen = frozen || text.find("FROZEN") != std::string::npos ||
                 text.find("frozen 1") != std::string::npos;
      }
    }
    return frozen;
  }
  grpc::Status PauseZone(const std::string& name, bool pause) {
    grpc::ClientContext ctx;
    if (pause) {
      zpb::PauseZoneRequest req;
      req.set_name(name);
      zpb::PauseZoneResponse resp;
      return daemon_->Zones()->PauseZone(&ctx, req, &resp);
    }
    zpb::ResumeZoneRequest req;
    req.set_name(name);
    zpb::ResumeZoneResponse resp;
    return daemon_->Zones()->ResumeZone(&ctx, req, &resp);
  }
};

TEST_F(ContainerTtyTest, PseudoTerminalsOpenInsideTheContainer) {
  // pty_probe opens /dev/ptmx, unlocks a slave, makes it the controlling terminal of `tty`.
  int rc = 0;
  std::string out = Cli({"run", "--rm", image_, "/bin/pty_probe", "/bin/busybox", "sh", "-c",
                         "/bin/busybox tty; exit 3"},
                        &rc);
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("pty-probe: slave /dev/pts/0"), std::string::npos)
      << "a devpts instance of the container's own starts at 0:\n"
      << out;
  EXPECT_NE(out.find("/dev/pts/0\r\n"), std::string::npos) << "tty names its terminal:\n" << out;
  // /dev/ptmx is the instance's own (a link to pts/ptmx), and devpts is mounted there.
  out = Cli({"run", "--rm", image_, "/bin/busybox", "sh", "-c",
             "/bin/busybox readlink /dev/ptmx; /bin/busybox grep ' /dev/pts ' /proc/self/mounts"},
            &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("pts/ptmx\n"), std::string::npos) << out;
  EXPECT_NE(out.find("devpts /dev/pts devpts"), std::string::npos) << out;
  EXPECT_NE(out.find("ptmxmode=666"), std::string::npos) << out;
}

TEST_F(ContainerTtyTest, RunDashItThroughARealTerminal) {
  // The test is the person at the terminal: rauha's stdin, stdout and stderr are the slave
  // of a pty whose master the test reads and types into.
  int master = -1;
  winsize size{};
  size.ws_row = 33;
  size.ws_col = 101;
  std::string socket = daemon_->socket();
  pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
  ASSERT_GE(pid, 0) << strerror(errno);
  if (pid == 0) {
    ::execl(RAUHA_CLI_BIN, RAUHA_CLI_BIN, "--socket", socket.c_str(), "run", "-it", "--rm",
            image_.c_str(), "/bin/busybox", "sh", nullptr);
    ::_exit(127);
  }
  // Typed at once: the line waits in the terminals until the shell reads it. \r is the Enter
  // key of a raw terminal; the container's terminal turns it into \n (icrnl).
  const std::string typed = "/bin/busybox stty size; echo $((6*7))-answer; exit 5\r";
  ASSERT_EQ(::write(master, typed.data(), typed.size()), static_cast<ssize_t>(typed.size()));
  std::string seen;
  int status = -1;
  bool exited = false;
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) {
      char buf[4096];
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) {
        seen.append(buf, static_cast<size_t>(n));
        continue;
      }
      // EIO: every holder of the slave is gone.
    }
    if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) exited = true;
    if (exited && p.revents & (POLLHUP | POLLERR)) break;
    if (exited && !(p.revents & POLLIN)) break;
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ::close(master);
  ASSERT_TRUE(exited) << "rauha run -it did not end; the terminal showed:\n" << seen;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 5) << seen;
  EXPECT_NE(seen.find("42-answer"), std::string::npos) << seen;
  EXPECT_NE(seen.find("33 101"), std::string::npos) << "the container's terminal has ours size:\n"
                                                    << seen;
  // --rm: gone, with its zone, once rauha has returned.
  EXPECT_EQ(ZoneCount(), 0);
}

// ^C at the terminal reaches the container both ways: with -it this terminal is raw and ^C
// is a key the container's terminal turns into a SIGINT for its foreground process group;
// with -t alone (keys do not go to the container) it is this terminal's SIGINT, which the CLI
// sends on (--sig-proxy).
TEST_F(ContainerTtyTest, CtrlCAtTheTerminalReachesTheContainer) {
  for (const char* mode : {"-it", "-t"}) {
    SCOPED_TRACE(mode);
    int master = -1;
    std::string socket = daemon_->socket();
    pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    ASSERT_GE(pid, 0) << strerror(errno);
    if (pid == 0) {
      ::execl(RAUHA_CLI_BIN, RAUHA_CLI_BIN, "--socket", socket.c_str(), "run", mode, "--rm",
              image_.c_str(), "/bin/busybox", "sh", "-c",
              "trap 'echo got-int; exit 9' INT; echo ready; while :; do /bin/busybox sleep 0.05; "
              "done",
              nullptr);
      ::_exit(127);
    }
    std::string seen;
    bool typed = false, exited = false;
    int status = -1;
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, 200) > 0) {
        char buf[4096];
        ssize_t n = ::read(master, buf, sizeof buf);
        if (n > 0) {
          seen.append(buf, static_cast<size_t>(n));
          // Typed once the trap is set (the container printed "ready" after setting it, and
          // the CLI prints output only once its proxy is in place).
          if (!typed && seen.find("ready") != std::string::npos) {
            ASSERT_EQ(::write(master, "\x03", 1), 1);
            typed = true;
          }
          continue;
        }
      }
      if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) exited = true;
      if (exited && !(p.revents & POLLIN)) break;
    }
    if (!exited) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    ::close(master);
    ASSERT_TRUE(typed) << "the container never printed ready:\n" << seen;
    ASSERT_TRUE(exited) << "rauha run did not end after ^C; the terminal showed:\n" << seen;
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 9) << seen;
    EXPECT_NE(seen.find("got-int"), std::string::npos) << seen;
    EXPECT_EQ(ZoneCount(), 0);
  }
}

TEST_F(ContainerTtyTest, PausedFreezesTheContainerAndResumeThaws) {
  ASSERT_TRUE(CreateZone("frozen").ok());
  std::string id;
  ASSERT_TRUE(Create({"/bin/busybox", "sleep", "1000"}, &id, "frozen").ok());
  ASSERT_TRUE(Start(id).ok());
  cpb::ContainerInfo info = WaitForState(id, "Running");
  pid_t pid = static_cast<pid_t>(info.pid());
  std::string seen;
  EXPECT_FALSE(Frozen(pid, &seen)) << seen;
  ASSERT_FALSE(seen.empty()) << "no freezer of pid " << pid << " found";
  ASSERT_TRUE(PauseZone("frozen", true).ok());
  ASSERT_TRUE(Get(id, &info).ok());
  EXPECT_EQ(info.state(), "Paused");
  EXPECT_TRUE(Frozen(pid, &seen)) << seen;
  int rc = 0;
  std::string out = Cli({"ps"}, &rc);
  EXPECT_NE(out.find("Paused"), std::string::npos) << "ps lists paused ones:\n" << out;
  ASSERT_TRUE(PauseZone("frozen", false).ok());
  ASSERT_TRUE(Get(id, &info).ok());
  EXPECT_EQ(info.state(), "Running");
  EXPECT_FALSE(Frozen(pid, &seen)) << seen;
  cpb::ExecInContainerResponse exec;
  ASSERT_TRUE(Exec(id, {"/bin/busybox", "echo", "thawed"}, &exec).ok());
  EXPECT_EQ(exec.stdout(), "thawed\n");
  ASSERT_TRUE(Delete(id, true).ok());
  ExpectGone(id);
}

TEST_F(ContainerTtyTest, ImageLeaseHoldsForAContainerThatOutlivedARauhadCrash) {
  std::string id;
  ASSERT_TRUE(Create({"/bin/busybox", "sleep", "1000"}, &id).ok());
  ASSERT_TRUE(Start(id).ok());
  WaitForState(id, "Running");
  std::string layers = State() + "/layers/sha256";
  ASSERT_TRUE(fs::exists(layers));
  auto count = [&] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(layers)) n += e.is_directory();
    return n;
  };
  size_t before = count();
  ASSERT_GT(before, 0u);
  daemon_->Kill9();
  daemon_->Start();
  containers_ = cpb::ContainerService::NewStub(daemon_->Channel());
  auto images = ipb::ImageService::NewStub(daemon_->Channel());
  {
    grpc::ClientContext ctx;
    ipb::RemoveRequest req;
    req.set_reference(image_);
    ipb::RemoveResponse resp;
    grpc::Status s = images->Remove(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // The record is gone; the layers the container runs on are not.
  EXPECT_EQ(count(), before) << "the new rauhad leased the layers of the container it found";
  cpb::ExecInContainerResponse exec;
  ASSERT_TRUE(Exec(id, {"/bin/busybox", "echo", "still-on-its-layers"}, &exec).ok());
  EXPECT_EQ(exec.stdout(), "still-on-its-layers\n");
  // Stopped and started again: the layers are still there to mount.
  ASSERT_TRUE(Stop(id, 5).ok());
  ASSERT_TRUE(Start(id).ok());
  WaitForState(id, "Running");
  EXPECT_EQ(count(), before);
  // Deleting the container ends the lease, and the removed image's layers go with it.
  ASSERT_TRUE(Delete(id, true).ok());
  ExpectGone(id);
  EXPECT_EQ(count(), 0u);
}

}  // namespace
}  // namespace rauha::testing
