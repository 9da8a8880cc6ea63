// Host paths a request names (repo_path) and rauhad's own files: what a zone can reach of the
// host. A real rauhad per test; each refusal is checked to change nothing.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

using HostPathTest = DaemonTest;

int ZoneCount(Daemon& d) {
  zpb::ListZonesResponse list;
  grpc::ClientContext ctx;
  EXPECT_TRUE(d.Zones()->ListZones(&ctx, {}, &list).ok());
  return list.zones_size();
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// The drill of issue 8: `--repo-path /` read /etc/shadow and wrote the host's /tmp.
TEST_F(HostPathTest, RepoPathCannotBeTheHostsRootOrASystemDirectory) {
  for (const char* path : {"/", "/etc", "/var/lib", "/run", "/proc", "/usr", "/var"}) {
    spb::RunSandboxRequest req;
    req.set_repo_path(path);
    grpc::Status st;
    auto r = Run({"/bin/sh", "-c", "cat /workspace/etc/shadow; touch /workspace/tmp/x"}, req, &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << path << ": " << st.error_message() << " / task status " << r.status();
    EXPECT_NE(st.error_message().find("repo_path"), std::string::npos) << st.error_message();
  }
  EXPECT_EQ(ZoneCount(*daemon_), 0) << "a refused request creates no zone";
}

// A repo path holding rauhad's socket let a task create a privileged zone through it.
TEST_F(HostPathTest, RepoPathCannotHoldRauhadsSocketOrDirectories) {
  const std::string& dir = daemon_->dir();  // holds the socket, the run and the state dir
  for (const std::string& path : {dir, dir + "/run", dir + "/state", dir + "/run/zones"}) {
    if (!std::filesystem::is_directory(path)) continue;
    spb::RunSandboxRequest req;
    req.set_repo_path(path);
    grpc::Status st;
    Run({"/bin/true"}, req, &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << path << ": " << st.error_message();
  }
  EXPECT_EQ(ZoneCount(*daemon_), 0);
}

TEST_F(HostPathTest, RepoPathThroughASymlinkIsRefused) {
  std::string repo = daemon_->dir() + "/repo";
  std::filesystem::create_directories(repo + "/sub");
  std::filesystem::create_directory_symlink(repo, daemon_->dir() + "/repo-link");
  std::filesystem::create_directory_symlink("/etc", repo + "/etc-link");
  for (const std::string& path :
       {daemon_->dir() + "/repo-link", daemon_->dir() + "/repo-link/sub", repo + "/etc-link"}) {
    spb::RunSandboxRequest req;
    req.set_repo_path(path);
    grpc::Status st;
    Run({"/bin/true"}, req, &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << path << ": " << st.error_message();
    EXPECT_NE(st.error_message().find("symlink"), std::string::npos) << st.error_message();
  }
  // The real path works.
  spb::RunSandboxRequest ok;
  ok.set_repo_path(repo);
  auto r = Run({"/bin/sh", "-c", "ls /workspace"}, ok);
  EXPECT_EQ(r.status(), "succeeded") << r.error();
  EXPECT_EQ(r.stdout(), "etc-link\nsub\n");
  EXPECT_EQ(ZoneCount(*daemon_), 0);
}

TEST_F(HostPathTest, PrivilegedZoneMayExposeAnyDirectory) {
  ASSERT_TRUE(CreateZone("priv", "", "privileged").ok());
  spb::RunSandboxRequest req;
  req.set_name("priv");
  req.set_repo_path("/etc");
  auto r = Run({"/bin/sh", "-c", "test -f /workspace/hostname && echo seen"}, req);
  EXPECT_EQ(r.status(), "succeeded") << r.error() << r.stderr();
  EXPECT_EQ(r.stdout(), "seen\n");
  zpb::DeleteZoneRequest del;
  del.set_name("priv");
  del.set_force(true);
  zpb::DeleteZoneResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &resp).ok());
}

// /proc/net/unix lists the unix sockets of the reader's network namespace with their paths;
// the shim used to create its socket inside the zone's namespace, so every task saw the shim's
// host path (and so rauhad's run dir).
TEST_F(HostPathTest, ZoneSeesNoSocketOfRauhadOrItsShims) {
  auto r = Run({"/bin/cat", "/proc/net/unix"});
  ASSERT_EQ(r.status(), "succeeded") << r.error() << r.stderr();
  EXPECT_NE(r.stdout().find("Path"), std::string::npos) << "not /proc/net/unix: " << r.stdout();
  EXPECT_EQ(r.stdout().find(daemon_->dir()), std::string::npos) << r.stdout();
  EXPECT_EQ(r.stdout().find("shim.sock"), std::string::npos) << r.stdout();
}

class RepoRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      if (RequireAll()) FAIL() << "integration tests need root";
      GTEST_SKIP() << "integration tests need root";
    }
    char tmpl[] = "/tmp/rauha-reporoot-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    std::filesystem::create_directories(base_ + "/repos/project");
    std::filesystem::create_directories(base_ + "/elsewhere");
    daemon_ = std::make_unique<Daemon>(std::vector<std::string>{"--repo-root", base_ + "/repos"});
    daemon_->Start();
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->Stop();
      EXPECT_TRUE(daemon_->LeftoverProcesses().empty());
      EXPECT_TRUE(daemon_->LeftoverMounts().empty());
      EXPECT_TRUE(daemon_->LeftoverCgroups().empty());
      daemon_.reset();
    }
    std::error_code ec;
    if (!base_.empty()) std::filesystem::remove_all(base_, ec);
  }
  std::string base_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(RepoRootTest, RepoPathMustLieBeneathARepoRoot) {
  spb::RunSandboxRequest inside;
  inside.add_command("/bin/true");
  inside.set_repo_path(base_ + "/repos/project");
  spb::SandboxResult result;
  {
    grpc::ClientContext ctx;
    grpc::Status st = daemon_->Sandbox()->RunSandbox(&ctx, inside, &result);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(result.status(), "succeeded") << result.error();
  }
  spb::RunSandboxRequest outside = inside;
  outside.set_repo_path(base_ + "/elsewhere");
  grpc::ClientContext ctx;
  grpc::Status st = daemon_->Sandbox()->RunSandbox(&ctx, outside, &result);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_NE(st.error_message().find("--repo-root"), std::string::npos) << st.error_message();
}

// `--socket /tmp/x.sock` made /tmp 0700: rauhad chmod-ed directories it did not create.
TEST(DaemonDirectoriesTest, RauhadChangesNoDirectoryItDidNotCreate) {
  if (::geteuid() != 0) {
    if (RequireAll()) FAIL() << "integration tests need root";
    GTEST_SKIP() << "integration tests need root";
  }
  Daemon daemon;
  std::string shared = daemon.dir() + "/shared";  // stands for /tmp or /run
  std::string run = daemon.dir() + "/operator-run";
  ASSERT_EQ(::mkdir(shared.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(run.c_str(), 0750), 0);
  ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);
  ASSERT_EQ(::chmod(run.c_str(), 0750), 0);
  daemon.set_paths(shared + "/rauhad.sock", run, daemon.dir() + "/new/state");
  daemon.Start();
  EXPECT_EQ(ModeOf(shared), 01777u) << "the socket's directory was changed";
  EXPECT_EQ(ModeOf(run), 0750u) << "the existing run dir was changed";
  EXPECT_EQ(ModeOf(daemon.dir() + "/new"), 0755u) << "a parent rauhad created";
  EXPECT_EQ(ModeOf(daemon.dir() + "/new/state"), 0700u) << "the state dir rauhad created";
  EXPECT_EQ(ModeOf(shared + "/rauhad.sock") & 0777, 0600u);
  daemon.Stop();
  EXPECT_TRUE(daemon.LeftoverProcesses().empty());
  EXPECT_TRUE(daemon.LeftoverCgroups().empty());
}

// "The same rules for every other host path a request can name" (issue 8, item 1): output_dir
// was checked by its name only, so a bind mount of rauhad's state dir (as of /etc) elsewhere
// passed, and the shim wrote root-owned files with the task's content into it. On the old main
// this request ran and stdout appeared in the state dir.
TEST_F(HostPathTest, OutputDirIsCheckedByWhatItIsNotByItsName) {
  const std::string alias = daemon_->dir() + "/state-alias";
  ASSERT_EQ(::mkdir(alias.c_str(), 0700), 0);
  ASSERT_EQ(::mount((daemon_->dir() + "/state").c_str(), alias.c_str(), nullptr, MS_BIND, nullptr),
            0)
      << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{alias};
  spb::RunSandboxRequest req;
  req.set_output_dir(alias);
  grpc::Status st;
  Run({"/bin/echo", "written as root"}, req, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_NE(
      st.error_message().find("output_dir " + alias + " is refused: it is rauhad's directory"),
      std::string::npos)
      << st.error_message();
  EXPECT_FALSE(std::filesystem::exists(daemon_->dir() + "/state/stdout"));
  EXPECT_EQ(ZoneCount(*daemon_), 0) << "nothing was created";
  req.set_output_dir("/tmp");
  Run({"/bin/true"}, req, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
}

}  // namespace
}  // namespace rauha::testing
