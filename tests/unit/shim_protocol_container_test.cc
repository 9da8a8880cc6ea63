// The TaskSpec fields containers bring (rauha.process.v1): a pre-mounted root and stdio paths
// survive the rauhad -> rauha-shim frame, and an older shim's spec without them still parses.
#include <gtest/gtest.h>

#include "rauha-common/shim_protocol.h"

namespace rauha::shim {
namespace {

TEST(ShimProtocolContainerTest, RootfsAndStdioPathsRoundTrip) {
  TaskSpec spec;
  spec.task_id = "c1";
  spec.argv = {"/bin/busybox", "echo", "hi"};
  spec.rootfs = "/run/containerd/io.containerd.runtime.v2.task/default/c1/rootfs";
  spec.stdin_path = "/run/containerd/fifo/1/c1-stdin";
  spec.stdout_path = "/run/containerd/fifo/1/c1-stdout";
  spec.stderr_path = "/run/containerd/fifo/1/c1-stderr";
  auto back = TaskSpecFromJson(ToJson(spec));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->rootfs, spec.rootfs);
  EXPECT_EQ(back->stdin_path, spec.stdin_path);
  EXPECT_EQ(back->stdout_path, spec.stdout_path);
  EXPECT_EQ(back->stderr_path, spec.stderr_path);
}

TEST(ShimProtocolContainerTest, SpecWithoutThemKeepsTheDefaults) {
  auto j = ToJson(TaskSpec{.task_id = "t1", .argv = {"true"}});
  for (const char* key : {"rootfs", "stdin_path", "stdout_path", "stderr_path"}) j.erase(key);
  auto back = TaskSpecFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->rootfs.empty());
  EXPECT_TRUE(back->stdout_path.empty());
}

TEST(ShimProtocolContainerTest, WrongTypeIsRefusedNamingTheField) {
  auto j = ToJson(TaskSpec{.task_id = "t1", .argv = {"true"}});
  j["rootfs"] = 7;
  auto back = TaskSpecFromJson(j);
  EXPECT_EQ(back.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(back.status().message().find("rootfs"), std::string::npos) << back.status();
}

}  // namespace
}  // namespace rauha::shim
