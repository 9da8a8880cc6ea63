// The containerd fixture's teardown removes what a test that died mid-way left of its own:
// the shims its containerd started, mounts under its private directory (nested, stacked,
// busy), and the directory; and nothing of anyone else's.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "tests/containerd/ctr_fixture.h"
#include "tests/containerd/private_mounts.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;

bool MountTmpfs(const std::string& at) {
  std::error_code ec;
  fs::create_directories(at, ec);
  return ::mount("rauha-leftover", at.c_str(), "tmpfs", 0, "size=64k") == 0;
}

TEST(PrivateMountsTest, UnmountAllUnderTakesNestedStackedAndBusyMountsAndNothingBeside) {
  char tmpl[] = "/tmp/rauha-ctr-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  // A sibling whose name starts with dir's: not below it, so not ours to unmount.
  const std::string sibling = dir + "-beside";
  ASSERT_TRUE(MountTmpfs(dir + "/a"));
  ASSERT_TRUE(MountTmpfs(dir + "/a/b c"));  // below another mount; a space (\040 in mountinfo)
  ASSERT_TRUE(MountTmpfs(dir + "/a/b c"));  // stacked on the same point
  ASSERT_TRUE(MountTmpfs(dir + "/busy"));
  ASSERT_TRUE(MountTmpfs(sibling));
  // A file held open in /busy: a plain umount is EBUSY, only a detach takes it.
  int held = ::open((dir + "/busy/held").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(held, 0);
  auto before = MountsUnder(dir);
  ASSERT_EQ(before.size(), 4u);
  EXPECT_EQ(before[0], dir + "/a/b c");  // deepest first
  EXPECT_EQ(before[1], dir + "/a/b c");

  EXPECT_TRUE(UnmountAllUnder(dir).empty());

  EXPECT_TRUE(MountsUnder(dir).empty());
  EXPECT_EQ(MountsUnder(sibling).size(), 1u) << "a mount beside the directory was touched";
  ::close(held);
  EXPECT_EQ(::umount2(sibling.c_str(), 0), 0);
  fs::remove_all(dir);
  fs::remove(sibling);
}

// A test that dies with its container running leaves the shim, the container's rootfs mount
// under the fixture's directory, and (for the sake of it) a busy mount below that directory.
TEST_F(CtrTest, RemoveLeftoversEndsWhatADyingTestLeftRunningAndMounted) {
  std::string out;
  ASSERT_EQ(Run("dying", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  ASSERT_TRUE(WaitStatus("dying", "RUNNING"));
  ASSERT_EQ(containerd_->ShimPids().size(), 1u);
  ASSERT_TRUE(MountTmpfs(dir_ + "/held"));
  int held = ::open((dir_ + "/held/file").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(held, 0);
  // The container's rootfs, mounted by the shim under containerd's state in dir_.
  auto mounts = MountsUnder(dir_);
  ASSERT_TRUE(std::any_of(mounts.begin(), mounts.end(),
                          [](const std::string& m) { return m.ends_with("/dying/rootfs"); }))
      << "no rootfs mount of the container under " << dir_;
  const std::string dir = dir_;

  RemoveLeftovers();

  EXPECT_TRUE(containerd_->ShimPids().empty());
  EXPECT_TRUE(MountsUnder(dir).empty());
  EXPECT_FALSE(fs::exists(dir));
  ::close(held);
  // The container's process is rauhad's: its zone goes through rauhad, as a stop of rauhad
  // would take it.
  rauha::zone::v1::ListZonesResponse zones;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->ListZones(&ctx, {}, &zones).ok());
  }
  for (const auto& z : zones.zones()) {
    grpc::ClientContext ctx;
    rauha::zone::v1::DeleteZoneRequest req;
    req.set_name(z.name());
    req.set_force(true);
    rauha::zone::v1::DeleteZoneResponse resp;
    EXPECT_TRUE(daemon_->Zones()->DeleteZone(&ctx, req, &resp).ok()) << z.name();
  }
}

}  // namespace
}  // namespace rauha::testing
