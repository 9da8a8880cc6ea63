// rauha.process.v1 (what containerd-shim-rauha-v2 uses) against a real rauhad: a process on a
// root the caller mounted, stdio opened from host paths, exact exit codes and signals, and
// bad requests refused with the right code, changing nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "rauha/v1/process.grpc.pb.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;
namespace pb = rauha::process::v1;

class ProcessServiceTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    ASSERT_TRUE(CreateZone("pod1").ok());
    char tmpl[] = "/tmp/rauha-proc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // A root holding only a static busybox, like a container image's.
    fs::create_directories(dir_ + "/rootfs/bin");
    fs::copy_file("/bin/busybox", dir_ + "/rootfs/bin/busybox");
    stub_ = pb::ProcessService::NewStub(daemon_->Channel());
  }
  void TearDown() override {
    fs::remove_all(dir_);
    DaemonTest::TearDown();
  }
  pb::StartProcessRequest Request(const std::string& id, std::vector<std::string> args) {
    pb::StartProcessRequest r;
    r.set_zone_name("pod1");
    r.set_process_id(id);
    r.set_rootfs(dir_ + "/rootfs");
    for (auto& a : args) r.add_args(a);
    r.add_env("PATH=/bin");
    return r;
  }
  grpc::Status Start(const pb::StartProcessRequest& r, uint32_t* pid = nullptr) {
    grpc::ClientContext ctx;
    pb::StartProcessResponse resp;
    auto s = stub_->StartProcess(&ctx, r, &resp);
    if (pid) *pid = resp.pid();
    return s;
  }
  pb::WaitProcessResponse Wait(const std::string& id) {
    grpc::ClientContext ctx;
    pb::WaitProcessRequest r;
    r.set_process_id(id);
    pb::WaitProcessResponse resp;
    EXPECT_TRUE(stub_->WaitProcess(&ctx, r, &resp).ok());
    return resp;
  }
  grpc::Status Delete(const std::string& id) {
    grpc::ClientContext ctx;
    pb::DeleteProcessRequest r;
    r.set_process_id(id);
    pb::DeleteProcessResponse resp;
    return stub_->DeleteProcess(&ctx, r, &resp);
  }
  grpc::Status Kill(const std::string& id, int signal) {
    grpc::ClientContext ctx;
    pb::KillProcessRequest r;
    r.set_process_id(id);
    r.set_signal(signal);
    pb::KillProcessResponse resp;
    return stub_->KillProcess(&ctx, r, &resp);
  }
  std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string dir_;
  std::unique_ptr<pb::ProcessService::Stub> stub_;
};

TEST_F(ProcessServiceTest, RunsOnTheGivenRootWithStdioFromHostPathsAndExactExit) {
  auto r = Request("p1", {"/bin/busybox", "sh", "-c", "ls /; echo to-stderr >&2; exit 3"});
  std::ofstream(dir_ + "/out");
  std::ofstream(dir_ + "/err");
  r.set_stdout_path(dir_ + "/out");
  r.set_stderr_path(dir_ + "/err");
  uint32_t pid = 0;
  ASSERT_TRUE(Start(r, &pid).ok());
  EXPECT_GT(pid, 0u);
  auto end = Wait("p1");
  ASSERT_TRUE(end.has_exit_code()) << end.DebugString();
  EXPECT_EQ(end.exit_code(), 3);
  EXPECT_GT(end.exited_at_unix_nano(), 0);
  std::string listing = Read(dir_ + "/out");
  EXPECT_NE(listing.find("bin\n"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("usr"), std::string::npos)
      << "the host's view, not the given root: " << listing;
  EXPECT_EQ(Read(dir_ + "/err"), "to-stderr\n");
  EXPECT_TRUE(Delete("p1").ok());
  EXPECT_EQ(Delete("p1").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ProcessServiceTest, KillDeliversTheSignalAndDeleteWaitsForTheEnd) {
  ASSERT_TRUE(Start(Request("sleeper", {"/bin/busybox", "sleep", "1000"})).ok());
  EXPECT_EQ(Delete("sleeper").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(Kill("sleeper", SIGTERM).ok());
  auto end = Wait("sleeper");
  ASSERT_TRUE(end.has_signal()) << end.DebugString();
  EXPECT_EQ(end.signal(), SIGTERM);
  EXPECT_EQ(Kill("sleeper", SIGKILL).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(Delete("sleeper").ok());
}

TEST_F(ProcessServiceTest, BadRequestsAreRefusedAndChangeNothing) {
  EXPECT_EQ(Start(Request("../x", {"/bin/busybox", "true"})).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Start(Request("p", {})).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto relative = Request("p", {"/bin/busybox", "true"});
  relative.set_rootfs("rootfs");
  EXPECT_EQ(Start(relative).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto no_zone = Request("p", {"/bin/busybox", "true"});
  no_zone.set_zone_name("nope");
  EXPECT_EQ(Start(no_zone).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Kill("p", SIGKILL).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Kill("p", 0).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Delete("p").error_code(), grpc::StatusCode::NOT_FOUND);
  // Nothing was started: the id is free, the zone has no task.
  ASSERT_TRUE(Start(Request("p", {"/bin/busybox", "true"})).ok());
  EXPECT_EQ(Wait("p").exit_code(), 0);
  EXPECT_TRUE(Delete("p").ok());
}

TEST_F(ProcessServiceTest, JoinRunsInTheProcessRootWithTheSpecsCapabilitiesAndRlimits) {
  ASSERT_TRUE(Start(Request("main", {"/bin/busybox", "sleep", "1000"})).ok());
  // The exec: in main's root (a file only main's root has) and pid namespace, with only the
  // capabilities both the spec and the zone's policy allow, and the spec's rlimit.
  std::ofstream(dir_ + "/rootfs/marker") << "in-the-root";
  pb::StartProcessRequest r = Request(
      "main.x1",
      {"/bin/busybox", "sh", "-c", "cat /marker; echo; grep CapEff /proc/self/status; ulimit -n"});
  r.clear_rootfs();
  r.set_join_process("main");
  r.mutable_capabilities()->add_kept("CAP_CHOWN");
  r.mutable_capabilities()->add_kept("CAP_SYS_ADMIN");  // the default policy does not allow it
  auto* nofile = r.add_rlimits();
  nofile->set_type("RLIMIT_NOFILE");
  nofile->set_soft(77);
  nofile->set_hard(88);
  std::ofstream(dir_ + "/out");
  r.set_stdout_path(dir_ + "/out");
  ASSERT_TRUE(Start(r).ok());
  auto end = Wait("main.x1");
  EXPECT_EQ(end.exit_code(), 0) << end.DebugString();
  std::string out = Read(dir_ + "/out");
  EXPECT_NE(out.find("in-the-root\n"), std::string::npos) << out;
  // CAP_CHOWN is bit 0: kept; CAP_SYS_ADMIN (bit 21) is not.
  EXPECT_NE(out.find("CapEff:\t0000000000000001\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\n77\n"), std::string::npos) << out;
  EXPECT_TRUE(Delete("main.x1").ok());
  // Joining what does not run, or with a root of its own, is refused and starts nothing.
  auto no_target = Request("x2", {"/bin/busybox", "true"});
  no_target.clear_rootfs();
  no_target.set_join_process("nosuch");
  EXPECT_EQ(Start(no_target).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  auto with_root = Request("x2", {"/bin/busybox", "true"});
  with_root.set_join_process("main");
  EXPECT_EQ(Start(with_root).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto bad_rlimit = Request("x2", {"/bin/busybox", "true"});
  bad_rlimit.add_rlimits()->set_type("RLIMIT_NOPE");
  EXPECT_EQ(Start(bad_rlimit).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Delete("x2").error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Kill("main", SIGKILL).ok());
  Wait("main");
  EXPECT_TRUE(Delete("main").ok());
}

}  // namespace
}  // namespace rauha::testing
