// `rauha sandbox --stream` and `rauha sandbox -it` as a user runs them: the CLI on a real
// terminal (a pty the test holds, typing into its master), or with its output in files. The
// test waits for conditions (what the terminal shows, the terminal's mode, a file's content),
// never for a clock.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(60);

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int ExitCodeOf(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// `rauha` on a terminal of its own: the test holds the master (the keyboard and screen) and
// a descriptor of the slave, to read the terminal's mode after the CLI is gone.
struct TerminalCli {
  int master = -1;
  int slave = -1;
  pid_t pid = -1;
  std::string screen;  // everything the CLI wrote to the terminal so far

  ~TerminalCli() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (master >= 0) ::close(master);
    if (slave >= 0) ::close(slave);
  }

  void Type(std::string_view keys) const {
    ASSERT_EQ(::write(master, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }

  // Reads the screen until `done` holds for it, or `limit` passes (false).
  bool ReadUntil(const std::function<bool(const std::string&)>& done,
                 Clock::duration limit = kDeadline) {
    auto end = Clock::now() + limit;
    char buf[4096];
    while (!done(screen)) {
      if (Clock::now() >= end) return false;
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      ssize_t n = ::read(master, buf, sizeof(buf));
      if (n > 0) screen.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  // What is left to read of the screen (after the CLI ended: everything it wrote).
  void Drain() {
    char buf[4096];
    pollfd p{master, POLLIN, 0};
    while (::poll(&p, 1, 0) > 0) {
      ssize_t n = ::read(master, buf, sizeof(buf));
      if (n <= 0) return;
      screen.append(buf, static_cast<size_t>(n));
    }
  }
  bool Shows(const std::string& text, size_t from = 0) {
    return ReadUntil([&](const std::string& s) { return s.find(text, from) != std::string::npos; });
  }

  termios Mode() const {
    termios t{};
    ::tcgetattr(slave, &t);
    return t;
  }
  // Until the CLI put its terminal in raw mode (it does once the task runs).
  bool WaitRaw() const {
    auto end = Clock::now() + kDeadline;
    while (Clock::now() < end) {
      if ((Mode().c_lflag & (ICANON | ISIG | ECHO)) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  int Wait() {
    int code = ExitCodeOf(pid);
    pid = -1;
    return code;
  }
};

class SandboxTtyTest : public DaemonTest {
 protected:
  std::vector<std::string> CliArgs(std::vector<std::string> args) {
    args.insert(args.begin(), {RAUHA_CLI_BIN, "--socket", daemon_->socket()});
    return args;
  }

  // The CLI with a new terminal (cooked mode, rows x cols) as its controlling terminal and
  // stdio, like a shell would start it.
  void SpawnOnTerminal(TerminalCli& t, std::vector<std::string> args, unsigned short rows,
                       unsigned short cols) {
    winsize ws{};
    ws.ws_row = rows;
    ws.ws_col = cols;
    ASSERT_EQ(::openpty(&t.master, &t.slave, nullptr, nullptr, &ws), 0);
    args = CliArgs(std::move(args));
    t.pid = ::fork();
    ASSERT_GE(t.pid, 0);
    if (t.pid == 0) {
      ::setsid();
      ::ioctl(t.slave, TIOCSCTTY, 0);
      ::dup2(t.slave, 0);
      ::dup2(t.slave, 1);
      ::dup2(t.slave, 2);
      ::close(t.master);
      if (t.slave > 2) ::close(t.slave);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }

  // The CLI with stdout and stderr to files in the test's directory; `stdin_fd` (or
  // /dev/null) as its stdin.
  pid_t SpawnToFiles(std::vector<std::string> args, int stdin_fd = -1) {
    args = CliArgs(std::move(args));
    out_ = daemon_->dir() + "/cli.out";
    err_ = daemon_->dir() + "/cli.err";
    pid_t pid = ::fork();
    if (pid == 0) {
      int in = stdin_fd >= 0 ? stdin_fd : ::open("/dev/null", O_RDONLY);
      int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return pid;
  }

  // Until the CLI's stdout file holds `text` (or the deadline).
  bool OutShows(const std::string& text) {
    auto end = Clock::now() + kDeadline;
    while (Slurp(out_).find(text) == std::string::npos) {
      if (Clock::now() >= end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  std::string out_, err_;
};

// A host directory mounted at /workspace, removed with the test.
struct Workspace {
  std::string dir;
  Workspace() {
    char tmpl[] = "/tmp/rauha-tty-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) dir = tmpl;
  }
  ~Workspace() {
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

bool Cooked(const termios& t) {
  return (t.c_lflag & ICANON) && (t.c_lflag & ECHO) && (t.c_lflag & ISIG);
}

TEST_F(SandboxTtyTest, InteractiveShellSeesResizesAndKeepsItsExitCode) {
  TerminalCli t;
  SpawnOnTerminal(t, {"sandbox", "-it", "--", "/bin/sh"}, 24, 80);
  ASSERT_TRUE(t.WaitRaw()) << "the CLI did not put its terminal in raw mode; screen:\n" << t.screen;
  t.Type("stty size\r");
  ASSERT_TRUE(t.Shows("24 80")) << t.screen;
  // The new size reaches the CLI as SIGWINCH, then the zone's terminal. The typed command may
  // overtake it (they travel apart): typed again until the new size shows.
  winsize ws{};
  ws.ws_row = 50;
  ws.ws_col = 132;
  ASSERT_EQ(::ioctl(t.master, TIOCSWINSZ, &ws), 0);
  bool resized = false;
  auto end = Clock::now() + kDeadline;
  while (!resized && Clock::now() < end) {
    const size_t mark = t.screen.size();
    t.Type("stty size\r");
    // Either size answers this command.
    t.ReadUntil([&](const std::string& s) {
      return s.find("50 132", mark) != std::string::npos ||
             s.find("24 80", mark) != std::string::npos;
    });
    resized = t.screen.find("50 132", mark) != std::string::npos;
  }
  ASSERT_TRUE(resized) << t.screen;
  t.Type("exit 7\r");
  EXPECT_EQ(t.Wait(), 7) << t.screen;
  EXPECT_TRUE(Cooked(t.Mode())) << "the terminal's mode was not restored";
}

TEST_F(SandboxTtyTest, CtrlCIsTypedToTheTaskWhichGetsSigint) {
  TerminalCli t;
  SpawnOnTerminal(t, {"sandbox", "-it", "--", "/bin/sleep", "1000"}, 24, 80);
  ASSERT_TRUE(t.WaitRaw()) << t.screen;
  // Raw mode: ^C is a byte for the zone's terminal, whose line discipline signals the task;
  // the CLI itself gets no SIGINT (it would cancel the call and say so).
  t.Type("\x03");
  EXPECT_EQ(t.Wait(), 130) << t.screen;
  t.Drain();
  EXPECT_EQ(t.screen.find("cancelled"), std::string::npos) << t.screen;
  EXPECT_TRUE(Cooked(t.Mode())) << "the terminal's mode was not restored";
}

TEST_F(SandboxTtyTest, TerminalIsRestoredWhenTheCallFails) {
  TerminalCli t;
  // Refused by rauhad (no such image): the terminal never leaves cooked mode, and the error
  // is shown on it.
  SpawnOnTerminal(
      t, {"sandbox", "-it", "--pull", "never", "--image", "no-such-image:1", "--", "/bin/sh"}, 24,
      80);
  EXPECT_EQ(t.Wait(), 125) << t.screen;
  EXPECT_TRUE(t.Shows("no-such-image")) << t.screen;
  EXPECT_TRUE(Cooked(t.Mode()));
}

TEST_F(SandboxTtyTest, StreamPrintsOutputLiveThenASummary) {
  Workspace ws;
  ASSERT_FALSE(ws.dir.empty());
  pid_t cli = SpawnToFiles({"sandbox", "--stream", "--repo-path", ws.dir, "--", "/bin/sh", "-c",
                            "echo ready; echo oops >&2; while [ ! -e /workspace/go ]; do sleep "
                            "0.02; done; echo done; exit 3"});
  // The task cannot end before the CLI printed its first line: it waits for this file.
  ASSERT_TRUE(OutShows("ready\n")) << Slurp(err_);
  std::ofstream(ws.dir + "/go") << "x";
  EXPECT_EQ(ExitCodeOf(cli), 3) << Slurp(err_);
  EXPECT_EQ(Slurp(out_), "ready\ndone\n");
  const std::string err = Slurp(err_);
  EXPECT_EQ(err.rfind("oops\n", 0), 0u) << err;
  EXPECT_NE(err.find("rauha: task "), std::string::npos) << err;
  EXPECT_NE(err.find(" failed: exit code 3"), std::string::npos) << err;
}

TEST_F(SandboxTtyTest, StreamJsonStreamsAllOutputAndPrintsTheBoundedResult) {
  pid_t cli = SpawnToFiles({"sandbox", "--stream", "--json", "--output-limit", "1024", "--",
                            "/bin/sh", "-c", "seq 1 100000; exit 0"});
  EXPECT_EQ(ExitCodeOf(cli), 0) << Slurp(err_);
  std::string want;
  for (int i = 1; i <= 100000; ++i) want += std::to_string(i) + "\n";
  const std::string out = Slurp(out_);
  ASSERT_GT(out.size(), want.size());
  EXPECT_TRUE(out.compare(0, want.size(), want) == 0) << "the streamed output is incomplete";
  auto j = nlohmann::json::parse(out.substr(want.size()), nullptr, false);
  ASSERT_TRUE(j.is_object()) << out.substr(want.size());
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_EQ(j["stdout"], want.substr(0, 1024));
  EXPECT_EQ(j["stdout_truncated"], true);
}

TEST_F(SandboxTtyTest, StdinWithoutTerminalIsStreamedLive) {
  int in[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  pid_t cli = SpawnToFiles({"sandbox", "--stream", "-i", "--", "/bin/cat"}, in[0]);
  ::close(in[0]);
  ASSERT_EQ(::write(in[1], "ping\n", 5), 5);
  // cat answers before its input ends: the CLI passes stdin as it comes.
  EXPECT_TRUE(OutShows("ping\n")) << Slurp(err_);
  ASSERT_EQ(::write(in[1], "pong\n", 5), 5);
  ::close(in[1]);
  EXPECT_EQ(ExitCodeOf(cli), 0) << Slurp(err_);
  EXPECT_EQ(Slurp(out_), "ping\npong\n");
}

TEST_F(SandboxTtyTest, InterruptIsForwardedToAStreamingTask) {
  pid_t cli = SpawnToFiles({"sandbox", "--stream", "--", "/bin/sleep", "1000"});
  ASSERT_FALSE(daemon_->WaitForRunningTask().empty());
  // The CLI may still be before its stream's first message: SIGINT is sent until the CLI
  // ends (the first goes to the task; a CLI that got none yet forwards the next).
  ::kill(cli, SIGINT);
  EXPECT_EQ(ExitCodeOf(cli), 130) << Slurp(err_);
  EXPECT_NE(Slurp(err_).find("killed by SIGINT"), std::string::npos) << Slurp(err_);
}

}  // namespace
}  // namespace rauha::testing
