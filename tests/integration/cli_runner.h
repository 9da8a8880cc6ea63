// Runs the `rauha` CLI as a user would, its stdout and stderr to files: shared by the CLI tests.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace rauha::testing {

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Starts `args` (argv[0] a path) with stdout/stderr to `out_path`/`err_path` and `extra_env`
// first in its environment, then this process's environment without variables named in
// `drop_env` ("NAME="); returns its pid.
inline pid_t SpawnCli(std::vector<std::string> args, const std::string& out_path,
                      const std::string& err_path, std::vector<std::string> extra_env = {},
                      const std::vector<std::string_view>& drop_env = {}) {
  // Built before the fork: this process has threads.
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : extra_env) envp.push_back(e.data());
  for (char** e = environ; *e != nullptr; ++e) {
    bool dropped = false;
    for (auto name : drop_env) dropped = dropped || std::string_view(*e).starts_with(name);
    if (!dropped) envp.push_back(*e);
  }
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid` (from SpawnCli) and reads what it wrote.
inline CliRun FinishCli(pid_t pid, const std::string& out_path, const std::string& err_path) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  CliRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out_path);
  r.err = Slurp(err_path);
  return r;
}

}  // namespace rauha::testing
