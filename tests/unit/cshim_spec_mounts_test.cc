// containerd-shim-rauha-v2's rule for a bundle's mounts (spec_mounts.h): containerd's dirs from
// the bundle it made, this pod's CRI files as runtime state, everything else a host path, the
// zone's own /proc, /sys, /dev not applied.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "containerd-shim-rauha-v2/spec_mounts.h"

namespace rauha::cshim {
namespace {

namespace fs = std::filesystem;

TEST(CshimSpecMounts, ContainerdDirsComeFromTheBundleAndItsWorkLink) {
  char tmpl[] = "/tmp/rauha-specmounts-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string base = tmpl;
  std::string bundle = base + "/state/io.containerd.runtime.v2.task/k8s.io/abc";
  fs::create_directories(bundle);
  ASSERT_EQ(::symlink((base + "/root/io.containerd.runtime.v2.task/k8s.io/abc").c_str(),
                      (bundle + "/work").c_str()),
            0);
  ContainerdDirs dirs = ContainerdDirsOf(bundle);
  EXPECT_EQ(dirs.state, base + "/state");
  EXPECT_EQ(dirs.root, base + "/root");
  // Not a task plugin's bundle: no containerd dirs at all.
  fs::create_directories(base + "/elsewhere/k8s.io/abc");
  ContainerdDirs none = ContainerdDirsOf(base + "/elsewhere/k8s.io/abc");
  EXPECT_EQ(none.state, "");
  EXPECT_EQ(none.root, "");
  fs::remove_all(base);
}

TEST(CshimSpecMounts, ThisPodsCriFilesAreRuntimeStateOthersAreHostPaths) {
  ContainerdDirs dirs{"/var/lib/containerd", "/run/containerd"};
  const std::string cri_root = "/var/lib/containerd/io.containerd.grpc.v1.cri";
  const std::string cri_state = "/run/containerd/io.containerd.grpc.v1.cri";
  std::vector<BundleMount> mounts = {
      {"/proc", "proc", "proc", {"nosuid"}},
      {"/dev", "tmpfs", "tmpfs", {}},
      {"/run", "tmpfs", "tmpfs", {}},
      {"/etc/hosts", "bind", cri_root + "/sandboxes/pod1/hosts", {"rbind", "rprivate", "rw"}},
      {"/etc/hostname", "", cri_root + "/sandboxes/pod1/hostname", {"rbind", "ro"}},
      {"/dev/shm", "bind", cri_state + "/sandboxes/pod1/shm", {"rbind"}},
      {"/data", "bind", cri_root + "/containers/ctr1/volumes/v", {"rbind"}},
      // Another pod's files, a look-alike prefix and a hostPath: host paths.
      {"/other", "bind", cri_root + "/sandboxes/pod2/hosts", {"rbind"}},
      {"/alike", "bind", cri_root + "/sandboxes/pod1x/hosts", {"rbind"}},
      {"/host", "bind", "/srv/data", {"rbind", "ro"}},
      {"/dev/termination-log", "bind", "/var/lib/kubelet/pods/u/containers/c/t", {"rbind"}},
  };
  auto plan = PlanSpecMounts(mounts, dirs, "pod1", "ctr1");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->mounts.size(), 8u);
  auto at = [&](const std::string& dest) -> const SpecMount& {
    for (const auto& m : plan->mounts) {
      if (m.destination == dest) return m;
    }
    ADD_FAILURE() << dest << " not planned";
    return plan->mounts[0];
  };
  EXPECT_TRUE(at("/etc/hosts").runtime_state);
  EXPECT_FALSE(at("/etc/hosts").readonly);
  EXPECT_TRUE(at("/etc/hostname").runtime_state);
  EXPECT_TRUE(at("/etc/hostname").readonly);
  EXPECT_TRUE(at("/dev/shm").runtime_state);
  EXPECT_TRUE(at("/data").runtime_state);
  EXPECT_FALSE(at("/other").runtime_state);
  EXPECT_FALSE(at("/alike").runtime_state);
  EXPECT_FALSE(at("/host").runtime_state);
  EXPECT_TRUE(at("/host").readonly);
  // Kubelet's termination log: a host file of its own, marked as that (not a hostPath).
  EXPECT_TRUE(at("/dev/termination-log").termination_log);
  EXPECT_FALSE(at("/dev/termination-log").runtime_state);
  EXPECT_FALSE(at("/etc/hosts").termination_log);
  EXPECT_FALSE(at("/host").termination_log);
  // /proc, /dev, /run (not binds) are not applied, and said so.
  EXPECT_EQ(plan->skipped.size(), 3u);
}

TEST(CshimSpecMounts, RefusesRelativeOrDotDotPaths) {
  ContainerdDirs dirs{"/var/lib/containerd", "/run/containerd"};
  EXPECT_EQ(PlanSpecMounts({{"etc/hosts", "bind", "/x", {}}}, dirs, "p", "c").status().code(),
            absl::StatusCode::kInvalidArgument);
  // A ".." cannot climb out of this pod's directory into another's (or anywhere).
  EXPECT_EQ(PlanSpecMounts({{"/etc/hosts",
                             "bind",
                             "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/p/../q/hosts",
                             {"rbind"}}},
                           dirs, "p", "c")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rauha::cshim
