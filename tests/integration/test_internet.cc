#include "tests/integration/test_internet.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace rauha::testing {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

int RunShell(const std::string& cmd, std::string* out) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
  int rc = ::pclose(p);
  if (out) *out = text;
  return rc;
}

namespace {

// `arg` with each "@DIR@" replaced by `dir`.
std::string WithDir(std::string arg, const std::string& dir) {
  for (size_t at = arg.find("@DIR@"); at != std::string::npos; at = arg.find("@DIR@", at)) {
    arg.replace(at, 5, dir);
    at += dir.size();
  }
  return arg;
}

}  // namespace

const char kHelloServer[] = R"py(
import hashlib, http.server, socketserver, ssl, sys, threading
BLOCK = bytes(range(256)) * 256
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, body, length=None):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith("/bytes/"):
            n = int(self.path[7:])
            self.answer(b"", n)
            while n > 0:
                self.wfile.write(BLOCK[:min(n, len(BLOCK))])
                n -= min(n, len(BLOCK))
            return
        self.answer(("hello %s %s %s\n" % (self.server.scheme, self.headers.get("Host", ""), self.path)).encode())
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        left = n
        while left > 0:
            d = self.rfile.read(min(left, 1 << 16))
            if not d: break
            h.update(d)
            left -= len(d)
        self.answer(("posted %d %s\n" % (n - left, h.hexdigest())).encode())
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512
plain = S((sys.argv[1], 80), H); plain.scheme = "http"
tls = S((sys.argv[1], 443), H); tls.scheme = "https"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
threading.Thread(target=plain.serve_forever, daemon=True).start()
print("ready", flush=True)
tls.serve_forever()
)py";

std::string HelloServerBytes(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(i & 0xff);
  return out;
}

void TestInternetTest::SetUp() {
  if (::geteuid() != 0) {
    if (RequireAll()) FAIL() << "integration tests need root";
    GTEST_SKIP() << "integration tests need root";
  }
  ASSERT_NO_FATAL_FAILURE(CreateNamespaces());
  daemon_ = std::make_unique<Daemon>();
  dir_ = daemon_->dir() + "/internet";
  std::filesystem::create_directories(repo_dir());
  ASSERT_NO_FATAL_FAILURE(MakeCertificates());
  std::ofstream(hosts_path()) << config_.hosts;
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::vector<std::string> args = {"--egress-hosts", hosts_path()};
  for (const auto& a : config_.daemon_args) args.push_back(WithDir(a, dir_));
  daemon_->set_extra_args(args);
  daemon_->set_netns("/run/netns/" + ns_);
  daemon_->Start();
}

void TestInternetTest::TearDown() {
  // First: the server's command line names the daemon's directory, where LeftoverProcesses
  // looks.
  StopServer();
  if (daemon_) {
    daemon_->Stop();
    EXPECT_TRUE(daemon_->LeftoverProcesses().empty()) << "processes left after rauhad stopped";
    EXPECT_TRUE(daemon_->LeftoverCgroups().empty()) << "cgroups left after rauhad stopped";
  }
  daemon_.reset();
  for (const auto& ns : {internet_, ns_}) {
    if (ns.empty()) continue;
    std::string out;
    EXPECT_EQ(RunShell("ip netns del " + ns, &out), 0) << out;
  }
}

void TestInternetTest::CreateNamespaces() {
  static int counter = 0;
  std::string ns =
      config_.ns_prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  std::string internet = ns + "-net";
  std::string out;
  ASSERT_EQ(RunShell("ip netns add " + ns, &out), 0) << out;
  ns_ = ns;  // from here on TearDown deletes it
  ASSERT_EQ(RunShell("ip netns add " + internet, &out), 0) << out;
  internet_ = internet;
  for (const std::string& cmd : {
           "ip -n " + ns_ + " link set lo up",
           "ip -n " + ns_ + " link add reg0 type veth peer name eth0 netns " + internet_,
           "ip -n " + ns_ + " addr add " + config_.rauhad_address + "/30 dev reg0",
           "ip -n " + ns_ + " link set reg0 up",
           "ip -n " + internet_ + " addr add " + config_.internet_address + "/30 dev eth0",
           "ip -n " + internet_ + " link set eth0 up",
           "ip -n " + internet_ + " link set lo up",
       }) {
    ASSERT_EQ(RunShell(cmd, &out), 0) << cmd << ": " << out;
  }
}

void TestInternetTest::MakeCertificates() {
  ASSERT_FALSE(config_.server_names.empty());
  std::string d = dir_, out;
  std::string san = "subjectAltName=";
  for (size_t i = 0; i < config_.server_names.size(); ++i) {
    san += (i ? ",DNS:" : "DNS:") + config_.server_names[i];
  }
  std::ofstream(d + "/san.ext") << san << "\n";
  for (const std::string& cmd : {
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
               d + "/ca.key -out " + ca_path() + " -days 2 -subj " + config_.ca_subject,
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + d +
               "/server.key -out " + d + "/server.csr -subj /CN=" + config_.server_names[0],
           "openssl x509 -req -in " + d + "/server.csr -CA " + ca_path() + " -CAkey " + d +
               "/ca.key -CAcreateserial -out " + d + "/server.pem -days 2 -extfile " + d +
               "/san.ext",
       }) {
    ASSERT_EQ(RunShell(cmd, &out), 0) << cmd << ": " << out;
  }
}

void TestInternetTest::StartServer() {
  std::ofstream(dir_ + "/server.py") << config_.server_script;
  std::vector<std::string> argv = {"ip",
                                   "netns",
                                   "exec",
                                   internet_,
                                   "/usr/bin/python3",
                                   dir_ + "/server.py",
                                   config_.internet_address,
                                   dir_ + "/server.pem",
                                   dir_ + "/server.key"};
  for (const auto& a : config_.server_args) argv.push_back(WithDir(a, dir_));
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  server_pid_ = ::fork();
  ASSERT_GE(server_pid_, 0) << "fork: " << std::strerror(errno);
  if (server_pid_ == 0) {
    ::dup2(p[1], 1);
    ::execvp("ip", cargv.data());
    ::_exit(127);
  }
  ::close(p[1]);
  pollfd pfd{p[0], POLLIN, 0};
  std::string line;
  char buf[64];
  while (line.find("ready") == std::string::npos && ::poll(&pfd, 1, 20000) == 1) {
    ssize_t n = ::read(p[0], buf, sizeof(buf));
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  server_out_.reset(p[0]);  // open until the server is killed: it may still write
  ASSERT_NE(line.find("ready"), std::string::npos) << "the test's servers did not start";
}

void TestInternetTest::StopServer() {
  if (server_pid_ <= 0) return;
  ::kill(server_pid_, SIGKILL);
  ::waitpid(server_pid_, nullptr, 0);
  server_pid_ = -1;
  server_out_.reset();
}

grpc::Status TestInternetTest::CreateZoneWithPolicy(const std::string& name,
                                                    const std::string& policy_toml) {
  zpb::CreateZoneRequest req;
  req.set_name(name);
  req.set_policy_toml(policy_toml);
  zpb::CreateZoneResponse resp;
  grpc::ClientContext ctx;
  return daemon_->Zones()->CreateZone(&ctx, req, &resp);
}

grpc::Status TestInternetTest::Run(const std::string& zone, const std::vector<std::string>& command,
                                   spb::SandboxResult* result) {
  spb::RunSandboxRequest req;
  req.set_name(zone);
  req.set_repo_path(repo_dir());
  req.set_timeout_seconds(60);
  for (const auto& c : command) req.add_command(c);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
  return daemon_->Sandbox()->RunSandbox(&ctx, req, result);
}

spb::SandboxResult TestInternetTest::RunIn(const std::string& zone,
                                           const std::vector<std::string>& command) {
  spb::SandboxResult result;
  auto st = Run(zone, command, &result);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return result;
}

const spb::EnforcementEventSummary* TestInternetTest::ProxyEvent(const spb::SandboxResult& r,
                                                                 const std::string& object) {
  for (const auto& e : r.enforcement_events()) {
    if (e.layer() == "proxy" && e.object() == object) return &e;
  }
  return nullptr;
}

int64_t TestInternetTest::SqlInt(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "open " << db_path << ": " << (db ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    return -1;
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt* stmt = nullptr;
  int64_t out = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    out = sqlite3_column_int64(stmt, 0);
  } else {
    ADD_FAILURE() << db_path << ": " << sql << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

std::string TestInternetTest::WaitForRunningTask() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    rauha::sandbox::v1::ListTasksResponse tasks;
    grpc::ClientContext ctx;
    if (daemon_->Sandbox()->ListTasks(&ctx, {}, &tasks).ok() && tasks.tasks_size() == 1 &&
        tasks.tasks(0).pid() != 0) {
      return tasks.tasks(0).task_id();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

}  // namespace rauha::testing
