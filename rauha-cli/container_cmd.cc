// Containers with docker's habits: `rauha run`, `ps`, `logs`, `exec`, `attach`, `start`,
// `stop`, `rm`. A container is named by its id, a unique prefix of it, or its name.
#include <poll.h>
#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "rauha-cli/commands.h"
#include "rauha-cli/log_time.h"
#include "rauha-cli/run_call.h"
#include "rauha-cli/signals.h"
#include "rauha-cli/terminal.h"
#include "rauha-common/timeutil.h"
#include "rauha/v1/container.grpc.pb.h"

namespace rauha::cli {
namespace {

namespace cv1 = rauha::container::v1;
using Stub = cv1::ContainerService::Stub;

// The full id of the container `ref` names: its id, its name, or a prefix of one id only.
absl::StatusOr<std::string> Resolve(Stub& stub, const std::string& ref) {
  grpc::ClientContext ctx;
  cv1::ListContainersResponse resp;
  grpc::Status s = stub.ListContainers(&ctx, cv1::ListContainersRequest(), &resp);
  if (!s.ok()) return absl::UnavailableError(DescribeRpcError(s));
  std::vector<std::string> prefixed;
  for (const auto& c : resp.containers()) {
    if (c.id() == ref || c.name() == ref) return c.id();
    if (!ref.empty() && c.id().starts_with(ref)) prefixed.push_back(c.id());
  }
  if (prefixed.size() == 1) return prefixed[0];
  if (prefixed.size() > 1) {
    return absl::InvalidArgumentError(StrCat("\"", ref, "\" is the start of ", prefixed.size(),
                                             " container ids; give more of it"));
  }
  return absl::NotFoundError(
      StrCat("no container named or with an id starting with \"", ref, "\""));
}

std::string Join(const google::protobuf::RepeatedPtrField<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// Copies this process's stdin to a stream (exec/attach) until EOF, then closes the stream's
// sending side. `stop` ends it early (the process ended).
template <typename Stream, typename Request>
class StdinPump {
 public:
  StdinPump(Stream* stream, std::mutex* mu, bool forward)
      : thread_([this, stream, mu, forward] {
          char buf[16384];
          while (forward && !stop_) {
            pollfd p{STDIN_FILENO, POLLIN, 0};
            int r = ::poll(&p, 1, 100);
            if (r <= 0) continue;
            ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            Request req;
            req.set_stdin_data(std::string(buf, static_cast<size_t>(n)));
            std::lock_guard lock(*mu);
            if (!stream->Write(req)) return;
          }
          std::lock_guard lock(*mu);
          stream->WritesDone();
        }) {}
  ~StdinPump() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

grpc::Status Kill(Stub& stub, const std::string& id, int signo) {
  grpc::ClientContext ctx;
  // The signal proxy calls this on the signal watcher's thread: a rauhad that does not answer
  // must not hold the signals up for long.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  cv1::KillContainerRequest req;
  req.set_container_id(id);
  req.set_signal(signo);
  cv1::KillContainerResponse resp;
  return stub.KillContainer(&ctx, req, &resp);
}

// docker's --sig-proxy: the signals this CLI gets go to the container it follows, which
// decides; the CLI keeps following and exits with its code. A signal that cannot be sent
// (the container has stopped, rauhad is gone) is this CLI's own again (signals.h).
std::function<bool(int)> SendTo(Stub& stub, const std::string& id) {
  return [&stub, id](int signo) { return Kill(stub, id, signo).ok(); };
}

// SIGTERM, TERM or 15: the signal's number; 0 for none of those.
int ParseSignal(std::string_view given) {
  std::string_view name = given.starts_with("SIG") ? given.substr(3) : given;
  int n = 0;
  auto [end, ec] = std::from_chars(given.data(), given.data() + given.size(), n);
  if (ec == std::errc() && end == given.data() + given.size()) {
    return n >= 1 && n <= SIGRTMAX ? n : 0;
  }
  for (int signo = 1; signo < SIGRTMIN; ++signo) {
    const char* abbrev = sigabbrev_np(signo);
    if (abbrev != nullptr && name == abbrev) return signo;
  }
  return 0;
}

// Streams an Attach to a container until its process ends; returns its exit code. This
// terminal is raw only when its keys go to the container's terminal (`tty` and
// `forward_stdin`, so ^C is a key there); otherwise `sig_proxy` sends this CLI's signals (^C's
// SIGINT among them) to the container.
int AttachStream(Stub& stub, const std::string& id, bool forward_stdin, bool tty, bool sig_proxy,
                 const std::function<absl::Status()>& after_open = nullptr) {
  grpc::ClientContext ctx;
  auto stream = stub.Attach(&ctx);
  std::mutex mu;
  cv1::AttachRequest start;
  start.mutable_start()->set_container_id(id);
  uint32_t rows = 0, cols = 0;
  if (tty && TerminalSize(&rows, &cols)) {
    // In the start message: rauhad sets it before its first answer, so before the start.
    start.mutable_start()->set_rows(rows);
    start.mutable_start()->set_cols(cols);
  }
  if (!stream->Write(start)) return Fail(DescribeRpcError(stream->Finish()), kExitRuntimeError);
  if (after_open) {
    // rauhad's first message (empty) says the attach is in place.
    cv1::AttachResponse ack;
    if (!stream->Read(&ack)) return Fail(DescribeRpcError(stream->Finish()), kExitRuntimeError);
    if (auto st = after_open(); !st.ok()) {
      ctx.TryCancel();
      (void)stream->Finish();
      return Fail(st, kExitRuntimeError);
    }
  }
  std::optional<int> code;
  {
    const bool keys_to_container = tty && forward_stdin;
    RawTerminal raw(keys_to_container);
    std::optional<ProxySignals> proxy;
    if (sig_proxy && !keys_to_container) proxy.emplace(SendTo(stub, id));
    StdinPump<grpc::ClientReaderWriter<cv1::AttachRequest, cv1::AttachResponse>, cv1::AttachRequest>
        pump(stream.get(), &mu, forward_stdin);
    cv1::AttachResponse resp;
    while (stream->Read(&resp)) {
      if (resp.message_case() == cv1::AttachResponse::kStdoutData) {
        WriteAll(STDOUT_FILENO, resp.stdout_data());
      } else if (resp.message_case() == cv1::AttachResponse::kExitCode) {
        code = resp.exit_code();
        break;
      }
    }
  }
  grpc::Status s = stream->Finish();
  if (code) return *code;
  if (!s.ok()) return Fail(DescribeRpcError(s), kExitRuntimeError);
  return Fail("the attach stream ended without the container's exit code", kExitRuntimeError);
}

struct LogsArgs {
  bool follow = false;
  bool timestamps = false;
  uint32_t tail = 0;
  std::string since, until;  // as given (ParseLogTime)
};

// Prints a ContainerLogs stream's lines (stdout to stdout, stderr to stderr), docker's way:
// with `timestamps`, each line after its RFC 3339 time and a space.
int PrintLogStream(grpc::ClientReader<cv1::ContainerLogEntry>& reader, bool timestamps,
                   const CancelOnSignal& cancel) {
  cv1::ContainerLogEntry e;
  while (reader.Read(&e)) {
    std::string line = timestamps ? StrCat(e.timestamp(), " ", e.line(), "\n") : e.line() + "\n";
    WriteAll(e.source() == "stderr" ? STDERR_FILENO : STDOUT_FILENO, line);
  }
  grpc::Status s = reader.Finish();
  if (cancel.signal() != 0) return 128 + cancel.signal();
  if (!s.ok()) return Fail(DescribeRpcError(s));
  return 0;
}

int StreamLogs(Stub& stub, const std::string& id, const LogsArgs& a) {
  cv1::ContainerLogsRequest req;
  req.set_container_id(id);
  req.set_follow(a.follow);
  req.set_tail(a.tail);
  int64_t now = NowUnixNanos();
  // The CLI reads docker's forms; the wire carries RFC 3339 in UTC.
  auto bound = [now](const std::string& given) -> absl::StatusOr<std::string> {
    if (given.empty()) return std::string();
    auto t = ParseLogTime(given, now);
    if (!t.ok()) return t.status();
    return Rfc3339FromNanos(*t);
  };
  auto since = bound(a.since);
  if (!since.ok()) return Fail(since.status(), kExitUsage);
  auto until = bound(a.until);
  if (!until.ok()) return Fail(until.status(), kExitUsage);
  req.set_since(*since);
  req.set_until(*until);
  grpc::ClientContext ctx;
  CancelOnSignal cancel(&ctx);
  auto reader = stub.ContainerLogs(&ctx, req);
  return PrintLogStream(*reader, a.timestamps, cancel);
}

// The container's exit code once it has stopped (docker: 128 + N for signal N).
int WaitExit(Stub& stub, const std::string& id) {
  grpc::ClientContext ctx;
  CancelOnSignal cancel(&ctx);
  cv1::WaitContainerRequest req;
  req.set_container_id(id);
  cv1::WaitContainerResponse resp;
  grpc::Status s = stub.WaitContainer(&ctx, req, &resp);
  if (cancel.signal() != 0) return 128 + cancel.signal();
  if (!s.ok()) return Fail(DescribeRpcError(s), kExitRuntimeError);
  return resp.exit_code();
}

grpc::Status Delete(Stub& stub, const std::string& id, bool force) {
  grpc::ClientContext ctx;
  cv1::DeleteContainerRequest req;
  req.set_container_id(id);
  req.set_force(force);
  cv1::DeleteContainerResponse resp;
  return stub.DeleteContainer(&ctx, req, &resp);
}

grpc::Status Start(Stub& stub, const std::string& id) {
  grpc::ClientContext ctx;
  cv1::StartContainerRequest req;
  req.set_container_id(id);
  cv1::StartContainerResponse resp;
  return stub.StartContainer(&ctx, req, &resp);
}

// Where `rauha run` and `rauha exec` put the container's output: this stdout or stderr, as it
// comes.
void PrintOutput(bool is_stderr, const std::string& data) {
  WriteAll(is_stderr ? STDERR_FILENO : STDOUT_FILENO, data);
}

// Prints a RunContainer stream: output to stdout and stderr as it comes; with `sig_proxy` the
// signals this CLI gets go to the container once it is named (`send`).
RunSink PrintRun(std::optional<ProxySignals>& proxy, bool sig_proxy,
                 std::function<std::function<bool(int)>(const std::string&)> send) {
  return RunSink{[&proxy, sig_proxy, send = std::move(send)](const std::string& id) {
                   if (sig_proxy) proxy.emplace(send(id));
                 },
                 PrintOutput};
}

// The exit of `rauha run` in the foreground once its RunContainer call ended: the container's
// code, 128 + N when signal N cancelled the call, else 125 with the error.
int RunExit(const RunStream& stream, const grpc::Status& s, int cancelled_by_signal) {
  if (stream.exit_code()) return *stream.exit_code();
  if (cancelled_by_signal != 0) return 128 + cancelled_by_signal;
  if (!s.ok()) return Fail(DescribeRpcError(s), kExitRuntimeError);
  return Fail("the run stream ended without the container's exit code", kExitRuntimeError);
}

// `rauha run` in the foreground through RunContainer over rauhad's ttrpc endpoint (run_call.h),
// without a gRPC client; nullopt when that path is not there (nothing was created). The
// signal proxy sends over the same endpoint too (over gRPC, connected at the first signal,
// where the endpoint does not serve KillContainer).
std::optional<int> RunForegroundFast(const Cli& cli, const cv1::RunContainerRequest& req,
                                     bool sig_proxy) {
  std::optional<ProxySignals> proxy;
  RunStream stream(PrintRun(proxy, sig_proxy, [&cli](const std::string& id) {
    return [&cli, id, stub = std::shared_ptr<Stub>()](int signo) mutable {
      if (auto sent = KillContainerOverTtrpc(cli.client, id, signo)) return sent->ok();
      if (!stub) {
        auto made = MakeStub<cv1::ContainerService>(cli);
        if (!made.ok()) return false;
        stub = std::move(*made);
      }
      return Kill(*stub, id, signo).ok();
    };
  }));
  std::optional<RunCallEnd> end = RunContainerOverTtrpc(cli.client, req, stream);
  proxy.reset();
  if (!end) return std::nullopt;
  return RunExit(stream, end->status, end->cancelled_by_signal);
}

// The same over gRPC. nullopt when this rauhad has no RunContainer (the caller takes the older
// path: nothing was created).
std::optional<int> RunForeground(Stub& stub, const cv1::RunContainerRequest& req, bool sig_proxy) {
  grpc::ClientContext ctx;
  CancelOnSignal cancel(&ctx);
  auto reader = stub.RunContainer(&ctx, req);
  std::optional<ProxySignals> proxy;
  RunStream stream(
      PrintRun(proxy, sig_proxy, [&stub](const std::string& id) { return SendTo(stub, id); }));
  cv1::RunContainerResponse resp;
  absl::Status broken;
  while (broken.ok() && reader->Read(&resp)) broken = stream.Take(resp);
  if (!broken.ok()) ctx.TryCancel();
  proxy.reset();
  grpc::Status s = reader->Finish();
  if (!broken.ok()) s = grpc::Status(grpc::StatusCode::INTERNAL, ToStd(broken.message()));
  if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED && stream.container_id().empty() &&
      !stream.exit_code()) {
    return std::nullopt;
  }
  return RunExit(stream, s, cancel.signal());
}

struct RunArgs {
  std::string zone, name, workdir;
  std::vector<std::string> env;
  bool detach = false, rm = false, interactive = false, tty = false;
  bool sig_proxy = true;
};

int RunRun(const Cli& cli, const RunArgs& a, const std::vector<std::string>& words) {
  // Before any connection (a signal cancels or is proxied, on the ttrpc path too).
  StartSignalWatcher();
  if (words.empty())
    return Fail("run: no image given (rauha run [OPTIONS] IMAGE [CMD...])", kExitUsage);
  cv1::CreateContainerRequest req;
  req.set_zone_name(a.zone);
  req.set_name(a.name);
  req.set_image(words[0]);
  for (size_t i = 1; i < words.size(); ++i) req.add_command(words[i]);
  for (const auto& kv : a.env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) {
      // docker's -e NAME: this shell's value, or nothing when unset.
      if (const char* v = std::getenv(kv.c_str())) (*req.mutable_env())[kv] = v;
      continue;
    }
    (*req.mutable_env())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  req.set_working_dir(a.workdir);
  req.set_tty(a.tty);
  req.set_open_stdin(a.interactive);
  // rauhad removes it at its exit, whether or not this process is still there to see it.
  req.set_auto_remove(a.rm);
  const bool foreground = !a.detach && !a.interactive && !a.tty;
  cv1::RunContainerRequest run;
  if (foreground) {
    // Created, started and followed in one call (one round trip; rauhad's records of it made
    // durable by one fsync), over rauhad's ttrpc endpoint when it is there.
    *run.mutable_create() = req;
    if (auto code = RunForegroundFast(cli, run, a.sig_proxy)) return *code;
  }
  auto stub = MakeStub<cv1::ContainerService>(cli);
  if (!stub.ok()) return Fail(stub.status(), kExitRuntimeError);
  if (foreground) {
    if (auto code = RunForeground(**stub, run, a.sig_proxy)) return *code;
  }
  cv1::CreateContainerResponse created;
  {
    grpc::ClientContext ctx;
    grpc::Status s = (*stub)->CreateContainer(&ctx, req, &created);
    if (!s.ok()) return Fail(DescribeRpcError(s), kExitRuntimeError);
  }
  const std::string id = created.container_id();
  // A start that failed leaves it Created, which its exit would never remove.
  auto remove = [&] {
    if (!a.rm) return;
    grpc::Status s = Delete(**stub, id, true);
    if (!s.ok()) PrintError(StrCat("removing container ", id, ": ", DescribeRpcError(s)));
  };
  if (a.detach) {
    grpc::Status s = Start(**stub, id);
    if (!s.ok()) {
      remove();
      return Fail(DescribeRpcError(s), kExitRuntimeError);
    }
    std::cout << id << "\n";
    return 0;
  }
  if (a.interactive || a.tty) {
    // Attached before the start, so nothing of its output is missed; the stream ends with
    // the exit code.
    int code = AttachStream(**stub, id, a.interactive, a.tty, a.sig_proxy, [&]() -> absl::Status {
      grpc::Status s = Start(**stub, id);
      if (s.ok()) return absl::OkStatus();
      remove();
      return absl::FailedPreconditionError(DescribeRpcError(s));
    });
    // docker run --rm returns once the container is gone: the attach ends at the exit, the
    // removal comes after it (rauhad's WaitContainer answers an auto-removed one when gone).
    if (a.rm) {
      grpc::ClientContext ctx;
      CancelOnSignal cancel(&ctx);
      cv1::WaitContainerRequest req;
      req.set_container_id(id);
      cv1::WaitContainerResponse resp;
      (void)(*stub)->WaitContainer(&ctx, req, &resp);
    }
    return code;
  }
  // A rauhad without RunContainer: the log has all of its output, stdout and stderr apart. The
  // follow is in place (initial metadata) before the start, and rauhad keeps an auto-removed
  // container until the follow has read to the end; the stream ends when the container has
  // stopped.
  grpc::ClientContext ctx;
  CancelOnSignal cancel(&ctx);
  cv1::ContainerLogsRequest logs;
  logs.set_container_id(id);
  logs.set_follow(true);
  logs.set_wait_for_start(true);
  auto reader = (*stub)->ContainerLogs(&ctx, logs);
  reader->WaitForInitialMetadata();
  if (grpc::Status s = Start(**stub, id); !s.ok()) {
    ctx.TryCancel();
    (void)reader->Finish();
    remove();
    return Fail(DescribeRpcError(s), kExitRuntimeError);
  }
  std::optional<ProxySignals> proxy;
  if (a.sig_proxy) proxy.emplace(SendTo(**stub, id));
  if (int rc = PrintLogStream(*reader, false, cancel); rc != 0) return rc;
  return WaitExit(**stub, id);
}

// "Up", "Exited (0)", "Created", "Paused".
std::string Status(const cv1::ContainerInfo& c) {
  if (c.state() == "Running") return "Up since " + c.started_at();
  if (c.state() == "Stopped") {
    return StrCat("Exited (", c.has_exit_code() ? c.exit_code() : -1, ") at ", c.finished_at());
  }
  return c.state();
}

// A container as `ps --json` and `inspect` print it.
Json InfoJson(const cv1::ContainerInfo& c) {
  auto list = [](const google::protobuf::RepeatedPtrField<std::string>& words) {
    return Json(std::vector<std::string>(words.begin(), words.end()));
  };
  Json row = {{"id", c.id()},
              {"name", c.name()},
              {"zone_name", c.zone_name()},
              {"image", c.image()},
              {"image_digest", c.image_digest()},
              {"state", c.state()},
              {"pid", c.pid()},
              {"command", list(c.command())},
              {"exposed_ports", list(c.exposed_ports())},
              {"tty", c.tty()},
              {"open_stdin", c.open_stdin()},
              {"auto_remove", c.auto_remove()},
              {"created_at", c.created_at()},
              {"started_at", c.started_at()},
              {"finished_at", c.finished_at()}};
  if (c.has_exit_code()) row["exit_code"] = c.exit_code();
  return row;
}

int RunPs(const Cli& cli, bool all, bool json, const std::string& zone) {
  auto stub = MakeStub<cv1::ContainerService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  grpc::ClientContext ctx;
  cv1::ListContainersRequest req;
  req.set_zone_name(zone);
  cv1::ListContainersResponse resp;
  grpc::Status s = (*stub)->ListContainers(&ctx, req, &resp);
  if (!s.ok()) return Fail(DescribeRpcError(s));
  if (json) {
    Json out = Json::array();
    for (const auto& c : resp.containers()) {
      if (!all && c.state() != "Running" && c.state() != "Paused") continue;
      out.push_back(InfoJson(c));
    }
    PrintJson(out);
    return 0;
  }
  Table table({"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES", "ZONE"});
  for (const auto& c : resp.containers()) {
    if (!all && c.state() != "Running" && c.state() != "Paused") continue;
    std::string ports;
    for (const auto& p : c.exposed_ports()) ports += (ports.empty() ? "" : ", ") + p;
    table.AddRow({c.id().substr(0, 12), c.image(), Join(c.command()), c.created_at(), Status(c),
                  ports, c.name(), c.zone_name()});
  }
  std::cout << table.ToString();
  return 0;
}

int RunExec(const Cli& cli, bool interactive, bool tty, const std::vector<std::string>& words) {
  if (words.size() < 2) {
    return Fail("exec: give a container and a command (rauha exec [OPTIONS] CONTAINER CMD...)",
                kExitUsage);
  }
  auto stub = MakeStub<cv1::ContainerService>(cli);
  if (!stub.ok()) return Fail(stub.status(), kExitRuntimeError);
  auto id = Resolve(**stub, words[0]);
  if (!id.ok()) return Fail(id.status(), kExitRuntimeError);
  grpc::ClientContext ctx;
  auto stream = (*stub)->ExecStream(&ctx);
  std::mutex mu;
  cv1::ExecStreamRequest start;
  start.mutable_start()->set_container_id(*id);
  for (size_t i = 1; i < words.size(); ++i) start.mutable_start()->add_command(words[i]);
  start.mutable_start()->set_tty(tty);
  if (!stream->Write(start)) return Fail(DescribeRpcError(stream->Finish()), kExitRuntimeError);
  uint32_t rows = 0, cols = 0;
  if (tty && TerminalSize(&rows, &cols)) {
    cv1::ExecStreamRequest resize;
    resize.mutable_resize()->set_rows(rows);
    resize.mutable_resize()->set_cols(cols);
    stream->Write(resize);
  }
  std::optional<int> code;
  {
    RawTerminal raw(tty);
    StdinPump<grpc::ClientReaderWriter<cv1::ExecStreamRequest, cv1::ExecStreamResponse>,
              cv1::ExecStreamRequest>
        pump(stream.get(), &mu, interactive);
    cv1::ExecStreamResponse resp;
    while (!code && stream->Read(&resp)) {
      if (resp.has_stdout_data()) PrintOutput(false, resp.stdout_data());
      if (resp.has_stderr_data()) PrintOutput(true, resp.stderr_data());
      if (resp.has_exit_code()) code = resp.exit_code();
    }
  }
  grpc::Status s = stream->Finish();
  if (code) return *code;
  if (!s.ok()) return Fail(DescribeRpcError(s), kExitRuntimeError);
  return Fail("the exec stream ended without an exit code", kExitRuntimeError);
}

// Runs `action` on each container named; prints each id it acted on, like docker.
int ForEach(const Cli& cli, const std::vector<std::string>& refs,
            const std::function<grpc::Status(Stub&, const std::string&)>& action) {
  auto stub = MakeStub<cv1::ContainerService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  int rc = 0;
  for (const auto& ref : refs) {
    auto id = Resolve(**stub, ref);
    if (!id.ok()) {
      rc = Fail(id.status());
      continue;
    }
    grpc::Status s = action(**stub, *id);
    if (!s.ok()) {
      rc = Fail(StrCat(ref, ": ", DescribeRpcError(s)));
      continue;
    }
    std::cout << ref << "\n";
  }
  return rc;
}

}  // namespace

void AddContainerCommands(CLI::App& app, Cli& cli) {
  {
    auto a = std::make_shared<RunArgs>();
    CLI::App* cmd = app.add_subcommand(
        "run", "Create and start a container: rauha run [OPTIONS] IMAGE [CMD...]");
    cmd->add_option("--zone", a->zone,
                    "zone to run in (default: a zone of its own, removed with the container)");
    cmd->add_option("--name", a->name, "the container's name");
    cmd->add_flag("-d,--detach", a->detach, "start it and print its id");
    cmd->add_flag("--rm", a->rm, "remove it once it has stopped");
    cmd->add_option("-e,--env", a->env, "K=V for its environment (K alone: this shell's value)")
        ->type_name("K=V")
        ->allow_extra_args(false);  // one K=V per -e: the words after the image are its command
    cmd->add_option("-w,--workdir", a->workdir, "its working directory (default: the image's)");
    cmd->add_flag("-i,--interactive", a->interactive, "keep its stdin open and send this one's");
    cmd->add_flag("-t,--tty", a->tty, "give it a terminal");
    cmd->add_flag("--sig-proxy", a->sig_proxy,
                  "send this CLI's signals (INT, TERM, HUP, QUIT, USR1, USR2) to a container "
                  "without a terminal and exit with its code (=false: ^C detaches, the "
                  "container keeps running)")
        ->capture_default_str();
    // IMAGE and everything after it are not rauha's options (rauha run IMG sh -c ...).
    cmd->prefix_command();
    cmd->fallthrough(false);  // rauha's own options go before the subcommand here
    cmd->callback([&cli, a, cmd] { cli.exit_code = RunRun(cli, *a, cmd->remaining()); });
  }
  {
    auto all = std::make_shared<bool>(false);
    auto json = std::make_shared<bool>(false);
    auto zone = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("ps", "List containers (running ones; -a: all)");
    cmd->add_flag("-a,--all", *all, "stopped and created ones too");
    cmd->add_flag("--json", *json, "JSON instead of a table");
    cmd->add_option("--zone", *zone, "only this zone's");
    cmd->callback([&cli, all, json, zone] { cli.exit_code = RunPs(cli, *all, *json, *zone); });
  }
  {
    auto a = std::make_shared<LogsArgs>();
    auto ref = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("logs", "Print a container's output");
    cmd->add_flag("-f,--follow", a->follow, "keep printing until it stops");
    cmd->add_option("-n,--tail", a->tail, "only the last N lines (0: all)");
    cmd->add_flag("-t,--timestamps", a->timestamps, "each line after its time (RFC 3339, UTC)");
    cmd->add_option("--since", a->since,
                    "only lines since a time: RFC 3339 (2026-11-30T16:20:28Z), a date, Unix "
                    "seconds, or a duration before now (10m, 1h30m)");
    cmd->add_option("--until", a->until, "only lines before a time (the forms of --since)");
    cmd->add_option("container", *ref, "id, id prefix or name")->required();
    cmd->callback([&cli, a, ref] {
      auto stub = MakeStub<cv1::ContainerService>(cli);
      if (!stub.ok()) {
        cli.exit_code = Fail(stub.status());
        return;
      }
      auto id = Resolve(**stub, *ref);
      cli.exit_code = id.ok() ? StreamLogs(**stub, *id, *a) : Fail(id.status());
    });
  }
  {
    auto refs = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = app.add_subcommand(
        "wait", "Wait until containers stop; print each one's exit code (docker wait)");
    cmd->add_option("containers", *refs, "ids, id prefixes or names")->required();
    cmd->callback([&cli, refs] {
      auto stub = MakeStub<cv1::ContainerService>(cli);
      if (!stub.ok()) {
        cli.exit_code = Fail(stub.status());
        return;
      }
      for (const auto& ref : *refs) {
        auto id = Resolve(**stub, ref);
        if (!id.ok()) {
          cli.exit_code = Fail(id.status());
          continue;
        }
        int code = WaitExit(**stub, *id);
        std::cout << code << "\n" << std::flush;
      }
    });
  }
  {
    auto interactive = std::make_shared<bool>(false);
    auto tty = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand(
        "exec", "Run a command in a running container: rauha exec [-i] [-t] CONTAINER CMD...");
    cmd->add_flag("-i,--interactive", *interactive, "send this stdin to the command");
    cmd->add_flag("-t,--tty", *tty, "give the command a terminal");
    cmd->prefix_command();
    cmd->fallthrough(false);  // rauha's own options go before the subcommand here
    cmd->callback([&cli, interactive, tty, cmd] {
      cli.exit_code = RunExec(cli, *interactive, *tty, cmd->remaining());
    });
  }
  {
    auto ref = std::make_shared<std::string>();
    auto sig_proxy = std::make_shared<bool>(true);
    CLI::App* cmd = app.add_subcommand(
        "attach",
        "Attach to a container's process: its output, and this stdin if it keeps one open");
    cmd->add_flag("--sig-proxy", *sig_proxy,
                  "send this CLI's signals to a container without a terminal (=false: ^C "
                  "detaches)")
        ->capture_default_str();
    cmd->add_option("container", *ref, "id, id prefix or name")->required();
    cmd->callback([&cli, ref, sig_proxy] {
      auto stub = MakeStub<cv1::ContainerService>(cli);
      if (!stub.ok()) {
        cli.exit_code = Fail(stub.status(), kExitRuntimeError);
        return;
      }
      auto id = Resolve(**stub, *ref);
      if (!id.ok()) {
        cli.exit_code = Fail(id.status(), kExitRuntimeError);
        return;
      }
      grpc::ClientContext ctx;
      cv1::GetContainerRequest get;
      get.set_container_id(*id);
      cv1::GetContainerResponse info;
      grpc::Status s = (*stub)->GetContainer(&ctx, get, &info);
      if (!s.ok()) {
        cli.exit_code = Fail(DescribeRpcError(s), kExitRuntimeError);
        return;
      }
      cli.exit_code = AttachStream(**stub, *id, info.container().open_stdin(),
                                   info.container().tty(), *sig_proxy);
    });
  }
  {
    auto refs = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = app.add_subcommand("start", "Start created or stopped containers");
    cmd->add_option("containers", *refs, "ids, id prefixes or names")->required();
    cmd->callback([&cli, refs] {
      cli.exit_code =
          ForEach(cli, *refs, [](Stub& stub, const std::string& id) { return Start(stub, id); });
    });
  }
  {
    auto refs = std::make_shared<std::vector<std::string>>();
    auto seconds = std::make_shared<uint32_t>(10);
    CLI::App* cmd =
        app.add_subcommand("stop", "Stop containers: SIGTERM, then SIGKILL after the timeout");
    cmd->add_option("-t,--time", *seconds, "seconds before SIGKILL (0 is taken as 1)")
        ->capture_default_str();
    cmd->add_option("containers", *refs, "ids, id prefixes or names")->required();
    cmd->callback([&cli, refs, seconds] {
      cli.exit_code = ForEach(cli, *refs, [seconds](Stub& stub, const std::string& id) {
        grpc::ClientContext ctx;
        cv1::StopContainerRequest req;
        req.set_container_id(id);
        // 0 on the wire means the default (10 s): -t 0 becomes the shortest grace, 1 s.
        req.set_timeout_seconds(*seconds == 0 ? 1 : *seconds);
        cv1::StopContainerResponse resp;
        return stub.StopContainer(&ctx, req, &resp);
      });
    });
  }
  {
    auto refs = std::make_shared<std::vector<std::string>>();
    auto signal = std::make_shared<std::string>("KILL");
    CLI::App* cmd = app.add_subcommand("kill", "Send a signal to running containers' processes");
    cmd->add_option("-s,--signal", *signal, "KILL, SIGTERM, 15, ...")->capture_default_str();
    cmd->add_option("containers", *refs, "ids, id prefixes or names")->required();
    cmd->callback([&cli, refs, signal] {
      int signo = ParseSignal(*signal);
      if (signo == 0) {
        cli.exit_code = Fail(StrCat("kill: \"", *signal,
                                    "\" is not a signal (a name such as TERM or SIGHUP, "
                                    "or a number)"),
                             kExitUsage);
        return;
      }
      cli.exit_code = ForEach(
          cli, *refs, [signo](Stub& stub, const std::string& id) { return Kill(stub, id, signo); });
    });
  }
  {
    auto refs = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = app.add_subcommand(
        "inspect", "Print containers as JSON: state, image, command, exposed ports, times");
    cmd->add_option("containers", *refs, "ids, id prefixes or names")->required();
    cmd->callback([&cli, refs] {
      auto stub = MakeStub<cv1::ContainerService>(cli);
      if (!stub.ok()) {
        cli.exit_code = Fail(stub.status());
        return;
      }
      Json out = Json::array();
      for (const auto& ref : *refs) {
        auto id = Resolve(**stub, ref);
        if (!id.ok()) {
          cli.exit_code = Fail(id.status());
          continue;
        }
        grpc::ClientContext ctx;
        cv1::GetContainerRequest req;
        req.set_container_id(*id);
        cv1::GetContainerResponse resp;
        grpc::Status s = (*stub)->GetContainer(&ctx, req, &resp);
        if (!s.ok()) {
          cli.exit_code = Fail(StrCat(ref, ": ", DescribeRpcError(s)));
          continue;
        }
        out.push_back(InfoJson(resp.container()));
      }
      PrintJson(out);
    });
  }
  {
    auto refs = std::make_shared<std::vector<std::string>>();
    auto force = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand("rm", "Remove containers (-f: running ones too)");
    cmd->add_flag("-f,--force", *force, "kill a running container first");
    cmd->add_option("containers", *refs, "ids, id prefixes or names")->required();
    cmd->callback([&cli, refs, force] {
      cli.exit_code = ForEach(cli, *refs, [force](Stub& stub, const std::string& id) {
        return Delete(stub, id, *force);
      });
    });
  }
}

}  // namespace rauha::cli
