// Secrets the zone never sees, against the real kernel, in the test "internet" of
// test_internet.h: rauhad in a network namespace the test creates, routed to one more with an
// HTTP and an HTTPS server (certificate from a CA the test makes, trusted by rauhad's proxy
// through --egress-extra-ca). Names resolve only from a hosts file (--egress-hosts): nothing
// leaves the machine. The servers write the Authorization header of each request to a file the
// test reads; what they answer says only whether it was the secret, never the header itself.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "rauha/v1/container.grpc.pb.h"
#include "rauha/v1/secret.grpc.pb.h"
#include "tests/integration/local_image.h"
#include "tests/integration/tar_builder.h"
#include "tests/integration/test_internet.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;
namespace secpb = rauha::secret::v1;
namespace cpb = rauha::container::v1;

constexpr char kInternet[] = "172.31.252.2";
constexpr char kRauhadSide[] = "172.31.252.1";
constexpr char kValue[] = "s3cr3t-value-7f1e9c2ab4d04e55";
constexpr char kValueSplit[] = "s3cr3t-value-7f1e9c2a\"\"b4d04e55";

// argv: address, cert, key, log file, the secret's expected header value.
constexpr char kServer[] = R"py(
import http.server, socketserver, ssl, sys, threading
log = open(sys.argv[4], "a", buffering=1)
expected = sys.argv[5]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def handle_one(self):
        auth = self.headers.get("Authorization", "")
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n) if n else b""
        log.write("%s %s %s %s|%s\n" % (self.server.scheme, self.headers.get("Host", ""), self.path, auth, body.decode()))
        out = ("hello %s %s %s auth=%s\n" % (self.server.scheme, self.headers.get("Host", ""), self.path,
               "ok" if auth == expected else ("placeholder" if "rauha-placeholder-" in auth else "none"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = handle_one
    do_POST = handle_one
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
plain = S((sys.argv[1], 80), H); plain.scheme = "http"
tls = S((sys.argv[1], 443), H); tls.scheme = "https"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
threading.Thread(target=plain.serve_forever, daemon=True).start()
print("ready", flush=True)
tls.serve_forever()
)py";

// In the zone: two requests on one kept-alive HTTPS connection through the proxy (Python's
// own trust: SSL_CERT_FILE), each with the placeholder in Authorization; a POST with a body.
constexpr char kPython[] = R"py(
import http.client, os, ssl
proxy = os.environ["HTTPS_PROXY"].split("//")[1]
host, port = proxy.split(":")
c = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(), timeout=20)
c.set_tunnel("api.example.test", 443)
h = {"Authorization": "Bearer " + os.environ["API_TOKEN"]}
for path in ("/py1", "/py2"):
    c.request("GET", path, headers=h)
    print(c.getresponse().read().decode(), end="")
c.request("POST", "/py3", body="payload " + os.environ["API_TOKEN"], headers=h)
print(c.getresponse().read().decode(), end="")
)py";

TestInternetConfig SecretsInternet() {
  TestInternetConfig c;
  c.ns_prefix = "rauha-secrets";
  c.rauhad_address = kRauhadSide;
  c.internet_address = kInternet;
  c.ca_subject = "/CN=rauha-secrets-test-ca";
  c.server_names = {"api.example.test", "other.example.test"};
  c.hosts = std::string(kInternet) + " api.example.test other.example.test\n";
  c.server_script = kServer;
  c.server_args = {"@DIR@/seen.log", std::string("Bearer ") + kValue};
  c.daemon_args = {"--egress-extra-ca", "@DIR@/repo/ca.pem", "--egress-connect-timeout-ms", "1500"};
  return c;
}

constexpr char kCurl[] = "/usr/bin/curl";
constexpr char kPolicy[] =
    "[zone]\ntype = \"non-global\"\n\n[network]\nmode = \"isolated\"\n"
    "allowed_hosts = [\"api.example.test\", \"other.example.test\"]\n\n"
    "[secrets.API_TOKEN]\nhosts = [\"api.example.test\"]\n\n"
    "[secrets.OTHER_TOKEN]\nhosts = [\"other.example.test:443\"]\nheader = \"X-Api-Key\"\n"
    "format = \"{}\"\n";

class SecretsTest : public TestInternetTest {
 protected:
  SecretsTest() : TestInternetTest(SecretsInternet()) {}

  void SetUp() override {
    TestInternetTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    secrets_ = secpb::SecretService::NewStub(daemon_->Channel());
  }

  grpc::Status SetSecret(const std::string& name, const std::string& value) {
    secpb::SetSecretRequest req;
    req.set_name(name);
    req.set_value(value);
    secpb::SetSecretResponse resp;
    grpc::ClientContext ctx;
    return secrets_->SetSecret(&ctx, req, &resp);
  }

  std::vector<std::string> SecretNames() {
    secpb::ListSecretsResponse resp;
    grpc::ClientContext ctx;
    auto st = secrets_->ListSecrets(&ctx, secpb::ListSecretsRequest(), &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::vector<std::string> names;
    for (const auto& s : resp.secrets()) names.push_back(s.name());
    return names;
  }

  grpc::Status CreateZone(const std::string& name, const std::string& policy) {
    return CreateZoneWithPolicy(name, policy);
  }

  // Where most tests start: both secrets stored, zone "agent" made with kPolicy.
  void StoreSecretsAndCreateAgent() {
    ASSERT_TRUE(SetSecret("API_TOKEN", kValue).ok());
    ASSERT_TRUE(SetSecret("OTHER_TOKEN", "other-value-00").ok());
    ASSERT_TRUE(CreateZone("agent", kPolicy).ok());
  }

  // rauhad started again (after Stop or Kill9), and this test's secrets client with it.
  void StartAgain() {
    daemon_->Start();
    secrets_ = secpb::SecretService::NewStub(daemon_->Channel());
  }

  // `script` as a task of zone "agent", called from a thread: a task that outlives the crash
  // the test causes, so the call itself fails when rauhad dies under it. Join it after Kill9.
  std::thread RunTaskThatOutlivesACrash(std::string script) {
    return std::thread([this, script = std::move(script)] {
      spb::SandboxResult r;
      auto st = Run("agent", {"/bin/sh", "-c", script}, &r);
      EXPECT_FALSE(st.ok()) << "the call's daemon died under it";
    });
  }

  // The result of task `task_id` (one that outlived a crash), through WaitTask.
  void WaitForTaskResult(const std::string& task_id, spb::SandboxResult* result) {
    spb::WaitTaskRequest req;
    req.set_task_id(task_id);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    ASSERT_TRUE(daemon_->Sandbox()->WaitTask(&ctx, req, result).ok());
  }

  // A container of local/secrets-busybox:v1 (RecordBusyboxImage) in zone "agent" running
  // `sh -c script`, created and started; its id in `id`.
  void StartBusyboxContainer(cpb::ContainerService::Stub* containers, const std::string& script,
                             std::string* id) {
    {
      cpb::CreateContainerRequest req;
      req.set_zone_name("agent");
      req.set_image("local/secrets-busybox:v1");
      for (const char* c : {"/bin/sh", "-c"}) req.add_command(c);
      req.add_command(script);
      cpb::CreateContainerResponse resp;
      grpc::ClientContext ctx;
      auto st = containers->CreateContainer(&ctx, req, &resp);
      ASSERT_TRUE(st.ok()) << st.error_message();
      *id = resp.container_id();
    }
    cpb::StartContainerRequest req;
    req.set_container_id(*id);
    cpb::StartContainerResponse resp;
    grpc::ClientContext ctx;
    auto st = containers->StartContainer(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }

  static grpc::Status WaitContainer(cpb::ContainerService::Stub* containers, const std::string& id,
                                    cpb::WaitContainerResponse* resp) {
    cpb::WaitContainerRequest req;
    req.set_container_id(id);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return containers->WaitContainer(&ctx, req, resp);
  }

  static grpc::Status DeleteContainer(cpb::ContainerService::Stub* containers,
                                      const std::string& id) {
    cpb::DeleteContainerRequest req;
    req.set_container_id(id);
    cpb::DeleteContainerResponse resp;
    grpc::ClientContext ctx;
    return containers->DeleteContainer(&ctx, req, &resp);
  }

  std::string Cli(const std::string& args) {
    std::string out;
    RunShell(std::string(RAUHA_CLI_BIN) + " --socket " + daemon_->socket() + " " + args, &out);
    return out;
  }

  static const spb::EnforcementEventSummary* Misuse(const spb::SandboxResult& r,
                                                    const std::string& object) {
    for (const auto& e : r.enforcement_events()) {
      if (e.action() == "secret_misuse" && e.object() == object) return &e;
    }
    return nullptr;
  }

  // Every file below `dir` whose bytes hold `needle`.
  static std::vector<std::string> FilesHolding(const std::string& dir, const std::string& needle) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (!it->is_regular_file(ec)) continue;
      if (ReadWholeFile(it->path()).find(needle) != std::string::npos) out.push_back(it->path());
    }
    return out;
  }

  // A busybox image (busybox-static) recorded locally as local/secrets-busybox:v1.
  void RecordBusyboxImage() {
    TarBuilder layer;
    layer.Dir("bin").File("bin/busybox", ReadWholeFile("/bin/busybox"), {.perm = 0755});
    for (const char* applet : {"sh", "cat", "sed", "echo", "wget", "sleep", "test", "touch"}) {
      layer.Symlink(std::string("bin/") + applet, "busybox");
    }
    RecordLocalImage(daemon_->dir() + "/state", {layer.Build(image::LayerCompression::kGzip)},
                     {{"config", {{"Env", {"PATH=/bin"}}}}}, "local/secrets-busybox:v1");
  }

  // `command` in the container, its env's API_TOKEN set to "mine" (which the container's
  // grant overrides); its stdout.
  std::string ExecIn(cpb::ContainerService::Stub* containers, const std::string& id,
                     const std::string& command) {
    cpb::ExecInContainerRequest req;
    req.set_container_id(id);
    for (const char* c : {"/bin/sh", "-c"}) req.add_command(c);
    req.add_command(command);
    (*req.mutable_env())["API_TOKEN"] = "mine";
    cpb::ExecInContainerResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto st = containers->ExecInContainer(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.stdout();
  }

  std::unique_ptr<secpb::SecretService::Stub> secrets_;
};

TEST_F(SecretsTest, SecretInjectedForItsHostAndNeverSeenByTheZone) {
  ASSERT_NO_FATAL_FAILURE(StoreSecretsAndCreateAgent());

  // curl trusts the zone's bundle (CURL_CA_BUNDLE, /etc/ssl/certs): no --cacert.
  auto tls = RunIn(
      "agent", {"/bin/sh", "-c",
                std::string(kCurl) + " -sS https://api.example.test/tls -H \"Authorization: Bearer "
                                     "$API_TOKEN\""});
  EXPECT_EQ(tls.stdout(), "hello https api.example.test /tls auth=ok\n") << tls.stderr();
  auto plain =
      RunIn("agent", {"/bin/sh", "-c",
                      std::string(kCurl) + " -sS http://api.example.test/plain -H \"Authorization: "
                                           "Bearer $API_TOKEN\""});
  EXPECT_EQ(plain.stdout(), "hello http api.example.test /plain auth=ok\n") << plain.stderr();
  // Python's own TLS stack, one kept-alive connection, a body holding the placeholder (passed
  // on as it is: only the named header is rewritten).
  auto py = RunIn("agent", {"/usr/bin/python3", "-c", kPython});
  EXPECT_EQ(py.stdout(),
            "hello https api.example.test /py1 auth=ok\nhello https api.example.test /py2 "
            "auth=ok\nhello https api.example.test /py3 auth=ok\n")
      << py.stderr();
  for (const auto* r : {&tls, &plain, &py}) {
    for (const auto& e : r->enforcement_events()) EXPECT_NE(e.action(), "secret_misuse");
  }

  // The environment holds a placeholder, per task, never the value.
  auto env = RunIn("agent", {"/bin/sh", "-c", "echo $API_TOKEN; echo $SSL_CERT_FILE"});
  auto env2 = RunIn("agent", {"/bin/sh", "-c", "echo $API_TOKEN"});
  EXPECT_EQ(env.stdout().rfind("rauha-placeholder-", 0), 0u) << env.stdout();
  EXPECT_NE(env.stdout().find("/etc/ssl/certs/ca-certificates.crt"), std::string::npos);
  EXPECT_NE(env.stdout().substr(0, env.stdout().find('\n')),
            env2.stdout().substr(0, env2.stdout().find('\n')));
  // Nothing in the zone holds it: its environment, its files, its processes' memory maps.
  // (The value is split in the command, so that the command itself does not hold it.)
  auto look = RunIn("agent", {"/bin/sh", "-c",
                              std::string("env; cat /proc/self/environ; grep -rl ") + kValueSplit +
                                  " /etc /tmp /workspace 2>/dev/null; echo done"});
  EXPECT_EQ(look.stdout().find(kValue), std::string::npos);
  EXPECT_NE(look.stdout().find("done"), std::string::npos);

  // Misuse: the placeholder to a host the secret does not name (plain HTTP: the proxy reads
  // the head), and to another secret's host over TLS (ended there for OTHER_TOKEN).
  auto wrong = RunIn(
      "agent", {"/bin/sh", "-c",
                std::string(kCurl) + " -sS http://other.example.test/wrong -H \"Authorization: "
                                     "Bearer $API_TOKEN\""});
  EXPECT_EQ(wrong.stdout(), "hello http other.example.test /wrong auth=placeholder\n")
      << wrong.stderr();
  const auto* e = Misuse(wrong, "other.example.test:80");
  ASSERT_NE(e, nullptr) << wrong.DebugString();
  EXPECT_EQ(e->layer(), "proxy");
  EXPECT_EQ(e->decision(), "deny");
  EXPECT_NE(e->message().find("secret API_TOKEN"), std::string::npos) << e->message();
  bool in_events = false;
  for (const auto& ev : wrong.events()) in_events |= ev.kind() == "secret_misuse";
  EXPECT_TRUE(in_events) << wrong.DebugString();
  auto wrong_tls =
      RunIn("agent", {"/bin/sh", "-c",
                      std::string(kCurl) + " -sS https://other.example.test/wrongtls -H "
                                           "\"Authorization: Bearer $API_TOKEN\" -H \"X-Api-Key: "
                                           "$OTHER_TOKEN\""});
  EXPECT_EQ(wrong_tls.stdout(), "hello https other.example.test /wrongtls auth=placeholder\n")
      << wrong_tls.stderr();
  const auto* t = Misuse(wrong_tls, "other.example.test:443");
  ASSERT_NE(t, nullptr) << wrong_tls.DebugString();
  EXPECT_EQ(t->hook(), "proxy/tls");

  // What the servers saw: the value for api.example.test only; placeholders elsewhere.
  std::string seen = ReadWholeFile(dir() + "/seen.log");
  EXPECT_NE(seen.find(std::string("https api.example.test /tls Bearer ") + kValue + "|"),
            std::string::npos)
      << seen;
  EXPECT_NE(seen.find(std::string("http api.example.test /plain Bearer ") + kValue + "|"),
            std::string::npos)
      << seen;
  EXPECT_NE(seen.find("/py3 Bearer " + std::string(kValue) + "|payload rauha-placeholder-"),
            std::string::npos)
      << seen;
  EXPECT_NE(seen.find("http other.example.test /wrong Bearer rauha-placeholder-"),
            std::string::npos)
      << seen;
  EXPECT_NE(seen.find("https other.example.test /wrongtls Bearer rauha-placeholder-"),
            std::string::npos)
      << seen;
  EXPECT_EQ(seen.find("other-value-00"), std::string::npos) << "X-Api-Key is not logged";

  // The value is nowhere rauhad writes or answers: results, its log, the audit log, the
  // secrets database (sealed), the list.
  for (const auto* r : {&tls, &plain, &py, &env, &look, &wrong, &wrong_tls}) {
    EXPECT_EQ(r->DebugString().find(kValue), std::string::npos);
  }
  EXPECT_EQ(daemon_->log().find(kValue), std::string::npos);
  EXPECT_EQ(FilesHolding(daemon_->dir() + "/state", kValue), std::vector<std::string>{});
  EXPECT_EQ(FilesHolding(daemon_->dir() + "/run", kValue), std::vector<std::string>{});
  std::string list = Cli("secret list");
  EXPECT_NE(list.find("API_TOKEN"), std::string::npos) << list;
  EXPECT_EQ(list.find(kValue), std::string::npos) << list;
  std::string audit =
      Cli("audit tail -n 100000 --json --audit-dir " + daemon_->dir() + "/state/audit");
  EXPECT_EQ(audit.find(kValue), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat((daemon_->dir() + "/state/secrets.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((daemon_->dir() + "/state/keys/secrets.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
}

TEST_F(SecretsTest, SetListRemoveAndRefusals) {
  // Through the CLI: value on stdin, never printed.
  std::string out;
  ASSERT_EQ(RunShell(std::string("printf '%s\\n' ") + kValue + " | " + RAUHA_CLI_BIN +
                         " --socket " + daemon_->socket() + " secret set API_TOKEN",
                     &out),
            0)
      << out;
  EXPECT_NE(out.find("stored API_TOKEN"), std::string::npos) << out;
  EXPECT_EQ(out.find(kValue), std::string::npos);
  std::string list = Cli("secret list --json");
  EXPECT_NE(list.find("\"API_TOKEN\""), std::string::npos) << list;
  EXPECT_EQ(list.find(kValue), std::string::npos) << list;

  // Bad names and values: INVALID_ARGUMENT, nothing stored.
  for (const char* bad : {"1TOKEN", "MY-TOKEN", "", "PATH", "RAUHA_X", "A B"}) {
    auto st = SetSecret(bad, "v");
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
  }
  auto crlf = SetSecret("INJECT", "abc\r\nX-Evil: 1");
  EXPECT_EQ(crlf.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(crlf.error_message().find("X-Evil"), std::string::npos) << "the value is not echoed";
  EXPECT_EQ(SetSecret("EMPTY", "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SecretNames(), std::vector<std::string>{"API_TOKEN"});

  // Policies: a secret whose host the proxy may not reach, an unknown key, no hosts, a format
  // without {}: INVALID_ARGUMENT and no zone.
  const std::string head =
      "[network]\nmode = \"isolated\"\nallowed_hosts = [\"api.example.test\"]\n";
  for (const std::string& bad :
       {head + "[secrets.API_TOKEN]\nhosts = [\"other.example.test\"]\n",
        head + "[secrets.API_TOKEN]\nhosts = [\"api.example.test\"]\nheaders = \"X\"\n",
        head + "[secrets.API_TOKEN]\nheader = \"X-Key\"\n",
        head + "[secrets.API_TOKEN]\nhosts = [\"api.example.test\"]\nformat = \"Bearer\"\n",
        head + "[secrets.API_TOKEN]\nhosts = [\"api.example.test\"]\nheader = \"Host\"\n",
        head + "[secrets.9X]\nhosts = [\"api.example.test\"]\n"}) {
    auto st = CreateZone("bad", bad);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
  }
  zpb::ListZonesResponse zones;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->ListZones(&ctx, zpb::ListZonesRequest(), &zones).ok());
  }
  EXPECT_EQ(zones.zones_size(), 0);

  // A zone naming a secret that is not stored: its tasks are refused, saying how to fix it.
  ASSERT_TRUE(
      CreateZone("agent", head + "[secrets.MISSING]\nhosts = [\"api.example.test\"]\n").ok());
  spb::SandboxResult r;
  auto missing = Run("agent", {"/bin/true"}, &r);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(missing.error_message().find("rauha secret set MISSING"), std::string::npos)
      << missing.error_message();
  // The request's env may not set a secret's variable.
  ASSERT_TRUE(SetSecret("MISSING", "now-there").ok());
  {
    spb::RunSandboxRequest req;
    req.set_name("agent");
    req.add_command("/bin/true");
    (*req.mutable_env())["MISSING"] = "mine";
    grpc::ClientContext ctx;
    auto st = daemon_->Sandbox()->RunSandbox(&ctx, req, &r);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  }
  auto ok = RunIn("agent", {"/bin/sh", "-c", "echo ${MISSING%%-*}"});
  EXPECT_EQ(ok.stdout(), "rauha\n") << ok.DebugString();

  // rm: gone from the list; removing it again is NOT_FOUND; the zone's tasks are refused again.
  std::string rm = Cli("secret rm MISSING");
  EXPECT_NE(rm.find("removed MISSING"), std::string::npos) << rm;
  {
    secpb::DeleteSecretRequest req;
    req.set_name("MISSING");
    secpb::DeleteSecretResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(secrets_->DeleteSecret(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_EQ(SecretNames(), std::vector<std::string>{"API_TOKEN"});
  EXPECT_EQ(Run("agent", {"/bin/true"}, &r).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // The audit log has the changes with digests, not values.
  std::string audit =
      Cli("audit tail -n 100000 --json --audit-dir " + daemon_->dir() + "/state/audit");
  EXPECT_NE(audit.find("secret.set"), std::string::npos) << audit;
  EXPECT_NE(audit.find("secret.remove"), std::string::npos) << audit;
  EXPECT_EQ(audit.find(kValue), std::string::npos);
  EXPECT_EQ(audit.find("now-there"), std::string::npos);
}

// An upstream whose SYNs vanish (a DROP rule in the test's "internet" namespace): the proxy
// gives up after --egress-connect-timeout-ms, answers 504 and says so in an event. No timing is
// asserted: curl's own bound (30 s) is far above the proxy's (1.5 s).
TEST_F(SecretsTest, UpstreamThatNeverAcceptsGets504AndAnEvent) {
  std::string out;
  ASSERT_EQ(
      RunShell("ip netns exec " + internet_ns() + " iptables -A INPUT -p tcp --dport 81 -j DROP",
               &out),
      0)
      << out;
  ASSERT_TRUE(
      CreateZone("agent",
                 "[network]\nmode = \"isolated\"\nallowed_hosts = [\"api.example.test:81\"]\n")
          .ok());
  auto r = RunIn("agent", {kCurl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                           "30", "http://api.example.test:81/"});
  EXPECT_EQ(r.stdout(), "504") << r.DebugString();
  const spb::EnforcementEventSummary* e = nullptr;
  for (const auto& ev : r.enforcement_events()) {
    if (ev.layer() == "proxy" && ev.object() == "api.example.test:81") e = &ev;
  }
  ASSERT_NE(e, nullptr) << r.DebugString();
  EXPECT_NE(e->message().find("did not accept the connection within 1500 ms"), std::string::npos)
      << e->message();
}

// The zone's CA outlives rauhad: after a crash (the zone's shim and a task live on) and after a
// clean stop (the zone comes back), the zone's tasks get the very same CA, and TLS the proxy
// ends verifies through it. Before, every start made a new CA: the bundle changed and the
// surviving task's curl failed verification. At rest the CA key is sealed: no PEM private key
// in its directory or the run directory; deleting the zone removes it.
TEST_F(SecretsTest, ZoneCaSurvivesRestartsAndIsSealedAtRest) {
  ASSERT_NO_FATAL_FAILURE(StoreSecretsAndCreateAgent());
  const std::string zone_id = daemon_->ZoneId("agent");
  ASSERT_FALSE(zone_id.empty());
  // The zone's CA as its tasks see it: the end of their trust bundle.
  const std::vector<std::string> show_ca = {"/bin/sh", "-c",
                                            "sed -n '/rauha: this zone/,$p' $SSL_CERT_FILE"};
  auto call = [&](const std::string& path) {
    return RunIn("agent", {"/bin/sh", "-c",
                           std::string(kCurl) + " -sS https://api.example.test/" + path +
                               " -H \"Authorization: Bearer $API_TOKEN\""});
  };
  const std::string ca = RunIn("agent", show_ca).stdout();
  ASSERT_NE(ca.find("BEGIN CERTIFICATE"), std::string::npos) << ca;
  EXPECT_EQ(call("first").stdout(), "hello https api.example.test /first auth=ok\n");

  // A task that outlives the crash, and calls once the test says so.
  std::thread client = RunTaskThatOutlivesACrash(
      "while [ ! -e /workspace/go ]; do sleep 0.05; done; " + std::string(kCurl) +
      " -sS https://api.example.test/survivor; echo rc=$?");
  std::string task_id = daemon_->WaitForRunningTask();
  ASSERT_FALSE(task_id.empty());
  daemon_->Kill9();
  client.join();
  StartAgain();
  EXPECT_EQ(RunIn("agent", show_ca).stdout(), ca) << "a new CA after a crash";
  EXPECT_EQ(call("after-crash").stdout(), "hello https api.example.test /after-crash auth=ok\n");
  std::ofstream(repo_dir() + "/go").put('\n');
  {
    spb::SandboxResult result;
    ASSERT_NO_FATAL_FAILURE(WaitForTaskResult(task_id, &result));
    // Its TLS verifies through the CA it was given before the crash (what it sends is its own
    // business here: no header).
    EXPECT_EQ(result.stdout(), "hello https api.example.test /survivor auth=none\nrc=0\n")
        << result.DebugString();
  }

  // A clean stop: the zone stops with rauhad and comes back with the same CA.
  daemon_->Stop();
  StartAgain();
  EXPECT_EQ(RunIn("agent", show_ca).stdout(), ca) << "a new CA after a clean restart";
  EXPECT_EQ(call("after-stop").stdout(), "hello https api.example.test /after-stop auth=ok\n");

  // At rest: the certificate and the sealed key, 0600; no private key in clear anywhere.
  const std::string sealed = daemon_->dir() + "/state/egress-ca/" + zone_id + ".key.sealed";
  struct stat st {};
  ASSERT_EQ(::stat(sealed.c_str(), &st), 0) << sealed;
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // (The state dir's one PEM key is the audit log's signing key, state/audit/signing.key.)
  EXPECT_EQ(FilesHolding(daemon_->dir() + "/state/egress-ca", "PRIVATE KEY"),
            std::vector<std::string>{});
  EXPECT_EQ(FilesHolding(daemon_->dir() + "/run", "PRIVATE KEY"), std::vector<std::string>{});
  EXPECT_NE(ReadWholeFile(daemon_->dir() + "/state/egress-ca/" + zone_id + ".pem"), "");

  // Deleting the zone forgets its CA.
  zpb::DeleteZoneRequest del;
  del.set_name("agent");
  del.set_force(true);
  zpb::DeleteZoneResponse dresp;
  grpc::ClientContext dctx;
  ASSERT_TRUE(daemon_->Zones()->DeleteZone(&dctx, del, &dresp).ok());
  EXPECT_NE(::stat(sealed.c_str(), &st), 0) << sealed << " is left after the zone was deleted";
}

// A container (an image built here: busybox-static) in a zone with [secrets] gets what a
// sandbox task gets: its own placeholder, the proxy variables and the zone's CA over the
// image's bundle; the proxy injects the value into its request. An exec into it gets the same
// placeholder. Before, containers got the proxy variables only: the variable was unset and the
// request went without the secret.
TEST_F(SecretsTest, ContainerGetsPlaceholdersProxyAndTrust) {
  ASSERT_EQ(::access("/bin/busybox", X_OK), 0) << "needs busybox-static";
  ASSERT_NO_FATAL_FAILURE(StoreSecretsAndCreateAgent());
  RecordBusyboxImage();
  auto containers = cpb::ContainerService::NewStub(daemon_->Channel());
  const std::string script =
      "echo token=$API_TOKEN; echo proxy=$http_proxy; echo ca=$SSL_CERT_FILE; "
      "sed -n '/rauha: this zone/,$p' /etc/ssl/certs/ca-certificates.crt | sed -n 2p; "
      "wget -q -O - --header \"Authorization: Bearer $API_TOKEN\" http://api.example.test/box; "
      "while [ ! -e /tmp/done ]; do sleep 0.05; done";
  std::string id;
  ASSERT_NO_FATAL_FAILURE(StartBusyboxContainer(containers.get(), script, &id));
  // The log up to the server's answer (a condition with a generous deadline, not a sleep).
  std::string log;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (log.find("hello http") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    log.clear();
    cpb::ContainerLogsRequest req;
    req.set_container_id(id);
    grpc::ClientContext ctx;
    auto reader = containers->ContainerLogs(&ctx, req);
    cpb::ContainerLogEntry e;
    while (reader->Read(&e)) log += e.line() + "\n";
    (void)reader->Finish();
    if (log.find("hello http") == std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  const std::string ca_first_line = [&] {
    auto r = RunIn("agent",
                   {"/bin/sh", "-c", "sed -n '/rauha: this zone/,$p' $SSL_CERT_FILE | sed -n 2p"});
    return r.stdout();
  }();
  EXPECT_NE(log.find("token=rauha-placeholder-"), std::string::npos) << log;
  EXPECT_NE(log.find("proxy=http://127.0.0.1:3128\n"), std::string::npos) << log;
  EXPECT_NE(log.find("ca=/etc/ssl/certs/ca-certificates.crt\n"), std::string::npos) << log;
  ASSERT_NE(ca_first_line.find("BEGIN CERTIFICATE"), std::string::npos) << ca_first_line;
  EXPECT_NE(log.find(ca_first_line), std::string::npos) << "the zone's CA is not in the "
                                                           "container's bundle:\n"
                                                        << log;
  EXPECT_NE(log.find("hello http api.example.test /box auth=ok"), std::string::npos) << log;
  EXPECT_EQ(log.find(kValue), std::string::npos);
  EXPECT_NE(ReadWholeFile(dir() + "/seen.log")
                .find(std::string("http api.example.test /box Bearer ") + kValue + "|"),
            std::string::npos);

  // An exec into it: the same placeholder, which the proxy still replaces.
  std::string token = log.substr(log.find("token=") + 6);
  token = token.substr(0, token.find('\n'));
  EXPECT_EQ(ExecIn(containers.get(), id,
                   "echo $API_TOKEN; wget -q -O - --header \"Authorization: Bearer $API_TOKEN\" "
                   "http://api.example.test/exec; echo > /tmp/done"),
            token + "\nhello http api.example.test /exec auth=ok\n");
  cpb::WaitContainerResponse waited;
  EXPECT_TRUE(WaitContainer(containers.get(), id, &waited).ok());
  EXPECT_TRUE(DeleteContainer(containers.get(), id).ok());
}

// A task that outlives a rauhad crash keeps its secrets: the new rauhad restores its grant
// from the secrets database (its placeholder sealed there, never the value, which is read from
// the store again), so the proxy still injects the value for the secret's host, over TLS and
// plain HTTP, and the zone still never sees it. Once the task has ended nothing of the grant is
// left in SQLite. Before, the new rauhad did not know the placeholder: the server got it
// unreplaced.
TEST_F(SecretsTest, GrantOutlivesACrashAndEndsWithItsTask) {
  ASSERT_NO_FATAL_FAILURE(StoreSecretsAndCreateAgent());
  const std::string db = daemon_->dir() + "/state/secrets.db";
  std::thread client = RunTaskThatOutlivesACrash(
      "echo $API_TOKEN > /workspace/token; while [ ! -e /workspace/go ]; do sleep 0.05; done; " +
      std::string(kCurl) +
      " -sS https://api.example.test/survivor -H \"Authorization: Bearer $API_TOKEN\"; " + kCurl +
      " -sS http://api.example.test/survivor-plain -H \"Authorization: Bearer $API_TOKEN\"; "
      "echo rc=$?");
  std::string task_id = WaitForRunningTask();
  ASSERT_FALSE(task_id.empty());
  std::string token;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       token.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline;) {
    token = ReadWholeFile(repo_dir() + "/token");
    if (token.find('\n') == std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  token = token.substr(0, token.find('\n'));
  ASSERT_EQ(token.rfind("rauha-placeholder-", 0), 0u) << token;
  // Stored while the task runs: one grant per secret, the placeholder sealed (not in any file
  // rauhad keeps, nor in its log).
  EXPECT_EQ(SqlInt(db, "SELECT count(*) FROM grants WHERE owner = '" + task_id + "'"), 2);
  EXPECT_EQ(FilesHolding(daemon_->dir() + "/state", token), std::vector<std::string>{});
  EXPECT_EQ(FilesHolding(daemon_->dir() + "/run", token), std::vector<std::string>{});
  EXPECT_EQ(daemon_->log().find(token), std::string::npos);

  daemon_->Kill9();
  client.join();
  StartAgain();
  std::ofstream(repo_dir() + "/go").put('\n');
  spb::SandboxResult result;
  ASSERT_NO_FATAL_FAILURE(WaitForTaskResult(task_id, &result));
  EXPECT_EQ(result.stdout(),
            "hello https api.example.test /survivor auth=ok\nhello http api.example.test "
            "/survivor-plain auth=ok\nrc=0\n")
      << result.DebugString();
  for (const auto& e : result.enforcement_events()) EXPECT_NE(e.action(), "secret_misuse");
  EXPECT_EQ(result.DebugString().find(kValue), std::string::npos);
  std::string seen = ReadWholeFile(dir() + "/seen.log");
  EXPECT_NE(seen.find(std::string("https api.example.test /survivor Bearer ") + kValue + "|"),
            std::string::npos)
      << seen;
  EXPECT_NE(seen.find(std::string("http api.example.test /survivor-plain Bearer ") + kValue + "|"),
            std::string::npos)
      << seen;
  // The task has ended: its grant is gone from the database (and nothing else holds one).
  EXPECT_EQ(SqlInt(db, "SELECT count(*) FROM grants"), 0);
  EXPECT_EQ(daemon_->log().find(token), std::string::npos);
  EXPECT_EQ(daemon_->log().find(kValue), std::string::npos);
}

// `rauha secret rm` while a task holds the secret's placeholder ends that grant, in the running
// proxy (the task's next request carries the placeholder unreplaced) and in the database: after
// a crash the new rauhad does not bring the removed secret back for the task,
// not even when a secret of the same name was set again meanwhile (a new secret, for new
// tasks); the placeholder passes unreplaced. The task's other secret is still restored.
TEST_F(SecretsTest, RemovedSecretIsNotBroughtBackAfterACrash) {
  ASSERT_NO_FATAL_FAILURE(StoreSecretsAndCreateAgent());
  const std::string db = daemon_->dir() + "/state/secrets.db";
  std::thread client = RunTaskThatOutlivesACrash(
      "while [ ! -e /workspace/go1 ]; do sleep 0.05; done; " + std::string(kCurl) +
      " -sS https://api.example.test/before-crash -H \"Authorization: Bearer $API_TOKEN\"; "
      "echo rc=$?; touch /workspace/did1; while [ ! -e /workspace/go ]; do sleep 0.05; done; " +
      kCurl +
      " -sS https://api.example.test/after-rm -H \"Authorization: Bearer $API_TOKEN\"; "
      "echo rc=$?");
  std::string task_id = WaitForRunningTask();
  ASSERT_FALSE(task_id.empty());
  const std::string owner = "SELECT count(*) FROM grants WHERE owner = '" + task_id + "'";
  ASSERT_EQ(SqlInt(db, owner), 2);
  std::string rm = Cli("secret rm API_TOKEN");
  EXPECT_NE(rm.find("removed API_TOKEN"), std::string::npos) << rm;
  EXPECT_EQ(SqlInt(db, owner + " AND name = 'API_TOKEN'"), 0);
  EXPECT_EQ(SqlInt(db, owner + " AND name = 'OTHER_TOKEN'"), 1);
  ASSERT_TRUE(SetSecret("API_TOKEN", "a-new-value-0001").ok());
  // Ended in the running proxy too: the task's next request carries its placeholder unreplaced.
  std::ofstream(repo_dir() + "/go1").put('\n');
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       ::access((repo_dir() + "/did1").c_str(), F_OK) != 0 &&
       std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(ReadWholeFile(dir() + "/seen.log")
                .find("https api.example.test /before-crash Bearer rauha-placeholder-"),
            std::string::npos)
      << ReadWholeFile(dir() + "/seen.log");

  daemon_->Kill9();
  client.join();
  StartAgain();
  EXPECT_EQ(SqlInt(db, owner), 1) << "the other secret's grant is restored";
  std::ofstream(repo_dir() + "/go").put('\n');
  spb::SandboxResult result;
  ASSERT_NO_FATAL_FAILURE(WaitForTaskResult(task_id, &result));
  EXPECT_EQ(result.stdout(),
            "hello https api.example.test /before-crash auth=placeholder\nrc=0\n"
            "hello https api.example.test /after-rm auth=placeholder\nrc=0\n")
      << result.DebugString();
  std::string seen = ReadWholeFile(dir() + "/seen.log");
  EXPECT_NE(seen.find("https api.example.test /after-rm Bearer rauha-placeholder-"),
            std::string::npos)
      << seen;
  EXPECT_EQ(seen.find("a-new-value-0001"), std::string::npos) << seen;
  EXPECT_EQ(SqlInt(db, "SELECT count(*) FROM grants"), 0);
}

// A container that outlives a rauhad crash keeps its grant as a sandbox task does: the new
// rauhad restores it with the container, so the proxy injects the value for the container's
// placeholder again and an exec gets the same placeholder; once the container has exited
// nothing of the grant is left in SQLite.
TEST_F(SecretsTest, ContainerGrantOutlivesACrash) {
  ASSERT_EQ(::access("/bin/busybox", X_OK), 0) << "needs busybox-static";
  ASSERT_NO_FATAL_FAILURE(StoreSecretsAndCreateAgent());
  RecordBusyboxImage();
  const std::string db = daemon_->dir() + "/state/secrets.db";
  auto containers = cpb::ContainerService::NewStub(daemon_->Channel());
  std::string id;
  ASSERT_NO_FATAL_FAILURE(StartBusyboxContainer(
      containers.get(), "while [ ! -e /tmp/done ]; do sleep 0.05; done", &id));
  const std::string token = ExecIn(containers.get(), id, "echo $API_TOKEN");
  ASSERT_EQ(token.rfind("rauha-placeholder-", 0), 0u) << token;
  EXPECT_EQ(SqlInt(db, "SELECT count(*) FROM grants WHERE owner = '" + id + "'"), 2);

  daemon_->Kill9();
  StartAgain();
  containers = cpb::ContainerService::NewStub(daemon_->Channel());
  EXPECT_EQ(ExecIn(containers.get(), id,
                   "echo $API_TOKEN; wget -q -O - --header \"Authorization: Bearer $API_TOKEN\" "
                   "http://api.example.test/box-after; echo $SSL_CERT_FILE"),
            token + "hello http api.example.test /box-after auth=ok\n" +
                "/etc/ssl/certs/ca-certificates.crt\n");
  EXPECT_NE(ReadWholeFile(dir() + "/seen.log")
                .find(std::string("http api.example.test /box-after Bearer ") + kValue + "|"),
            std::string::npos);
  (void)ExecIn(containers.get(), id, "touch /tmp/done");
  {
    cpb::WaitContainerResponse resp;
    auto st = WaitContainer(containers.get(), id, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.exit_code(), 0);
  }
  EXPECT_EQ(SqlInt(db, "SELECT count(*) FROM grants"), 0);
  EXPECT_TRUE(DeleteContainer(containers.get(), id).ok());
}

}  // namespace
}  // namespace rauha::testing
