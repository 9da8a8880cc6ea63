// `rauha sandbox`'s JSON result and exit codes: what scripts and agents parse.
#include "rauha-cli/result_json.h"

#include <gtest/gtest.h>

#include <csignal>

namespace rauha::cli {
namespace {

using rauha::sandbox::v1::SandboxResult;

SandboxResult Exited(const std::string& status, int code) {
  SandboxResult r;
  r.set_task_id("t-1");
  r.set_zone_id("z-1");
  r.set_zone_name("sandbox-1");
  r.add_command("sh");
  r.add_command("-c");
  r.add_command("exit 3");
  r.set_status(status);
  r.set_exit_code(code);
  r.set_duration_ms(1234);
  r.set_started_at("2025-01-01T00:00:00Z");
  r.set_finished_at("2025-01-01T00:00:01Z");
  return r;
}

TEST(CliResultJsonTest, NumbersAreJsonNumbers) {
  SandboxResult r = Exited("failed", 3);
  r.mutable_resources()->set_peak_memory_bytes(uint64_t{5} << 32);
  r.mutable_resources()->set_cpu_user_ms(17);
  r.mutable_resources()->set_cpu_system_ms(4);
  r.set_enforcement_events_lost(0);
  Json j = SandboxResultToJson(r);
  ASSERT_TRUE(j["exit_code"].is_number_integer());
  EXPECT_EQ(j["exit_code"].get<int>(), 3);
  ASSERT_TRUE(j["duration_ms"].is_number());
  EXPECT_EQ(j["duration_ms"].get<uint64_t>(), 1234u);
  EXPECT_EQ(j["resources"]["peak_memory_bytes"].get<uint64_t>(), uint64_t{5} << 32);
  EXPECT_TRUE(j["resources"]["cpu_user_ms"].is_number());
  EXPECT_EQ(j["resources"]["cpu_system_ms"].get<uint64_t>(), 4u);
  EXPECT_TRUE(j["resources"]["oom_killed"].is_boolean());
  EXPECT_TRUE(j["enforcement_events_lost"].is_number());
  // The printed text has them unquoted, too.
  const std::string text = DumpJson(j);
  EXPECT_NE(text.find("\"duration_ms\": 1234"), std::string::npos) << text;
  EXPECT_NE(text.find("\"exit_code\": 3"), std::string::npos) << text;
}

TEST(CliResultJsonTest, CarriesIdentityCommandAndOutput) {
  SandboxResult r = Exited("succeeded", 0);
  r.set_stdout("hello\n");
  r.set_stderr("warning\n");
  r.set_stdout_truncated(true);
  r.add_unavailable_controls("network.allowed_egress");
  Json j = SandboxResultToJson(r);
  EXPECT_EQ(j["task_id"], "t-1");
  EXPECT_EQ(j["zone_id"], "z-1");
  EXPECT_EQ(j["zone_name"], "sandbox-1");
  EXPECT_EQ(j["command"], Json::array({"sh", "-c", "exit 3"}));
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_EQ(j["started_at"], "2025-01-01T00:00:00Z");
  EXPECT_EQ(j["finished_at"], "2025-01-01T00:00:01Z");
  EXPECT_EQ(j["stdout"], "hello\n");
  EXPECT_EQ(j["stderr"], "warning\n");
  EXPECT_EQ(j["stdout_truncated"], true);
  EXPECT_EQ(j["stderr_truncated"], false);
  EXPECT_EQ(j["unavailable_controls"], Json::array({"network.allowed_egress"}));
  EXPECT_TRUE(j["events"].is_array());
  EXPECT_TRUE(j["enforcement_events"].is_array());
  // task_id leads, so a person reading the output sees it first.
  EXPECT_EQ(j.begin().key(), "task_id");
}

TEST(CliResultJsonTest, ExitCodeAndSignalAreNullWhenAbsent) {
  SandboxResult r;
  r.set_status("runtime_error");
  Json j = SandboxResultToJson(r);
  ASSERT_TRUE(j.contains("exit_code"));
  EXPECT_TRUE(j["exit_code"].is_null());
  ASSERT_TRUE(j.contains("signal"));
  EXPECT_TRUE(j["signal"].is_null());
}

TEST(CliResultJsonTest, ExitCodeZeroIsANumberNotNull) {
  Json j = SandboxResultToJson(Exited("succeeded", 0));
  ASSERT_TRUE(j["exit_code"].is_number_integer());
  EXPECT_EQ(j["exit_code"].get<int>(), 0);
}

TEST(CliResultJsonTest, SignalIsReported) {
  SandboxResult r;
  r.set_status("failed");
  r.set_signal(SIGKILL);
  r.mutable_resources()->set_oom_killed(true);
  Json j = SandboxResultToJson(r);
  EXPECT_EQ(j["signal"].get<int>(), SIGKILL);
  EXPECT_TRUE(j["exit_code"].is_null());
  EXPECT_EQ(j["resources"]["oom_killed"], true);
}

TEST(CliResultJsonTest, EnforcementEventPidIsNullOrNumber) {
  SandboxResult r = Exited("failed", 1);
  auto* with_pid = r.add_enforcement_events();
  with_pid->set_timestamp("2025-01-01T00:00:00.5Z");
  with_pid->set_hook("file_open");
  with_pid->set_action("open");
  with_pid->set_decision("deny");
  with_pid->set_message("open /etc/shadow denied");
  with_pid->set_pid(4242);
  with_pid->set_source_zone("sandbox-1");
  with_pid->set_object("/etc/shadow");
  with_pid->set_comm("cat");
  with_pid->set_layer("bpf_lsm");
  auto* without_pid = r.add_enforcement_events();
  without_pid->set_hook("connect");
  without_pid->set_decision("deny");
  auto* event = r.add_events();
  event->set_timestamp("2025-01-01T00:00:00Z");
  event->set_kind("started");
  event->set_message("pid 4242");

  Json j = SandboxResultToJson(r);
  ASSERT_EQ(j["enforcement_events"].size(), 2u);
  const Json& first = j["enforcement_events"][0];
  ASSERT_TRUE(first["pid"].is_number_unsigned());
  EXPECT_EQ(first["pid"].get<uint32_t>(), 4242u);
  EXPECT_EQ(first["hook"], "file_open");
  EXPECT_EQ(first["action"], "open");
  EXPECT_EQ(first["decision"], "deny");
  EXPECT_EQ(first["message"], "open /etc/shadow denied");
  EXPECT_EQ(first["source_zone"], "sandbox-1");
  EXPECT_EQ(first["target_zone"], "");
  EXPECT_EQ(first["object"], "/etc/shadow");
  EXPECT_EQ(first["comm"], "cat");
  EXPECT_EQ(first["layer"], "bpf_lsm");
  EXPECT_EQ(first["timestamp"], "2025-01-01T00:00:00.5Z");
  EXPECT_TRUE(j["enforcement_events"][1]["pid"].is_null());
  ASSERT_EQ(j["events"].size(), 1u);
  EXPECT_EQ(
      j["events"][0],
      Json({{"timestamp", "2025-01-01T00:00:00Z"}, {"kind", "started"}, {"message", "pid 4242"}}));
}

TEST(CliResultJsonTest, ErrorIsOmittedWhenEmpty) {
  EXPECT_FALSE(SandboxResultToJson(Exited("succeeded", 0)).contains("error"));
  SandboxResult r;
  r.set_status("runtime_error");
  r.set_error("exec /bin/nope: No such file or directory");
  Json j = SandboxResultToJson(r);
  ASSERT_TRUE(j.contains("error"));
  EXPECT_EQ(j["error"], "exec /bin/nope: No such file or directory");
}

TEST(CliResultJsonTest, InvalidUtf8OutputStillPrints) {
  SandboxResult r = Exited("succeeded", 0);
  r.set_stdout(std::string("ok \xff\xfe end"));
  const std::string text = DumpJson(SandboxResultToJson(r));
  EXPECT_NE(text.find("ok \xEF\xBF\xBD\xEF\xBF\xBD end"), std::string::npos) << text;
}

TEST(CliResultJsonTest, ExactBytesTravelAsBase64BesideTheText) {
  SandboxResult r = Exited("succeeded", 0);
  r.set_stdout("ok \xEF\xBF\xBD end");  // what rauhad puts there for "ok \xff end"
  r.set_stdout_bytes(std::string("ok \xff end"));
  r.set_stderr("plain\n");
  Json j = SandboxResultToJson(r);
  ASSERT_TRUE(j.contains("stdout_base64"));
  EXPECT_EQ(j["stdout_base64"], "b2sg/yBlbmQ=");  // base64 of "ok \xff end"
  EXPECT_EQ(j["stdout"], "ok \xEF\xBF\xBD end");
  EXPECT_FALSE(j.contains("stderr_base64")) << "valid UTF-8 is text only";
}

TEST(CliExitCodeTest, ExitedTaskReturnsItsOwnCode) {
  EXPECT_EQ(ExitCodeForResult(Exited("succeeded", 0)), 0);
  EXPECT_EQ(ExitCodeForResult(Exited("failed", 3)), 3);
  EXPECT_EQ(ExitCodeForResult(Exited("failed", 255)), 255);
}

TEST(CliExitCodeTest, SignalGives128PlusN) {
  SandboxResult r;
  r.set_status("failed");
  r.set_signal(SIGKILL);
  EXPECT_EQ(ExitCodeForResult(r), 128 + 9);
  r.set_signal(SIGSEGV);
  EXPECT_EQ(ExitCodeForResult(r), 128 + 11);
}

TEST(CliExitCodeTest, TimeoutGives124EvenWhenKilled) {
  SandboxResult r;
  r.set_status("timed_out");
  r.set_signal(SIGKILL);
  EXPECT_EQ(ExitCodeForResult(r), 124);
}

TEST(CliExitCodeTest, RuntimeErrorGives125) {
  SandboxResult r;
  r.set_status("runtime_error");
  EXPECT_EQ(ExitCodeForResult(r), 125);
  r.set_exit_code(0);  // whatever else it carries
  EXPECT_EQ(ExitCodeForResult(r), 125);
}

TEST(CliExitCodeTest, FailedNeverLooksLikeSuccess) {
  EXPECT_EQ(ExitCodeForResult(Exited("failed", 0)), 1);
}

TEST(CliExitCodeTest, ResultWithoutExitCodeOrSignalGives125) {
  SandboxResult r;
  r.set_status("failed");
  EXPECT_EQ(ExitCodeForResult(r), 125);
  EXPECT_EQ(ExitCodeForResult(Exited("failed", 300)), 125);
  EXPECT_EQ(ExitCodeForResult(Exited("failed", -1)), 125);
}

TEST(CliExitCodeTest, CancelledBySignalIs128PlusN) {
  EXPECT_EQ(ExitCodeForSignal(SIGINT), 130);
  EXPECT_EQ(ExitCodeForSignal(SIGTERM), 143);
}

}  // namespace
}  // namespace rauha::cli
