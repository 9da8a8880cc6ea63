// rauhad's endpoints (issue 9): TCP listeners beside the unix socket with mutual TLS or, on
// loopback and only when asked, none; the standard health service and server reflection;
// `rauha version` with and without a rauhad. Certificates are made by the test with the
// openssl CLI; every connection stays on loopback.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "google/protobuf/descriptor.pb.h"
#include "health.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "reflection.grpc.pb.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace zpb = rauha::zone::v1;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ProcRun {
  int exit_code = -1;
  std::string out;
  std::string err;
  int64_t ms = 0;
};

// Runs argv to completion with stdout and stderr in files under `dir`.
ProcRun RunProcess(std::vector<std::string> args, const std::string& dir) {
  const std::string out_path = dir + "/proc.out", err_path = dir + "/proc.err";
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ProcRun r;
  r.ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
             .count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out_path);
  r.err = Slurp(err_path);
  return r;
}

// A CA and certificates it signs, made with the openssl CLI in `dir`.
class Pki {
 public:
  Pki(std::string dir, std::string ca) : dir_(std::move(dir)), ca_(std::move(ca)) {
    Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", Key(ca_), "-out", Cert(ca_), "-subj", "/CN=" + ca_, "-days", "2"});
  }
  // A certificate for `name` signed by this CA; `san` like "IP:127.0.0.1,DNS:localhost".
  void Issue(const std::string& name, const std::string& san, bool server) {
    const std::string ext = dir_ + "/" + name + ".ext";
    std::ofstream(ext) << "basicConstraints=critical,CA:FALSE\n"
                       << "extendedKeyUsage=" << (server ? "serverAuth" : "clientAuth") << "\n"
                       << (san.empty() ? "" : "subjectAltName=" + san + "\n");
    Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", Key(name), "-out", dir_ + "/" + name + ".csr", "-subj", "/CN=" + name});
    Openssl({"x509", "-req", "-in", dir_ + "/" + name + ".csr", "-CA", Cert(ca_), "-CAkey",
             Key(ca_), "-CAcreateserial", "-out", Cert(name), "-days", "2", "-extfile", ext});
  }
  std::string Cert(const std::string& name) const { return dir_ + "/" + name + ".crt"; }
  std::string Key(const std::string& name) const { return dir_ + "/" + name + ".key"; }
  std::string CaCert() const { return Cert(ca_); }

 private:
  void Openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    ProcRun r = RunProcess(args, dir_);
    ASSERT_EQ(r.exit_code, 0) << "openssl failed: " << r.err;
  }
  std::string dir_, ca_;
};

grpc::SslCredentialsOptions ClientTls(const Pki& server_pki, const Pki* client_pki,
                                      const std::string& client) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = Slurp(server_pki.CaCert());
  if (client_pki) {
    o.pem_cert_chain = Slurp(client_pki->Cert(client));
    o.pem_private_key = Slurp(client_pki->Key(client));
  }
  return o;
}

// ListZones over `channel` within 5 s.
grpc::Status ListZones(const std::shared_ptr<grpc::Channel>& channel) {
  zpb::ListZonesResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return zpb::ZoneService::NewStub(channel)->ListZones(&ctx, {}, &resp);
}

class EndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      if (RequireAll()) FAIL() << "integration tests need root";
      GTEST_SKIP() << "integration tests need root";
    }
    char tmpl[] = "/tmp/rauha-pki-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    pki_dir_ = tmpl;
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->Stop();
      EXPECT_TRUE(daemon_->LeftoverProcesses().empty());
      EXPECT_TRUE(daemon_->LeftoverCgroups().empty());
      daemon_.reset();
    }
    std::error_code ec;
    std::filesystem::remove_all(pki_dir_, ec);
  }

  // Starts rauhad with `args`; returns the port its one --listen got (from its log).
  int StartListening(std::vector<std::string> args) {
    daemon_ = std::make_unique<Daemon>(std::move(args));
    daemon_->Start();
    // The socket answers a moment before the TCP ports are logged.
    static const std::regex kBound("listening on tcp [^ ]*:([0-9]+) ");
    for (int i = 0; i < 500; ++i) {
      std::smatch m;
      const std::string log = daemon_->log();
      if (std::regex_search(log, m, kBound)) return std::stoi(m[1]);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "no TCP listener in the log:\n" << daemon_->log();
    return 0;
  }

  // rauhad started with `args` and expected to refuse them: its exit code and stderr.
  ProcRun Refused(std::vector<std::string> args) {
    const std::string dir = pki_dir_ + "/refused";
    std::filesystem::create_directories(dir);
    std::vector<std::string> argv = {RAUHAD_BIN,     "--socket",    dir + "/s.sock",
                                     "--run-dir",    dir + "/run",  "--state-dir",
                                     dir + "/state", "--shim-path", RAUHA_SHIM_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, dir);
  }

  std::string pki_dir_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(EndpointsTest, MutualTlsAcceptsOnlyClientsOfTheClientCa) {
  Pki server_pki(pki_dir_, "server-ca");
  server_pki.Issue("rauhad", "IP:127.0.0.1,DNS:localhost", /*server=*/true);
  Pki client_pki(pki_dir_, "client-ca");
  client_pki.Issue("agent", "", /*server=*/false);
  Pki other_pki(pki_dir_, "other-ca");
  other_pki.Issue("stranger", "", /*server=*/false);
  const int port = StartListening({"--listen", "127.0.0.1:0", "--tls-cert",
                                   server_pki.Cert("rauhad"), "--tls-key", server_pki.Key("rauhad"),
                                   "--tls-client-ca", client_pki.CaCert()});
  ASSERT_GT(port, 0);
  const std::string target = "127.0.0.1:" + std::to_string(port);
  EXPECT_NE(daemon_->log().find("(mutual TLS)"), std::string::npos) << daemon_->log();

  // A client certificate from the CA rauhad trusts: served.
  auto good = grpc::CreateChannel(
      target, grpc::SslCredentials(ClientTls(server_pki, &client_pki, "agent")));
  grpc::Status st = ListZones(good);
  EXPECT_TRUE(st.ok()) << st.error_message();

  // No client certificate: the handshake fails, nothing is served.
  auto anonymous =
      grpc::CreateChannel(target, grpc::SslCredentials(ClientTls(server_pki, nullptr, "")));
  st = ListZones(anonymous);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();

  // A certificate from another CA: refused the same way.
  auto stranger = grpc::CreateChannel(
      target, grpc::SslCredentials(ClientTls(server_pki, &other_pki, "stranger")));
  st = ListZones(stranger);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();

  // Plaintext to a TLS port: refused.
  st = ListZones(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();

  // The CLI over TCP with its --tls-* flags; the unix socket still serves beside it.
  ProcRun cli = RunProcess(
      {RAUHA_CLI_BIN, "--host", target, "--tls-ca", server_pki.CaCert(), "--tls-cert",
       client_pki.Cert("agent"), "--tls-key", client_pki.Key("agent"), "zone", "list", "--json"},
      pki_dir_);
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  ProcRun cli_refused = RunProcess(
      {RAUHA_CLI_BIN, "--host", target, "--tls-ca", server_pki.CaCert(), "--tls-cert",
       other_pki.Cert("stranger"), "--tls-key", other_pki.Key("stranger"), "zone", "list"},
      pki_dir_);
  EXPECT_EQ(cli_refused.exit_code, 1);
  EXPECT_NE(cli_refused.err.find("cannot reach rauhad at " + target), std::string::npos)
      << cli_refused.err;
  EXPECT_TRUE(ListZones(daemon_->Channel()).ok());
}

TEST_F(EndpointsTest, InsecureLoopbackOnlyWithTheFlag) {
  // Without the flag (and without TLS) a loopback listener is refused at start.
  ProcRun r = Refused({"--listen", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--listen 127.0.0.1:0 has no TLS"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--insecure-loopback"), std::string::npos) << r.err;

  // With it: served without TLS, with a warning in the log; the CLI reaches it via RAUHA_HOST.
  const int port = StartListening({"--listen", "[::1]:0", "--insecure-loopback"});
  ASSERT_GT(port, 0);
  const std::string target = "[::1]:" + std::to_string(port);
  EXPECT_NE(daemon_->log().find("WARNING: " + target + " has no TLS"), std::string::npos)
      << daemon_->log();
  grpc::Status st = ListZones(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  EXPECT_TRUE(st.ok()) << st.error_message();
  ::setenv("RAUHA_HOST", target.c_str(), 1);
  ProcRun cli = RunProcess({RAUHA_CLI_BIN, "--socket", "/nonexistent", "zone", "list"}, pki_dir_);
  ::unsetenv("RAUHA_HOST");
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
}

TEST_F(EndpointsTest, NonLoopbackWithoutTlsIsRefusedAtStart) {
  // Refused before anything binds (so no address of this host is needed, and nothing is sent).
  ProcRun r = Refused({"--listen", "0.0.0.0:0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--listen 0.0.0.0:0 is not a loopback address: TCP beyond this machine "
                       "needs mutual TLS"),
            std::string::npos)
      << r.err;
  r = Refused({"--listen", "192.0.2.1:9876", "--insecure-loopback"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is not a loopback address"), std::string::npos) << r.err;
  r = Refused({"--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.crt"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("mutual TLS needs all of --tls-cert, --tls-key and --tls-client-ca"),
            std::string::npos)
      << r.err;
  r = Refused({"--listen", "127.0.0.1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no port"), std::string::npos) << r.err;
  // A key that is not the certificate's: named before the server starts.
  Pki pki(pki_dir_, "ca");
  pki.Issue("a", "IP:127.0.0.1", true);
  pki.Issue("b", "IP:127.0.0.1", true);
  r = Refused({"--listen", "127.0.0.1:0", "--tls-cert", pki.Cert("a"), "--tls-key", pki.Key("b"),
               "--tls-client-ca", pki.CaCert()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is not the key of the certificate"), std::string::npos) << r.err;
}

TEST_F(EndpointsTest, HealthServesPerServiceAndReflectionListsOurServices) {
  daemon_ = std::make_unique<Daemon>();
  daemon_->Start();
  auto health = grpc::health::v1::Health::NewStub(daemon_->Channel());
  for (const std::string service :
       {"", "rauha.zone.v1.ZoneService", "rauha.sandbox.v1.SandboxService"}) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = health->Check(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << service << ": " << st.error_message();
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("rauha.nope.v1.Nothing");
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(health->Check(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  namespace rpb = grpc::reflection::v1alpha;
  auto reflection = rpb::ServerReflection::NewStub(daemon_->Channel());
  grpc::ClientContext ctx;
  auto stream = reflection->ServerReflectionInfo(&ctx);
  rpb::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  rpb::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::set<std::string> services;
  for (const auto& s : resp.list_services_response().service()) services.insert(s.name());
  EXPECT_TRUE(services.count("rauha.zone.v1.ZoneService")) << resp.DebugString();
  EXPECT_TRUE(services.count("rauha.sandbox.v1.SandboxService")) << resp.DebugString();
  EXPECT_TRUE(services.count("grpc.health.v1.Health")) << resp.DebugString();

  // What grpcurl asks next: the file that defines a service, so it needs no .proto of ours.
  rpb::ServerReflectionRequest file;
  file.set_file_containing_symbol("rauha.zone.v1.ZoneService");
  ASSERT_TRUE(stream->Write(file));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_GT(resp.file_descriptor_response().file_descriptor_proto_size(), 0) << resp.DebugString();
  google::protobuf::FileDescriptorProto fd;
  ASSERT_TRUE(fd.ParseFromString(resp.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(fd.package(), "rauha.zone.v1");
  bool has_create = false;
  for (const auto& svc : fd.service()) {
    for (const auto& m : svc.method()) has_create |= m.name() == "CreateZone";
  }
  EXPECT_TRUE(has_create) << fd.DebugString();
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(EndpointsTest, VersionReportsTheCliAndRauhad) {
  daemon_ = std::make_unique<Daemon>();
  daemon_->Start();
  zpb::VersionInfo info;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->GetVersion(&ctx, {}, &info).ok());
  EXPECT_EQ(info.version(), RAUHA_VERSION);

  ProcRun r = RunProcess({RAUHA_CLI_BIN, "--socket", daemon_->socket(), "version"}, pki_dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string("rauha ") + RAUHA_VERSION + "\nrauhad " + RAUHA_VERSION + "\n");
  r = RunProcess({RAUHA_CLI_BIN, "--socket", daemon_->socket(), "version", "--json"}, pki_dir_);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_EQ(j["daemon"]["version"], RAUHA_VERSION) << r.out;

  // No rauhad: still exit 0, quickly, with the CLI's version and why rauhad is missing.
  r = RunProcess({RAUHA_CLI_BIN, "--socket", pki_dir_ + "/none.sock", "version", "--json"},
                 pki_dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(r.ms, 2000);
  j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_EQ(j["cli"]["version"], RAUHA_VERSION) << r.out;
  EXPECT_TRUE(j["daemon"].is_null()) << r.out;
  EXPECT_NE(j["daemon_error"].get<std::string>().find("cannot reach rauhad"), std::string::npos);
}

}  // namespace
}  // namespace rauha::testing
