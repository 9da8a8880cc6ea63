#include "rauha-common/shim_protocol.h"

#include <gtest/gtest.h>

namespace rauha::shim {
namespace {

TEST(ShimProtocolTest, TaskSpecRoundTrips) {
  TaskSpec s;
  s.task_id = "t1";
  s.argv = {"/bin/echo", "hi"};
  s.env = {"A=B"};
  s.workdir = "/workspace";
  s.cgroup_v2 = "/sys/fs/cgroup/unified/x";
  s.cgroup_v1 = {"/sys/fs/cgroup/memory/x"};
  s.mounts = {{"/src", "/workspace", false}};
  s.writable_paths = {"/tmp"};
  s.devices = {"/dev/null"};
  s.capabilities = {"CAP_CHOWN"};
  s.rlimits = {{"RLIMIT_NOFILE", 10, 20}};
  s.timeout_ms = 5;
  s.output_limit = 99;
  s.seccomp_deny = {"chmod", "fchmodat"};
  s.landlock = false;
  auto back = TaskSpecFromJson(ToJson(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->argv, s.argv);
  EXPECT_EQ(back->mounts[0].target, "/workspace");
  EXPECT_EQ(back->rlimits[0].hard, 20u);
  EXPECT_EQ(back->timeout_ms, 5u);
  EXPECT_EQ(back->output_limit, 99u);
  EXPECT_TRUE(back->seccomp);
  EXPECT_EQ(back->seccomp_deny, s.seccomp_deny);
  EXPECT_FALSE(back->landlock);
}

TEST(ShimProtocolTest, TaskSpecDefaultsToSeccompAndLandlock) {
  nlohmann::json j = {{"task_id", "t"}, {"argv", {"true"}}};
  auto spec = TaskSpecFromJson(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->seccomp);
  EXPECT_TRUE(spec->landlock);
  EXPECT_TRUE(spec->seccomp_deny.empty());
  j["seccomp_deny"] = "chmod";
  EXPECT_EQ(TaskSpecFromJson(j).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ShimProtocolTest, TaskSpecRejectsWrongTypesNamingTheField) {
  auto j = ToJson(TaskSpec{.task_id = "t", .argv = {"x"}});
  j["argv"] = "not-an-array";
  auto r = TaskSpecFromJson(j);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("argv"), absl::string_view::npos);
  j = ToJson(TaskSpec{.task_id = "t", .argv = {"x"}});
  j["timeout_ms"] = -1;
  EXPECT_FALSE(TaskSpecFromJson(j).ok());
  j = ToJson(TaskSpec{.task_id = "t", .argv = {}});
  EXPECT_FALSE(TaskSpecFromJson(j).ok()) << "an empty command";
  EXPECT_FALSE(TaskSpecFromJson(nlohmann::json::array()).ok());
}

TEST(ShimProtocolTest, ResultKeepsOptionalExitCodeAndSignal) {
  TaskResult t;
  t.task_id = "t";
  t.signal = 9;
  t.warnings = {"w"};
  t.layers = {"seccomp: 1 syscalls denied"};
  auto back = TaskResultFromJson(ToJson(t));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->exit_code.has_value());
  EXPECT_EQ(back->signal, 9);
  EXPECT_EQ(back->warnings, t.warnings);
  EXPECT_EQ(back->layers, t.layers);
}

TEST(ShimProtocolTest, ErrorResponsesKeepTheirCode) {
  auto resp = MakeErrorResponse(4, absl::NotFoundError("no task x"));
  EXPECT_EQ(resp["error"]["code"], "not_found");
  auto parsed = ParseResponse(resp);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(parsed.status().message(), "no task x");
  auto ok = ParseResponse(MakeOkResponse(4, {{"pid", 3}}));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["pid"], 3);
  EXPECT_FALSE(ParseResponse({{"id", 1}}).ok());
}

}  // namespace
}  // namespace rauha::shim
