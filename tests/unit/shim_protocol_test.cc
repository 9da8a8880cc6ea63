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

TEST(ShimProtocolTest, TaskContractFieldsRoundTrip) {
  TaskSpec s{.task_id = "t", .argv = {"cat"}};
  s.stdin_data = std::string("in\0\xff", 4);
  s.uid = 1000;
  s.gid = 100;
  s.kill_after_ms = 2500;
  s.output_dir = "/var/tmp/out";
  s.output_spool_dir = "/run/rauha/task-output";
  auto back = TaskSpecFromJson(ToJson(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->stdin_data, s.stdin_data);
  EXPECT_EQ(back->uid, 1000);
  EXPECT_EQ(back->gid, 100);
  EXPECT_EQ(back->kill_after_ms, 2500u);
  EXPECT_EQ(back->output_dir, "/var/tmp/out");
  EXPECT_EQ(back->output_spool_dir, "/run/rauha/task-output");
  // Unset means root, as before these fields existed.
  auto old = TaskSpecFromJson(nlohmann::json{{"task_id", "t"}, {"argv", {"true"}}});
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->uid, -1);
  EXPECT_TRUE(old->stdin_data.empty());
}

TEST(ShimProtocolTest, OutputBytesThatAreNotUtf8SurviveTheFrame) {
  TaskResult t;
  t.task_id = "t";
  t.stdout_data = std::string("\xff\xfe\0ok", 5);
  t.stderr_data = "text";
  t.killed_after_grace = true;
  // Encoded and decoded as the frame codec does (JSON dump, replacing invalid UTF-8).
  std::string wire = ToJson(t).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto back = TaskResultFromJson(nlohmann::json::parse(wire));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->stdout_data, t.stdout_data);
  EXPECT_EQ(back->stderr_data, "text");
  EXPECT_TRUE(back->killed_after_grace);
  // A shim from before base64 sent plain strings: still read.
  auto legacy = TaskResultFromJson(nlohmann::json{{"task_id", "t"}, {"stdout", "plain"}});
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ(legacy->stdout_data, "plain");
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

TEST(ShimProtocolTest, ProbeSpecRoundTripsWithoutArgv) {
  TaskSpec s;
  s.task_id = "p";
  s.probe = true;
  auto back = TaskSpecFromJson(ToJson(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->probe);
  EXPECT_TRUE(back->argv.empty());
  EXPECT_FALSE(TaskSpecFromJson(ToJson(TaskSpec{.task_id = "t", .argv = {"x"}}))->probe);
  s.argv = {"true"};
  EXPECT_EQ(TaskSpecFromJson(ToJson(s)).status().code(), absl::StatusCode::kInvalidArgument)
      << "a probe task runs no command";
}

TEST(ShimProtocolTest, ResultCarriesEnforcementEvents) {
  TaskResult t;
  t.task_id = "t";
  EnforcementEvent e;
  e.time_ns = 1700000000123456789;
  e.zone_id = "z";
  e.cgroup_id = 42;
  e.pidns_ino = 4026532000;
  e.pid = 1234;
  e.comm = "python3";
  e.layer = "seccomp";
  e.hook = "seccomp";
  e.action = "syscall";
  e.decision = "deny";
  e.object = "unshare";
  e.message = "unshare refused by seccomp (the zone's deny list)";
  t.enforcement_events = {e, e};
  t.enforcement_events_lost = 7;
  auto j = ToJson(t);
  EXPECT_EQ(j["enforcement_events"].size(), 2u);
  EXPECT_EQ(j["enforcement_events_lost"], 7);
  auto back = TaskResultFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->enforcement_events.size(), 2u);
  EXPECT_EQ(ToJson(back->enforcement_events[1]), ToJson(e));
  EXPECT_EQ(back->enforcement_events_lost, 7u);

  // Results from an older shim have neither field.
  j.erase("enforcement_events");
  j.erase("enforcement_events_lost");
  back = TaskResultFromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->enforcement_events.empty());
  EXPECT_EQ(back->enforcement_events_lost, 0u);

  j["enforcement_events"] = {{{"pid", "not a number"}}};
  auto bad = TaskResultFromJson(j);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("pid"), absl::string_view::npos) << bad.status();
}

TEST(ShimProtocolTest, EventFramesAreTellableFromResponses) {
  EnforcementEvent e;
  e.object = "bpf";
  auto f = MakeEventFrame("t1", e);
  EXPECT_TRUE(IsEventFrame(f));
  EXPECT_EQ(f["task_id"], "t1");
  EXPECT_EQ(f["event"]["object"], "bpf");
  EXPECT_FALSE(f.contains("id"));
  EXPECT_FALSE(IsEventFrame(MakeOkResponse(3, {{"event", 1}})));
  EXPECT_FALSE(IsEventFrame(MakeOkResponse(3, {})));
}

TEST(ShimProtocolTest, ProbeResultsParse) {
  ProbeResult p{"mount", true, "EPERM", "mount(tmpfs, /tmp/x) failed: Operation not permitted"};
  auto j = nlohmann::json::array({ToJson(p)});
  EXPECT_EQ(j[0]["errno"], "EPERM");
  auto back = ProbeResultsFromJson(j.dump() + "\n");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].name, "mount");
  EXPECT_TRUE((*back)[0].refused);
  EXPECT_EQ((*back)[0].errno_name, "EPERM");
  EXPECT_EQ((*back)[0].detail, p.detail);
  EXPECT_FALSE(ProbeResultsFromJson("not json").ok());
  EXPECT_FALSE(ProbeResultsFromJson("{}").ok());
  EXPECT_FALSE(ProbeResultsFromJson(R"([{"name": "x"}])").ok()) << "refused is required";
}

}  // namespace
}  // namespace rauha::shim
