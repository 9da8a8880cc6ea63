#include "rauhad/shim_client.h"

#include "absl/strings/escaping.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/frame.h"
#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

std::atomic<uint64_t> next_request_id{1};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<UniqueFd> Connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(StrCat("socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, StrCat("connecting to shim at ", path));
  }
  return fd;
}

// Reads the ready pipe: "ready <pid>\n" or "error: <message>\n".
absl::StatusOr<pid_t> ReadReady(int fd, int timeout_ms) {
  std::string got;
  int64_t deadline = NowMs() + timeout_ms;
  char buf[512];
  while (got.find('\n') == std::string::npos) {
    int wait = static_cast<int>(deadline - NowMs());
    if (wait <= 0) return absl::DeadlineExceededError("rauha-shim did not report ready in time");
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, wait);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  if (got.rfind("ready ", 0) == 0) {
    pid_t pid = static_cast<pid_t>(std::strtol(got.c_str() + 6, nullptr, 10));
    if (pid > 0) return pid;
  }
  while (!got.empty() && (got.back() == '\n' || got.back() == ' ')) got.pop_back();
  if (got.rfind("error: ", 0) == 0) got = got.substr(7);
  if (got.empty()) got = "it exited without reporting ready (see its log)";
  return absl::InternalError(StrCat("rauha-shim failed to start: ", got));
}

}  // namespace

absl::StatusOr<pid_t> SpawnShim(const ShimLaunch& l) {
  std::vector<std::string> args = {l.shim_path, "--zone-id", l.zone_id,     "--zone-name",
                                   l.zone_name, "--socket",  l.socket_path, "--state-dir",
                                   l.state_dir, "--network", l.network,     "--ready-fd",
                                   "3",         "--log",     l.log_path};
  if (!l.netns_path.empty()) {
    args.push_back("--netns");
    args.push_back(l.netns_path);
  }
  if (!l.hostname.empty()) {
    args.push_back("--hostname");
    args.push_back(l.hostname);
  }
  if (l.userns_first != 0) {
    args.push_back("--userns");
    args.push_back(StrCat(l.userns_first));
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The shim starts with an empty environment; the debug timing (span_trace.h) is passed on.
  char trace_env[] = "RAUHA_TRACE_SPANS=1";
  std::string trace_file;
  if (const char* f = std::getenv("RAUHA_TRACE_SPANS_FILE"))
    trace_file = StrCat("RAUHA_TRACE_SPANS_FILE=", f);
  char* envp[] = {nullptr, nullptr, nullptr};
  if (SpanTrace::Enabled()) {
    envp[0] = trace_env;
    if (!trace_file.empty()) envp[1] = trace_file.data();
  }

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  UniqueFd ready_read(ready[0]);
  UniqueFd ready_write(ready[1]);
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) return ErrnoStatus(errno, "open /dev/null");

  // posix_spawn (a vfork-style clone) instead of fork: copying a threaded daemon's page tables
  // cost up to 10 ms per zone. The shim gets its own session, so nothing aimed at rauhad's
  // process group reaches it, default signal dispositions (rauhad ignores SIGCHLD to have the
  // kernel reap exited shims; an ignored signal would survive exec) and an empty mask. Once
  // rauhad is gone the shim is reparented and keeps running.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, null_fd.get(), 0);
  // The shim writes its log lines to its --log file, which it creates only when it has one to
  // write; what else reaches its stdout or stderr (a crash's message) goes to rauhad's stderr.
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, 1);
  posix_spawn_file_actions_adddup2(&actions, ready_write.get(), 3);
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int err = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) return ErrnoStatus(err, StrCat("starting ", l.shim_path));
  ready_write.reset();
  return ReadReady(ready_read.get(), l.timeout_ms);
}

namespace {

// The response to request `id` (`method`) on the connection `fd`: see ShimClient::Call.
absl::StatusOr<nlohmann::json> ReadResponse(
    int fd, uint64_t id, std::string_view method, int timeout_ms,
    const std::function<bool()>& cancelled,
    const std::function<void(const EnforcementEvent&)>& on_event,
    const std::function<void(const nlohmann::json&)>& on_frame, const ShimWake* wake = nullptr) {
  int64_t deadline = timeout_ms < 0 ? -1 : NowMs() + timeout_ms;
  nlohmann::json response;
  while (true) {
    while (true) {
      int slice = cancelled ? 100 : -1;
      if (deadline >= 0) {
        int left = static_cast<int>(deadline - NowMs());
        if (left <= 0)
          return absl::DeadlineExceededError(StrCat("shim call ", method, " timed out"));
        slice = slice < 0 ? left : std::min(slice, left);
      }
      pollfd pfd[2] = {{fd, POLLIN, 0}, {wake ? wake->fd : -1, POLLIN, 0}};
      int r = ::poll(pfd, wake ? 2 : 1, slice);
      if (r < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
      // Checked when frames keep coming too (a streamed task's output): a caller that is gone
      // must not wait for the end of a task that never stops writing.
      if (cancelled && cancelled())
        return absl::CancelledError(StrCat("shim call ", method, " cancelled"));
      if (r > 0 && wake && (pfd[1].revents & POLLIN) != 0) {
        uint64_t count;
        (void)!::read(wake->fd, &count, sizeof(count));
        if (wake->on_wake) wake->on_wake();
      }
      if (r > 0 && pfd[0].revents != 0) break;
    }
    // A frame started is a frame the shim finishes at once, unless it hangs: bounded too.
    int frame_ms = 10000;
    if (deadline >= 0)
      frame_ms = static_cast<int>(std::clamp<int64_t>(deadline - NowMs(), 1, 10000));
    auto next = frame::ReadFrame(fd, frame_ms);
    if (!next.ok()) return next.status();
    response = *std::move(next);
    if (response.contains("id")) break;
    if (shim::IsEventFrame(response)) {
      if (on_event) {
        auto event = EnforcementEventFromJson(response["event"]);
        if (event.ok()) on_event(*event);
      }
    } else if (on_frame) {
      on_frame(response);
    }
  }
  auto rid = response.find("id");
  if (rid == response.end() || !rid->is_number_unsigned() || rid->get<uint64_t>() != id) {
    return absl::InternalError("shim answered with a different request id");
  }
  return shim::ParseResponse(response);
}

// One request on the connection `fd`: see ShimClient::Call.
absl::StatusOr<nlohmann::json> CallOn(int fd, std::string_view method, nlohmann::json params,
                                      int timeout_ms, const std::function<bool()>& cancelled,
                                      const std::function<void(const EnforcementEvent&)>& on_event,
                                      const std::function<void(const nlohmann::json&)>& on_frame,
                                      const ShimWake* wake = nullptr) {
  uint64_t id = next_request_id++;
  RAUHA_RETURN_IF_ERROR(frame::WriteFrame(fd, shim::MakeRequest(id, method, std::move(params))));
  return ReadResponse(fd, id, method, timeout_ms, cancelled, on_event, on_frame, wake);
}

// The handler of a streaming wait's output frames ({"output", "stream"}).
std::function<void(const nlohmann::json&)> OutputFrames(
    const std::function<void(bool, std::string_view)>& on_output) {
  if (!on_output) return nullptr;
  return [&on_output](const nlohmann::json& frame) {
    auto output = frame.find("output");
    auto stream = frame.find("stream");
    if (output == frame.end() || !output->is_string() || stream == frame.end()) return;
    std::string data;
    if (!absl::Base64Unescape(output->get<std::string>(), &data)) return;
    on_output(*stream == "stderr", data);
  };
}

}  // namespace

absl::StatusOr<nlohmann::json> ShimClient::Call(
    std::string_view method, nlohmann::json params, int timeout_ms,
    const std::function<bool()>& cancelled,
    const std::function<void(const EnforcementEvent&)>& on_event,
    const std::function<void(const nlohmann::json&)>& on_frame) const {
  RAUHA_ASSIGN_OR_RETURN(UniqueFd fd, Connect(socket_path_));
  return CallOn(fd.get(), method, std::move(params), timeout_ms, cancelled, on_event, on_frame);
}

absl::StatusOr<shim::ShimHello> ShimClient::Hello(int timeout_ms) const {
  RAUHA_ASSIGN_OR_RETURN(nlohmann::json r, Call("hello", nlohmann::json::object(), timeout_ms));
  return shim::ShimHelloFromJson(r);
}

absl::StatusOr<int64_t> ShimClient::Start(const shim::TaskSpec& spec,
                                          const std::function<bool()>& cancelled,
                                          int timeout_ms) const {
  RAUHA_ASSIGN_OR_RETURN(nlohmann::json r,
                         Call("start", shim::ToJson(spec), timeout_ms, cancelled));
  auto pid = r.find("pid");
  if (pid == r.end() || !pid->is_number_integer()) {
    return absl::InternalError("shim start reply has no pid");
  }
  return pid->get<int64_t>();
}

absl::StatusOr<shim::TaskResult> ShimClient::Wait(
    const std::string& task_id, const std::function<bool()>& cancelled,
    const std::function<void(const EnforcementEvent&)>& on_event, int timeout_ms) const {
  RAUHA_ASSIGN_OR_RETURN(nlohmann::json r,
                         Call("wait", {{"task_id", task_id}}, timeout_ms, cancelled, on_event));
  return shim::TaskResultFromJson(r);
}

absl::StatusOr<shim::TaskResult> ShimClient::WaitStreaming(
    const std::string& task_id, const std::function<void(bool, std::string_view)>& on_output,
    const std::function<bool()>& cancelled, bool paced) const {
  nlohmann::json params = {{"task_id", task_id}, {"stream", true}, {"replay", true}};
  if (paced) params["paced"] = true;
  RAUHA_ASSIGN_OR_RETURN(nlohmann::json r, Call("wait", std::move(params), -1, cancelled, nullptr,
                                                OutputFrames(on_output)));
  return shim::TaskResultFromJson(r);
}

absl::StatusOr<int64_t> ShimTaskStream::Start(const shim::TaskSpec& spec,
                                              const std::function<bool()>& cancelled,
                                              int timeout_ms,
                                              const std::function<void()>& after_send) {
  RAUHA_ASSIGN_OR_RETURN(conn_, Connect(socket_path_));
  nlohmann::json params = shim::ToJson(spec);
  if (stream_) params["stream"] = true;
  // The wait goes with the start, in one write: the shim handles a connection's requests in
  // order, so the wait is registered right after the start, before the task can report
  // anything, and the call needs no second connection or round trip.
  const uint64_t start_id = next_request_id++;
  wait_id_ = next_request_id++;
  nlohmann::json wait_params = {{"task_id", spec.task_id}};
  if (stream_) wait_params["stream"] = true;
  RAUHA_ASSIGN_OR_RETURN(std::string frames,
                         frame::Encode(shim::MakeRequest(start_id, "start", std::move(params))));
  RAUHA_ASSIGN_OR_RETURN(std::string wait_frame, frame::Encode(shim::MakeRequest(
                                                     wait_id_, "wait", std::move(wait_params))));
  frames += wait_frame;
  RAUHA_RETURN_IF_ERROR(frame::WriteEncoded(conn_.get(), frames));
  if (after_send) after_send();
  RAUHA_ASSIGN_OR_RETURN(nlohmann::json r, ReadResponse(conn_.get(), start_id, "start", timeout_ms,
                                                        cancelled, nullptr, nullptr));
  auto pid = r.find("pid");
  if (pid == r.end() || !pid->is_number_integer()) {
    return absl::InternalError("shim start reply has no pid");
  }
  return pid->get<int64_t>();
}

absl::StatusOr<shim::TaskResult> ShimTaskStream::Wait(
    const std::string& task_id, const std::function<void(bool, std::string_view)>& on_output,
    const std::function<void(const EnforcementEvent&)>& on_event,
    const std::function<bool()>& cancelled, int timeout_ms, const ShimWake* wake) {
  if (!conn_ || wait_id_ == 0) {
    return absl::FailedPreconditionError("the task was not started on this connection");
  }
  (void)task_id;  // asked for with the start
  RAUHA_ASSIGN_OR_RETURN(
      nlohmann::json r, ReadResponse(conn_.get(), wait_id_, "wait", timeout_ms, cancelled, on_event,
                                     OutputFrames(on_output), wake));
  return shim::TaskResultFromJson(r);
}

absl::Status ShimClient::Stdin(const std::string& task_id, std::string_view data, bool eof,
                               int timeout_ms) const {
  return Call("stdin",
              {{"task_id", task_id},
               {"data_base64", absl::Base64Escape(absl::string_view(data.data(), data.size()))},
               {"eof", eof}},
              timeout_ms)
      .status();
}

absl::Status ShimClient::Resize(const std::string& task_id, uint32_t rows, uint32_t cols) const {
  return Call("resize", {{"task_id", task_id}, {"rows", rows}, {"cols", cols}}).status();
}

absl::Status ShimClient::Kill(const std::string& task_id, int signal, int timeout_ms) const {
  return Call("kill", {{"task_id", task_id}, {"signal", signal}}, timeout_ms).status();
}

absl::Status ShimClient::Forget(const std::string& task_id) const {
  return Call("forget", {{"task_id", task_id}}).status();
}

absl::Status ShimClient::Shutdown(int timeout_ms) const {
  return Call("shutdown", nlohmann::json::object(), timeout_ms).status();
}

absl::StatusOr<int64_t> ShimClient::Prepare(const std::string& cgroup_v2,
                                            const std::vector<std::string>& cgroup_v1,
                                            const std::vector<std::string>& seccomp_deny,
                                            const PreparedRoot* root, int timeout_ms) const {
  nlohmann::json params = {
      {"cgroup_v2", cgroup_v2}, {"cgroup_v1", cgroup_v1}, {"seccomp_deny", seccomp_deny}};
  if (root != nullptr) {
    params["root"] = {{"writable_paths", root->writable_paths},
                      {"devices", root->devices},
                      {"zone_address", root->zone_address}};
  }
  RAUHA_ASSIGN_OR_RETURN(nlohmann::json r, Call("prepare", std::move(params), timeout_ms));
  auto pid = r.find("pid");
  if (pid == r.end() || !pid->is_number_integer()) {
    return absl::InternalError("shim prepare reply has no pid");
  }
  return pid->get<int64_t>();
}

}  // namespace rauha
