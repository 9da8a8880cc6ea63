// `ctr task exec` into a container of containerd-shim-rauha-v2: output and exit code through
// the exec's own FIFOs, stdin reaching EOF when ctr's input ends (CloseIO), a terminal (the
// test's own pty drives ctr -t) whose size follows the test's window (ResizePty), Kill and
// State of an exec id, and the events containerd gets, in order.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

#include <algorithm>
#include <future>
#include <regex>
#include <sstream>

#include "tests/containerd/ctr_fixture.h"

namespace rauha::testing {
namespace {

using CtrExecTest = CtrTest;

std::string ExecCmd(const std::string& dir, const std::string& flags) {
  return "task exec --fifo-dir " + dir + "/fifo " + flags;
}

TEST_F(CtrExecTest, ExecOutputAndExitCodeThroughItsOwnFifos) {
  std::string out;
  ASSERT_EQ(Run("ex1", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  ASSERT_TRUE(WaitStatus("ex1", "RUNNING"));
  ASSERT_EQ(containerd_->Ctr(ExecCmd(dir_,
                                     "--exec-id e1 ex1 /bin/busybox sh -c "
                                     "'echo to-out; echo to-err >&2; exit 3'"),
                             &out),
            3)
      << out << containerd_->log();
  EXPECT_NE(out.find("to-out\n"), std::string::npos) << out;
  EXPECT_NE(out.find("to-err\n"), std::string::npos) << out;
  // It runs in the container: its root (the image's, no /usr) and its pid namespace (the
  // container's sleep is there).
  ASSERT_EQ(containerd_->Ctr(ExecCmd(dir_,
                                     "--exec-id e2 ex1 /bin/busybox sh -c "
                                     "'ls /; ps -o args'"),
                             &out),
            0)
      << out;
  EXPECT_EQ(out.find("usr"), std::string::npos) << out;
  EXPECT_NE(out.find("sleep 1000"), std::string::npos) << out;
  // It has the container's ids: root may write where the container's root may (the container
  // keeps the host's ids on containerd's overlayfs root; a zone-namespace root could not).
  ASSERT_EQ(containerd_->Ctr(ExecCmd(dir_,
                                     "--exec-id e4 ex1 /bin/busybox sh -c "
                                     "'touch /made-by-exec && echo made'"),
                             &out),
            0)
      << out;
  EXPECT_EQ(out, "made\n");
  // A command that does not exist: 127 and the reason, as a shell says it.
  EXPECT_NE(containerd_->Ctr(ExecCmd(dir_, "--exec-id e3 ex1 /no/such/program"), &out), 0) << out;
  KillAndRemove("ex1");
}

TEST_F(CtrExecTest, StdinReachesEofWhenCtrInputEnds) {
  std::string out;
  ASSERT_EQ(Run("in1", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  ASSERT_TRUE(WaitStatus("in1", "RUNNING"));
  // wc counts until EOF: it ends only if the shim passed CloseIO on as EOF. The timeout
  // bounds a hang (124) so the test fails instead of blocking.
  std::string cmd = "printf 'one\\ntwo\\nthree\\n' | timeout 60 ctr -a " + containerd_->socket() +
                    " " + ExecCmd(dir_, "--exec-id w1 in1 /bin/busybox wc -l");
  ASSERT_EQ(RunShell(cmd, &out), 0) << out;
  EXPECT_EQ(out, "3\n");
  KillAndRemove("in1");
  // The container's own process too: `ctr run` feeds it ctr's stdin, then CloseIO.
  sockets_.push_back(cshim::ShimSocketPath(containerd_->socket(), "default", "in2"));
  cmd = "printf 'a\\nb\\n' | timeout 60 ctr -a " + containerd_->socket() + " run --rm --runtime " +
        CSHIM_BIN + " --fifo-dir " + dir_ + "/fifo localhost/busybox:v1 in2 /bin/busybox wc -l";
  ASSERT_EQ(RunShell(cmd, &out), 0) << out;
  EXPECT_EQ(out, "2\n");
}

// A pty the test holds the master of, with ctr (its own session, the slave its controlling
// terminal) on the slave: what a person at a terminal does with `ctr task exec -t`.
class TerminalCtr {
 public:
  TerminalCtr(const std::string& argv_shell, uint16_t rows, uint16_t cols) {
    winsize ws{};
    ws.ws_row = rows;
    ws.ws_col = cols;
    int slave = -1;
    if (::openpty(&master_, &slave, nullptr, nullptr, &ws) < 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setsid();
      ::ioctl(slave, TIOCSCTTY, 0);
      ::dup2(slave, 0);
      ::dup2(slave, 1);
      ::dup2(slave, 2);
      if (slave > 2) ::close(slave);
      ::close(master_);
      ::execl("/bin/sh", "sh", "-c", argv_shell.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(slave);
  }
  ~TerminalCtr() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  bool ok() const { return master_ >= 0 && pid_ > 0; }
  // Reads the terminal until `text` has appeared (60 s at most).
  bool WaitFor(const std::string& text) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (seen_.find(text) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return false;
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(master_, buf, sizeof(buf));
      if (n <= 0) return seen_.find(text) != std::string::npos;
      seen_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  void Resize(uint16_t rows, uint16_t cols) {
    winsize ws{};
    ws.ws_row = rows;
    ws.ws_col = cols;
    ::ioctl(master_, TIOCSWINSZ, &ws);  // ctr, in the foreground, gets SIGWINCH
  }
  void Type(const std::string& text) { (void)!::write(master_, text.data(), text.size()); }
  // ctr's exit status (-1 if it did not exit within 60 s).
  int Wait() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      char buf[4096];
      pollfd p{master_, POLLIN, 0};
      ssize_t n = ::poll(&p, 1, 10) > 0 ? ::read(master_, buf, sizeof(buf)) : 0;
      if (n > 0) {
        seen_.append(buf, static_cast<size_t>(n));
      } else {
        // EIO once ctr closed the terminal: it is exiting, not yet reapable.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    return -1;
  }
  const std::string& seen() const { return seen_; }

 private:
  int master_ = -1;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string seen_;
};

TEST_F(CtrExecTest, TerminalExecFollowsTheWindowSizeAndTakesInput) {
  std::string out;
  ASSERT_EQ(Run("tty1", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  ASSERT_TRUE(WaitStatus("tty1", "RUNNING"));
  // The process waits for each size rather than racing ctr's ResizePty calls.
  std::string script =
      "until [ \"$(stty size)\" = \"33 77\" ]; do sleep 0.05; done; echo first-$(stty size | tr \" "
      "\" x); until [ \"$(stty size)\" = \"44 99\" ]; do sleep 0.05; done; echo "
      "second-$(stty size | tr \" \" x); [ -t 0 ] && echo is-a-tty; read line; echo got-$line; "
      "exit 5";
  TerminalCtr ctr("exec ctr -a " + containerd_->socket() + " " +
                      ExecCmd(dir_, "-t --exec-id t1 tty1 /bin/busybox sh -c '" + script + "'"),
                  33, 77);
  ASSERT_TRUE(ctr.ok());
  ASSERT_TRUE(ctr.WaitFor("first-33x77")) << ctr.seen() << containerd_->log();
  ctr.Resize(44, 99);
  ASSERT_TRUE(ctr.WaitFor("second-44x99")) << ctr.seen();
  ASSERT_TRUE(ctr.WaitFor("is-a-tty")) << ctr.seen();
  ctr.Type("typed\r");
  ASSERT_TRUE(ctr.WaitFor("got-typed")) << ctr.seen();
  EXPECT_EQ(ctr.Wait(), 5) << ctr.seen();
  KillAndRemove("tty1");
}

TEST_F(CtrExecTest, TerminalContainerFollowsTheWindowSize) {
  sockets_.push_back(cshim::ShimSocketPath(containerd_->socket(), "default", "tty2"));
  std::string script =
      "until [ \"$(stty size)\" = \"21 61\" ]; do sleep 0.05; done; echo first-$(stty size | tr "
      "\" \" x); until [ \"$(stty size)\" = \"50 120\" ]; do sleep 0.05; done; echo "
      "second-$(stty size | tr \" \" x); exit 7";
  TerminalCtr ctr("exec ctr -a " + containerd_->socket() + " run -t --rm --runtime " + CSHIM_BIN +
                      " --fifo-dir " + dir_ +
                      "/fifo localhost/busybox:v1 tty2 /bin/busybox sh -c '" + script + "'",
                  21, 61);
  ASSERT_TRUE(ctr.ok());
  ASSERT_TRUE(ctr.WaitFor("first-21x61")) << ctr.seen() << containerd_->log();
  ctr.Resize(50, 120);
  ASSERT_TRUE(ctr.WaitFor("second-50x120")) << ctr.seen();
  EXPECT_EQ(ctr.Wait(), 7) << ctr.seen();
}

TEST_F(CtrExecTest, KillAndStateOfAnExecId) {
  std::string out;
  ASSERT_EQ(Run("kx", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  ASSERT_TRUE(WaitStatus("kx", "RUNNING"));
  std::string exec_out;
  auto exec = std::async(std::launch::async, [&] {
    return containerd_->Ctr(ExecCmd(dir_, "--exec-id k1 kx /bin/busybox sleep 2345"), &exec_out);
  });
  // `ctr task ps` lists the exec's pid beside the task's once it runs.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  size_t pids = 0;
  while (pids < 2 && std::chrono::steady_clock::now() < deadline) {
    containerd_->Ctr("task ps kx", &out);
    pids = std::count(out.begin(), out.end(), '\n') - 1;  // header
    if (pids < 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(pids, 2u) << out;
  // SIGKILL for the exec ends it (137) and not the container.
  ASSERT_EQ(containerd_->Ctr("task kill --exec-id k1 -s SIGKILL kx", &out), 0) << out;
  EXPECT_EQ(exec.get(), 137) << exec_out;
  // The exec's process itself is gone, not only the waiter rauha's shim keeps for it.
  auto running = [] {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      // Not istreambuf_iterator: it throws when the process exits mid-read (ESRCH).
      std::ifstream in(entry.path() / "cmdline");
      std::stringstream text;
      text << in.rdbuf();
      const std::string cmdline = text.str();
      if (cmdline == std::string("/bin/busybox\0sleep\0002345\0", 24)) return true;
    }
    return false;
  };
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(running()) << "the exec's sleep outlived SIGKILL";
  EXPECT_TRUE(WaitStatus("kx", "RUNNING"));
  // An unknown exec id is NotFound.
  EXPECT_NE(containerd_->Ctr("task kill --exec-id nosuch kx", &out), 0);
  EXPECT_NE(out.find("not found"), std::string::npos) << out;
  KillAndRemove("kx");
}

// The /tasks/ topics `ctr events` printed for container `id`, in order.
std::vector<std::string> TaskTopics(const std::string& events, const std::string& id) {
  std::vector<std::string> topics;
  std::istringstream lines(events);
  std::regex topic(" (/tasks/[a-z-]+) ");
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (line.find("\"" + id + "\"") == std::string::npos) continue;
    if (std::regex_search(line, m, topic)) topics.push_back(m[1]);
  }
  return topics;
}

TEST_F(CtrExecTest, EventsComeInContainerdsOrder) {
  // `ctr events` prints each event as containerd receives it; started (by pid) before the
  // container so that it sees all of them.
  std::string events_file = dir_ + "/events.txt";
  pid_t watcher = ::fork();
  if (watcher == 0) {
    int fd = ::open(events_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    ::execlp("ctr", "ctr", "-a", containerd_->socket().c_str(), "events", nullptr);
    ::_exit(127);
  }
  ASSERT_GT(watcher, 0);
  std::string out;
  // ctr events subscribes asynchronously: a first container's events show it is listening.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string seen;
  int probe = 0;
  while (seen.find("/tasks/delete") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    Run("probe" + std::to_string(probe++), "/bin/busybox true", &out);
    std::ifstream in(events_file);
    seen.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_NE(seen.find("/tasks/delete"), std::string::npos) << seen;
  ASSERT_EQ(Run("ev1", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  ASSERT_TRUE(WaitStatus("ev1", "RUNNING"));
  ASSERT_EQ(containerd_->Ctr(ExecCmd(dir_, "--exec-id x1 ev1 /bin/busybox true"), &out), 0) << out;
  KillAndRemove("ev1");
  std::vector<std::string> want = {"/tasks/create",       "/tasks/start", "/tasks/exec-added",
                                   "/tasks/exec-started", "/tasks/exit",  "/tasks/exit",
                                   "/tasks/delete"};
  std::vector<std::string> got;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(events_file);
    seen.assign(std::istreambuf_iterator<char>(in), {});
    got = TaskTopics(seen, "ev1");
    if (got.size() >= want.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(watcher, SIGKILL);
  ::waitpid(watcher, nullptr, 0);
  EXPECT_EQ(got, want) << seen;
  // The first exit is the exec's (its id x1), the second the container's own.
  EXPECT_NE(seen.find("\"id\":\"x1\""), std::string::npos) << seen;
}

}  // namespace
}  // namespace rauha::testing
