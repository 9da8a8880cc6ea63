// A container removed at its exit (`run --rm`, auto_remove) in a zone of the warm pool runs on
// the root the zone's prepared task process built ahead (rauha-shim/root_ahead.h): its image's
// overlay, with a private upper on a tmpfs of its mount namespace (not a directory of the state
// dir), gets the /proc, /dev and /tmp made before the call, and the rest of the root built ahead
// is gone. Checked in the kernel's view of the running container: its mounts, which of them
// were made first, its processes, its files; and that its mount namespace, and with it the
// upper, is gone when the container is.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "nlohmann/json.hpp"
#include "tests/integration/container_pool_fixture.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;

struct MountLine {
  std::string point, fstype, super;
};

std::vector<MountLine> MountsOf(pid_t pid) {
  std::vector<MountLine> out;
  std::istringstream in(ReadWholeFile("/proc/" + std::to_string(pid) + "/mountinfo"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    MountLine m;
    m.point = point;
    std::string source;
    tail >> m.fstype >> source >> m.super;
    out.push_back(std::move(m));
  }
  return out;
}

// The mount's unique id (STATX_MNT_ID_UNIQUE, Linux 6.8+: never reused, larger for a mount
// made later), or 0 where the kernel does not give it.
uint64_t UniqueMountId(const std::string& path) {
  constexpr unsigned kMntIdUnique = 0x4000;  // STATX_MNT_ID_UNIQUE
  struct statx stx {};
  if (::statx(AT_FDCWD, path.c_str(), 0, kMntIdUnique, &stx) < 0) return 0;
  if ((stx.stx_mask & kMntIdUnique) == 0) return 0;
  return stx.stx_mnt_id;
}

// The 64-bit id of the mount namespace of `pid` (NS_GET_MNTNS_ID, Linux 6.9+: never reused,
// unlike the namespace's inode number), or 0.
uint64_t MountNamespaceId(const std::string& pid) {
  constexpr unsigned long kGetMntnsId = _IOR(0xb7, 0x5, uint64_t);  // NS_GET_MNTNS_ID
  int fd = ::open(("/proc/" + pid + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t id = 0;
  if (::ioctl(fd, kGetMntnsId, &id) < 0) id = 0;
  ::close(fd);
  return id;
}

// The processes in the mount namespace whose id is `ns_id`.
std::vector<pid_t> ProcessesInMountNamespace(uint64_t ns_id) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (MountNamespaceId(pid) == ns_id) out.push_back(static_cast<pid_t>(std::stoi(pid)));
  }
  return out;
}

class ContainerRootAheadTest : public PooledContainerTest {};

TEST_F(ContainerRootAheadTest, RunRmInAPooledZoneRunsOnTheImageWithTheRootBuiltAhead) {
  ASSERT_FALSE(PoolReady(1).empty());
  std::string id;
  const pid_t pid = StartSleeper(/*auto_remove=*/true, &id);
  ASSERT_GT(pid, 0);
  const std::string root = "/proc/" + std::to_string(pid) + "/root";

  // Its root is the image's overlay; its upper is not in the state dir.
  std::vector<MountLine> mounts = MountsOf(pid);
  std::map<std::string, std::string> fstype_at;
  for (const auto& m : mounts) {
    EXPECT_EQ(m.point.find(".rauha-image"), std::string::npos)
        << m.point << ": the root built ahead (and its staging directory) is gone";
    fstype_at[m.point] = m.fstype;
  }
  EXPECT_EQ(fstype_at["/"], "overlay");
  EXPECT_EQ(fstype_at["/proc"], "proc");
  EXPECT_EQ(fstype_at["/dev"], "tmpfs");
  EXPECT_EQ(fstype_at["/tmp"], "tmpfs");
  for (const auto& m : mounts) {
    if (m.point != "/") continue;
    EXPECT_NE(m.super.find("upperdir="), std::string::npos) << m.super;
    EXPECT_EQ(m.super.find(State()), std::string::npos)
        << "an auto-removed container's upper is not in the state dir: " << m.super;
  }
  EXPECT_FALSE(fs::exists(State() + "/containers/" + id + "/upper"));
  EXPECT_TRUE(fs::exists(State() + "/containers/" + id + "/container.log"));

  // /proc, /dev and /tmp were made before its root: the prepared process built them while the
  // zone waited in the pool (on the ordinary path they are mounted onto the root after it).
  uint64_t root_id = UniqueMountId(root + "/");
  uint64_t proc_id = UniqueMountId(root + "/proc");
  uint64_t dev_id = UniqueMountId(root + "/dev");
  uint64_t tmp_id = UniqueMountId(root + "/tmp");
  ASSERT_NE(root_id, 0u) << "statx(STATX_MNT_ID_UNIQUE) needs Linux 6.8";
  EXPECT_LT(proc_id, root_id);
  EXPECT_LT(dev_id, root_id);
  EXPECT_LT(tmp_id, root_id);

  // What a process there sees: the image's files, its own pid namespace (the init and the
  // sleep), the zone's hostname, a writable /tmp and root, the devices.
  EXPECT_TRUE(fs::exists(root + "/bin/busybox"));
  std::set<std::string> pids;
  for (const auto& e : fs::directory_iterator(root + "/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") == std::string::npos) pids.insert(name);
  }
  EXPECT_EQ(pids, (std::set<std::string>{"1", "2"}));
  cpb::ContainerInfo info;
  ASSERT_TRUE(Get(id, &info).ok());
  EXPECT_EQ(ReadWholeFile(root + "/etc/hostname"), info.zone_name() + "\n");
  cpb::ExecInContainerResponse ran;
  grpc::Status s = Exec(id,
                        {"/bin/busybox", "sh", "-c",
                         "echo a > /tmp/f && cat /tmp/f && [ -c /dev/null ] && echo devices && "
                         "if echo b > /made; then echo writable; fi"},
                        &ran);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(ran.exit_code(), 0) << ran.stderr();
  // "/" stays read-only (the default policy does not list it among the writable paths).
  EXPECT_EQ(ran.stdout(), "a\ndevices\n");

  const uint64_t ns = MountNamespaceId(std::to_string(pid));
  ASSERT_NE(ns, 0u) << "ioctl(NS_GET_MNTNS_ID) needs Linux 6.9";
  ASSERT_TRUE(Stop(id, 5).ok());
  WaitGone(id);
  // Its mount namespace, holding its overlay and upper, went with its last process.
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!ProcessesInMountNamespace(ns).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(ProcessesInMountNamespace(ns).empty());
}

TEST_F(ContainerRootAheadTest, AKeptContainerInAPooledZoneKeepsItsUpperInTheStateDir) {
  ASSERT_FALSE(PoolReady(1).empty());
  std::string id;
  const pid_t pid = StartSleeper(/*auto_remove=*/false, &id);
  ASSERT_GT(pid, 0);
  // What the shim writes into the root (/etc/hostname) is in its upper in the state dir.
  const std::string upper = State() + "/containers/" + id + "/upper";
  cpb::ContainerInfo info;
  ASSERT_TRUE(Get(id, &info).ok());
  EXPECT_EQ(ReadWholeFile(upper + "/etc/hostname"), info.zone_name() + "\n");
  for (const auto& m : MountsOf(pid)) {
    if (m.point != "/") continue;
    EXPECT_NE(m.super.find("upperdir=" + upper), std::string::npos) << m.super;
  }
  ASSERT_TRUE(Stop(id, 5).ok());
  WaitForState(id, "Stopped");
  EXPECT_EQ(ReadWholeFile(upper + "/etc/hostname"), info.zone_name() + "\n");
  ASSERT_TRUE(Delete(id, false).ok());
  ExpectGone(id);
}

// `sandbox --image` (a task on an image with a private upper) in a pooled zone takes the same
// path, with the repository mounted at /workspace from the tree the shim made at the call.
TEST_F(ContainerRootAheadTest, SandboxImageInAPooledZoneRunsOnTheRootBuiltAheadWithItsRepo) {
  ASSERT_FALSE(PoolReady(1).empty());
  const std::string repo = daemon_->dir() + "/repo";
  ASSERT_TRUE(fs::create_directories(repo));
  { std::ofstream(repo + "/file.txt") << "from the repo\n"; }
  // The task prints its repo file, then its mount table's mount points in the kernel's order
  // (the namespace's mounts by unique id: creation order): /proc, /dev and /tmp made ahead
  // come before its root.
  std::string out, err;
  int rc =
      CliSplit({"sandbox", "--image", image_, "--repo-path", repo, "--", "/bin/busybox", "sh", "-c",
                "cat /workspace/file.txt; "
                "/bin/busybox awk '{print $5}' /proc/self/mountinfo"},
               &out, &err);
  ASSERT_EQ(rc, 0) << err << out;
  nlohmann::json result = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << out;
  ASSERT_EQ(result["status"], "succeeded") << out;
  std::string task_out = result["stdout"].get<std::string>();
  std::istringstream lines(task_out);
  std::string first;
  std::getline(lines, first);
  EXPECT_EQ(first, "from the repo");
  std::vector<std::string> points;
  for (std::string line; std::getline(lines, line);) points.push_back(line);
  auto at = [&](const std::string& p) {
    return std::find(points.begin(), points.end(), p) - points.begin();
  };
  ASSERT_LT(at("/"), static_cast<long>(points.size())) << task_out;
  ASSERT_LT(at("/workspace"), static_cast<long>(points.size())) << task_out;
  EXPECT_LT(at("/proc"), at("/")) << task_out;
  EXPECT_LT(at("/dev"), at("/")) << task_out;
  EXPECT_LT(at("/tmp"), at("/")) << task_out;
  for (const auto& p : points) EXPECT_EQ(p.find(".rauha-image"), std::string::npos) << p;
  EXPECT_EQ(ZoneCount(), 0);
}

}  // namespace
}  // namespace rauha::testing
