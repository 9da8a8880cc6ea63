// Resources of a containerd task on containerd-shim-rauha-v2: Update (what containerd sends
// for CRI's UpdateContainerResources; ctr 1.6 has no `task update`, so the test calls the
// shim's Task/Update over ttrpc as containerd does) lands in the zone's cgroup files, a bad
// value changes nothing; and a container that hits its memory limit gives containerd a
// /tasks/oom event (`ctr events`).
#include <fcntl.h>
#include <sys/wait.h>

#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "google/protobuf/empty.pb.h"
#include "tests/containerd/ctr_fixture.h"

namespace rauha::testing {
namespace {

using CtrResourcesTest = CtrTest;

// The pid `ctr task ps` lists first for task `id` (its own process).
pid_t TaskPid(Containerd& containerd, const std::string& id) {
  std::string out;
  if (containerd.Ctr("task ps " + id, &out) != 0) return 0;
  std::istringstream lines(out);
  std::string header, first;
  std::getline(lines, header);
  lines >> first;
  return std::atoi(first.c_str());
}

// The content of `file` in the cgroup of `pid` that has `controller` (v1), or in its v2
// cgroup (`v2_file`), without the trailing newline.
std::string CgroupFile(pid_t pid, const std::string& controller, const std::string& file,
                       const std::string& v2_file) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string v2;
  for (std::string line; std::getline(in, line);) {
    auto first = line.find(':'), second = line.find(':', first + 1);
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    std::istringstream list(controllers);
    for (std::string c; std::getline(list, c, ',');) {
      if (c == controller) {
        std::ifstream f("/sys/fs/cgroup/" + controller + path + "/" + file);
        std::string value;
        std::getline(f, value);
        return value;
      }
    }
    if (line.rfind("0::", 0) == 0) v2 = path;
  }
  std::ifstream f("/sys/fs/cgroup" + v2 + "/" + v2_file);
  std::string value;
  std::getline(f, value);
  return value;
}

absl::Status Update(Containerd& containerd, const std::string& id, const std::string& json) {
  auto client = ttrpc::Client::Connect(cshim::ShimSocketPath(containerd.socket(), "default", id));
  if (!client.ok()) return client.status();
  containerd::task::v2::UpdateTaskRequest req;
  req.set_id(id);
  req.mutable_resources()->set_type_url(
      "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources");
  req.mutable_resources()->set_value(json);
  return (*client)
      ->CallMethod<google::protobuf::Empty>("containerd.task.v2.Task", "Update", req,
                                            absl::Seconds(60))
      .status();
}

TEST_F(CtrResourcesTest, UpdateLandsInTheZoneCgroupAndBadValuesChangeNothing) {
  std::string out;
  ASSERT_EQ(Run("up1", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  ASSERT_TRUE(WaitStatus("up1", "RUNNING"));
  pid_t pid = TaskPid(*containerd_, "up1");
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(Update(*containerd_, "up1",
                     R"({"memory": {"limit": 67108864},
                         "cpu": {"shares": 512, "quota": 50000, "period": 100000},
                         "pids": {"limit": 64}})")
                  .ok());
  EXPECT_EQ(CgroupFile(pid, "memory", "memory.limit_in_bytes", "memory.max"), "67108864");
  EXPECT_EQ(CgroupFile(pid, "pids", "pids.max", "pids.max"), "64");
  EXPECT_EQ(CgroupFile(pid, "cpu", "cpu.shares", "cpu.weight"), "512");
  std::string quota = CgroupFile(pid, "cpu", "cpu.cfs_quota_us", "cpu.max");
  EXPECT_TRUE(quota == "50000" || quota == "50000 100000") << quota;
  // Lifting the quota and the pids limit (-1, as OCI says it).
  ASSERT_TRUE(Update(*containerd_, "up1", R"({"cpu": {"quota": -1}, "pids": {"limit": -1}})").ok());
  quota = CgroupFile(pid, "cpu", "cpu.cfs_quota_us", "cpu.max");
  EXPECT_TRUE(quota == "-1" || quota == "max 100000") << quota;
  EXPECT_EQ(CgroupFile(pid, "pids", "pids.max", "pids.max"), "max");
  EXPECT_EQ(CgroupFile(pid, "memory", "memory.limit_in_bytes", "memory.max"), "67108864");
  // Out of range: refused, naming the field; the cgroup keeps its values.
  absl::Status bad = Update(*containerd_, "up1", R"({"cpu": {"shares": 1}})");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_NE(bad.message().find("cpu.shares"), std::string::npos) << bad;
  EXPECT_EQ(CgroupFile(pid, "cpu", "cpu.shares", "cpu.weight"), "512");
  EXPECT_EQ(Update(*containerd_, "up1", "not json").code(), absl::StatusCode::kInvalidArgument);
  KillAndRemove("up1");
}

TEST_F(CtrResourcesTest, MemoryLimitHitGivesAnOomEvent) {
  std::string events_file = dir_ + "/events.txt";
  pid_t watcher = ::fork();
  if (watcher == 0) {
    int fd = ::open(events_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    ::execlp("ctr", "ctr", "-a", containerd_->socket().c_str(), "events", nullptr);
    ::_exit(127);
  }
  ASSERT_GT(watcher, 0);
  auto read_events = [&] {
    std::ifstream in(events_file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  std::string out;
  ASSERT_EQ(Run("oom1", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  ASSERT_TRUE(WaitStatus("oom1", "RUNNING"));
  // `ctr events` subscribes asynchronously: its /tasks/start for oom1 shows it listens.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (read_events().find("/tasks/start") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(Update(*containerd_, "oom1", R"({"memory": {"limit": 33554432}})").ok());
  // dd's 128 MiB buffer cannot fit in 32 MiB: the kernel's OOM killer ends it.
  std::string exec_out;
  int exec_status = containerd_->Ctr(
      "task exec --fifo-dir " + dir_ +
          "/fifo --exec-id hog oom1 /bin/busybox dd if=/dev/zero of=/dev/null bs=128M count=1",
      &exec_out);
  EXPECT_EQ(exec_status, 137) << exec_out;
  std::string seen;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  do {
    seen = read_events();
    if (seen.find("/tasks/oom") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  ::kill(watcher, SIGKILL);
  ::waitpid(watcher, nullptr, 0);
  auto oom = seen.find("/tasks/oom");
  std::ifstream shim_log(dir_ +
                         "/containerd/state/io.containerd.runtime.v2.task/default/oom1/shim.log");
  ASSERT_NE(oom, std::string::npos) << seen << "shim log:\n" << shim_log.rdbuf();
  EXPECT_NE(seen.find("\"oom1\"", oom), std::string::npos) << seen;
  KillAndRemove("oom1");
}

}  // namespace
}  // namespace rauha::testing
