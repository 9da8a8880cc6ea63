#include "rauha-common/cgroup_layout.h"

#include <gtest/gtest.h>

namespace rauha {
namespace {

// This machine kind (Firecracker VM, Debian 12, kernel 6.18), copied from /proc/self/mountinfo.
constexpr std::string_view kHybridMountinfo =
    "25 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

// Copied from /proc/self/cgroup on the same machine.
constexpr std::string_view kHybridProcCgroup =
    "9:name=systemd:/\n"
    "8:pids:/\n"
    "7:blkio:/\n"
    "6:freezer:/\n"
    "5:devices:/\n"
    "4:memory:/process_api/476cc4f50da4c1a43d619c50c28933e2\n"
    "3:cpuset:/\n"
    "2:cpuacct:/\n"
    "1:cpu:/\n"
    "0::/\n";

// A systemd host booted with the unified hierarchy only (Debian 12 default).
constexpr std::string_view kUnifiedMountinfo =
    "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro\n"
    "26 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
    "27 24 0:24 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore pstore rw\n";

TEST(CgroupLayoutTest, ThisMachineIsHybridWithEveryV1Controller) {
  CgroupLayout l = ParseCgroupMounts(kHybridMountinfo, "hugetlb\n");
  EXPECT_EQ(l.mode, CgroupMode::kHybrid);
  EXPECT_EQ(ToString(l.mode), "hybrid");
  EXPECT_EQ(l.unified_mount, "/sys/fs/cgroup/unified");
  EXPECT_EQ(l.unified_controllers, (std::set<std::string>{"hugetlb"}));
  EXPECT_EQ(l.v1_mounts.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(l.v1_mounts.at("cpuacct"), "/sys/fs/cgroup/cpuacct");
  EXPECT_EQ(l.v1_mounts.at("pids"), "/sys/fs/cgroup/pids");
  EXPECT_EQ(l.v1_mounts.size(), 8u);  // cpu cpuacct cpuset memory devices freezer blkio pids
  // The named systemd hierarchy is no controller.
  for (const auto& [c, mount] : l.v1_mounts) EXPECT_NE(mount, "/sys/fs/cgroup/systemd") << c;
}

TEST(CgroupLayoutTest, UnifiedHostWithMemoryControllerIsUnified) {
  CgroupLayout l =
      ParseCgroupMounts(kUnifiedMountinfo, "cpuset cpu io memory hugetlb pids rdma misc\n");
  EXPECT_EQ(l.mode, CgroupMode::kUnified);
  EXPECT_EQ(l.unified_mount, "/sys/fs/cgroup");
  EXPECT_TRUE(l.unified_controllers.count("memory"));
  EXPECT_TRUE(l.unified_controllers.count("io"));
  EXPECT_TRUE(l.v1_mounts.empty());
}

TEST(CgroupLayoutTest, CgroupTwoWithoutV1MountsIsUnifiedEvenWithoutControllers) {
  EXPECT_EQ(ParseCgroupMounts(kUnifiedMountinfo, "").mode, CgroupMode::kUnified);
}

TEST(CgroupLayoutTest, CoMountedControllersShareOneMountAndLegacyHasNoV2) {
  constexpr std::string_view kLegacy =
      "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup "
      "rw,cpu,cpuacct\n"
      "31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory\n"
      "32 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw shared:13 - cgroup cgroup "
      "rw,net_cls,net_prio\n";
  CgroupLayout l = ParseCgroupMounts(kLegacy, "");
  EXPECT_EQ(l.mode, CgroupMode::kLegacy);
  EXPECT_EQ(ToString(l.mode), "legacy");
  EXPECT_TRUE(l.unified_mount.empty());
  EXPECT_EQ(l.v1_mounts.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(l.v1_mounts.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(l.v1_mounts.at("net_prio"), "/sys/fs/cgroup/net_cls,net_prio");
}

TEST(CgroupLayoutTest, OptionalFieldsEscapesAndMountRootsAreParsed) {
  // Two optional fields before "-", an escaped space in the mount point, a bind-mounted
  // subtree (root "/ctr") and a v1 hierarchy mounted twice (first one wins).
  constexpr std::string_view kText =
      "40 31 0:38 /ctr /my\\040cgroup rw shared:5 master:2 - cgroup2 cgroup2 rw\n"
      "41 31 0:32 / /a/memory rw - cgroup cgroup rw,memory,noprefix\n"
      "42 31 0:32 / /b/memory rw - cgroup cgroup rw,memory\n";
  CgroupLayout l = ParseCgroupMounts(kText, "memory pids");
  EXPECT_EQ(l.unified_mount, "/my cgroup");
  EXPECT_EQ(l.unified_root, "/ctr");
  EXPECT_EQ(l.v1_mounts.at("memory"), "/a/memory");
  EXPECT_EQ(l.v1_mounts.size(), 1u);
  EXPECT_EQ(l.mode, CgroupMode::kUnified);  // cgroup2 holds memory
}

TEST(CgroupLayoutTest, ProcCgroupGivesEachHierarchysPath) {
  EXPECT_EQ(*ParseProcCgroup(kHybridProcCgroup, "memory"),
            "/process_api/476cc4f50da4c1a43d619c50c28933e2");
  EXPECT_EQ(*ParseProcCgroup(kHybridProcCgroup, "pids"), "/");
  EXPECT_EQ(*ParseProcCgroup(kHybridProcCgroup, ""), "/");
  EXPECT_EQ(*ParseProcCgroup("4:cpu,cpuacct:/a/b\n", "cpuacct"), "/a/b");
  EXPECT_EQ(*ParseProcCgroup("0::/user.slice/weird:name\n", ""), "/user.slice/weird:name");
  // "name=systemd" is not the systemd controller, and a missing controller is NotFound.
  EXPECT_TRUE(absl::IsNotFound(ParseProcCgroup(kHybridProcCgroup, "systemd").status()));
  EXPECT_TRUE(absl::IsNotFound(ParseProcCgroup("1:memory:/x\n", "").status()));
}

TEST(CgroupLayoutTest, CgroupDirJoinsMountAndPathBelowTheMountRoot) {
  EXPECT_EQ(CgroupDir("/sys/fs/cgroup/memory", "/", "/process_api/x"),
            "/sys/fs/cgroup/memory/process_api/x");
  EXPECT_EQ(CgroupDir("/sys/fs/cgroup/unified", "/", "/"), "/sys/fs/cgroup/unified");
  EXPECT_EQ(CgroupDir("/sys/fs/cgroup", "/ctr", "/ctr/zone"), "/sys/fs/cgroup/zone");
  EXPECT_EQ(CgroupDir("/sys/fs/cgroup", "/ctr", "/ctr"), "/sys/fs/cgroup");
  // "/ctrl" is not below "/ctr".
  EXPECT_EQ(CgroupDir("/sys/fs/cgroup", "/ctr", "/ctrl"), "/sys/fs/cgroup/ctrl");
}

}  // namespace
}  // namespace rauha
