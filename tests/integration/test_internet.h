// "The internet" for egress tests, all on this machine: rauhad runs in a network namespace the
// test creates, routed over a veth pair (a /30) to one more namespace that holds the test's
// HTTP (:80) and HTTPS (:443) servers, with a certificate from a CA the test makes with openssl.
// Names resolve only from a hosts file the test writes (--egress-hosts): no lookup and no packet
// leaves the machine. TearDown stops the servers and rauhad (checking that nothing of rauhad's is
// left) and deletes both namespaces.
//
// A suite derives from TestInternetTest and says in its constructor what differs: its
// namespace prefix and /30, the names the server certificate covers, the hosts file, the server
// script and rauhad's extra flags.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "rauha-common/fd.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/registry_fixture.h"  // ReadWholeFile

namespace rauha::testing {

// Runs `cmd` through /bin/sh with stderr joined to stdout; its output in `out`. Returns
// pclose()'s status (0 = success).
int RunShell(const std::string& cmd, std::string* out = nullptr);

// A Python HTTP+HTTPS server: argv[1] the address, argv[2] the certificate, argv[3] its key.
// Answers a GET with "hello <scheme> <Host> <path>\n", a GET of /bytes/N with
// HelloServerBytes(N), a POST with "posted <bytes> <sha256 hex>\n" of its body;
// closes each connection after its answer; prints "ready" once both listen.
extern const char kHelloServer[];
// N bytes, byte i being i % 256.
std::string HelloServerBytes(size_t n);

struct TestInternetConfig {
  // Namespaces are "<prefix>-<pid>-<n>" (rauhad's) and that plus "-net" (the internet's).
  std::string ns_prefix = "rauha-internet";
  // The two ends of the /30 between them.
  std::string rauhad_address = "172.31.254.1";
  std::string internet_address = "172.31.254.2";
  // Subject of the test CA, and the DNS names the server certificate covers (the first is its
  // CN too).
  std::string ca_subject = "/CN=rauha-test-ca";
  std::vector<std::string> server_names = {"api.example.test"};
  // The hosts file rauhad resolves from (--egress-hosts), verbatim.
  std::string hosts;
  // The servers: a Python script run in the internet namespace as
  // `python3 script <internet_address> <cert> <key> <server_args...>`; it prints "ready" on
  // stdout once it serves. In server_args and daemon_args "@DIR@" stands for dir().
  std::string server_script = kHelloServer;
  std::vector<std::string> server_args;
  // Flags added to rauhad's after --egress-hosts <hosts file>.
  std::vector<std::string> daemon_args;
};

class TestInternetTest : public ::testing::Test {
 protected:
  explicit TestInternetTest(TestInternetConfig config) : config_(std::move(config)) {}

  // Namespaces and veth, certificates, hosts file, servers, then rauhad in its namespace.
  void SetUp() override;
  void TearDown() override;

  // The test's working directory (below the daemon's); the zone's repo is repo_dir().
  const std::string& dir() const { return dir_; }
  std::string repo_dir() const { return dir_ + "/repo"; }
  // The test CA's certificate: repo_dir()/ca.pem, so /workspace/ca.pem inside a sandbox task.
  std::string ca_path() const { return repo_dir() + "/ca.pem"; }
  std::string hosts_path() const { return dir_ + "/hosts"; }
  // The namespace the servers run in ("ip netns exec <it> ..." to change it, e.g. a DROP rule).
  const std::string& internet_ns() const { return internet_; }
  const TestInternetConfig& config() const { return config_; }

  // A zone with exactly this policy.
  grpc::Status CreateZoneWithPolicy(const std::string& name, const std::string& policy_toml);
  // A sandbox task in `zone` on repo_dir() (60 s timeout); its status in the return value.
  grpc::Status Run(const std::string& zone, const std::vector<std::string>& command,
                   rauha::sandbox::v1::SandboxResult* result);
  // As Run, the call expected to succeed.
  rauha::sandbox::v1::SandboxResult RunIn(const std::string& zone,
                                          const std::vector<std::string>& command);

  // The first enforcement event of layer "proxy" about `object` (host:port), or nullptr.
  static const rauha::sandbox::v1::EnforcementEventSummary* ProxyEvent(
      const rauha::sandbox::v1::SandboxResult& r, const std::string& object);

  // One integer a query of one of rauhad's SQLite files answers (read-only, rauhad may run):
  // e.g. how many rows. -1 when the query fails (the message goes to the test's log).
  static int64_t SqlInt(const std::string& db_path, const std::string& sql);
  // The running task's id once ListTasks shows one with its pid ("" after 60 s).
  std::string WaitForRunningTask();

  std::unique_ptr<Daemon> daemon_;

 private:
  void CreateNamespaces();
  void MakeCertificates();
  void StartServer();
  void StopServer();

  TestInternetConfig config_;
  std::string ns_, internet_, dir_;
  pid_t server_pid_ = -1;
  UniqueFd server_out_;
};

}  // namespace rauha::testing
