// rauhad's checks of a containerd process's binds (rauhad/process_mounts.h): runtime state is
// pinned by identity and never reached through a symlink; destinations stay out of the zone's
// own /proc, /sys and /dev; other host paths meet the zone's host-path rules.
#include "rauhad/process_mounts.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace rauha {
namespace {

namespace fs = std::filesystem;
namespace ppb = rauha::process::v1;

class ProcessMountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-pmounts-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/sandbox");
    std::ofstream(dir_ + "/sandbox/hosts") << "127.0.0.1 localhost\n";
    ASSERT_EQ(::symlink((dir_ + "/sandbox").c_str(), (dir_ + "/link").c_str()), 0);
  }
  void TearDown() override { fs::remove_all(dir_); }

  ppb::StartProcessRequest With(const std::string& source, const std::string& dest,
                                bool runtime_state) {
    ppb::StartProcessRequest req;
    auto* m = req.add_mounts();
    m->set_source(source);
    m->set_destination(dest);
    m->set_readonly(true);
    m->set_runtime_state(runtime_state);
    return req;
  }

  ZoneView zone_;
  std::string dir_;
};

TEST_F(ProcessMountsTest, RuntimeStateFileIsPinnedByIdentity) {
  auto mounts = ProcessMounts(zone_, With(dir_ + "/sandbox/hosts", "/etc/hosts", true), {});
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  ASSERT_EQ(mounts->size(), 1u);
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/sandbox/hosts").c_str(), &st), 0);
  EXPECT_EQ((*mounts)[0].source_dev, static_cast<uint64_t>(st.st_dev));
  EXPECT_EQ((*mounts)[0].source_ino, static_cast<uint64_t>(st.st_ino));
  EXPECT_TRUE((*mounts)[0].readonly);
  EXPECT_EQ((*mounts)[0].target, "/etc/hosts");
}

TEST_F(ProcessMountsTest, NeverThroughASymlink) {
  auto mounts = ProcessMounts(zone_, With(dir_ + "/link/hosts", "/etc/hosts", true), {});
  EXPECT_EQ(mounts.status().code(), absl::StatusCode::kInvalidArgument) << mounts.status();
  EXPECT_NE(mounts.status().message().find("symlink"), std::string::npos) << mounts.status();
}

TEST_F(ProcessMountsTest, DestinationsOutsideTheZonesOwnDirs) {
  for (const char* dest :
       {"/proc/sys", "/sys", "/dev/termination-log", "/", "etc/hosts", "/etc/../hosts"}) {
    auto mounts = ProcessMounts(zone_, With(dir_ + "/sandbox/hosts", dest, true), {});
    EXPECT_EQ(mounts.status().code(), absl::StatusCode::kInvalidArgument) << dest;
  }
  // /dev/shm takes a directory only.
  EXPECT_EQ(
      ProcessMounts(zone_, With(dir_ + "/sandbox/hosts", "/dev/shm", true), {}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ProcessMounts(zone_, With(dir_ + "/sandbox", "/dev/shm", true), {}).ok());
}

// Kubelet's termination message file: a regular file of one link, at /dev/termination-log
// only; pinned to the object checked.
TEST_F(ProcessMountsTest, TerminationLogIsARegularFileOfOneLinkAtItsPlace) {
  std::string file = dir_ + "/termination-log";
  std::ofstream(file).flush();
  auto with = [&](const std::string& source, const std::string& dest) {
    ppb::StartProcessRequest req = With(source, dest, false);
    req.mutable_mounts(0)->set_readonly(false);
    req.mutable_mounts(0)->set_termination_log(true);
    return req;
  };
  auto ok = ProcessMounts(zone_, with(file, "/dev/termination-log"), {});
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ((*ok)[0].target, "/dev/termination-log");
  EXPECT_FALSE((*ok)[0].readonly);
  struct stat st;
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ((*ok)[0].source_ino, static_cast<uint64_t>(st.st_ino));
  // Elsewhere, a directory, a second link, through a symlink: refused.
  EXPECT_EQ(ProcessMounts(zone_, with(file, "/etc/passwd"), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ProcessMounts(zone_, with(dir_ + "/sandbox", "/dev/termination-log"), {}).status().code(),
      absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(::link(file.c_str(), (dir_ + "/second").c_str()), 0);
  auto linked = ProcessMounts(zone_, with(file, "/dev/termination-log"), {});
  EXPECT_EQ(linked.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(linked.status().message().find("one link"), std::string::npos) << linked.status();
  EXPECT_FALSE(ProcessMounts(zone_, with(dir_ + "/link/hosts", "/dev/termination-log"), {}).ok());
}

TEST_F(ProcessMountsTest, HostPathsFollowTheZonesRules) {
  auto etc = ProcessMounts(zone_, With("/etc", "/hostetc", false), {});
  EXPECT_EQ(etc.status().code(), absl::StatusCode::kPermissionDenied) << etc.status();
  EXPECT_NE(etc.status().message().find("mounts[0].source"), std::string::npos) << etc.status();
  // A project directory of its own is fine.
  EXPECT_TRUE(ProcessMounts(zone_, With(dir_ + "/sandbox", "/data", false), {}).ok());
  // An exec joins a root that has its mounts.
  auto exec = With(dir_ + "/sandbox", "/data", false);
  exec.set_join_process("c1");
  EXPECT_EQ(ProcessMounts(zone_, exec, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rauha
