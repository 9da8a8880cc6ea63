// containerd-shim-rauha-v2's pure parts: containerd's command line, config.json, the pod
// grouping and the shim's socket path.
#include <gtest/gtest.h>

#include "containerd-shim-rauha-v2/bootstrap.h"
#include "containerd-shim-rauha-v2/bundle.h"
#include "containerd-shim-rauha-v2/options.h"
#include "containerd-shim-rauha-v2/process_end.h"

namespace rauha::cshim {
namespace {

TEST(CshimOptions, ParsesContainerdStartCommandLine) {
  auto o =
      ParseOptions({"-namespace", "k8s.io", "-address", "/run/containerd/containerd.sock",
                    "-publish-binary", "/usr/bin/containerd", "-id", "abc", "-debug", "start"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->ns, "k8s.io");
  EXPECT_EQ(o->address, "/run/containerd/containerd.sock");
  EXPECT_EQ(o->id, "abc");
  EXPECT_TRUE(o->debug);
  EXPECT_EQ(o->action, "start");
  auto again = ParseOptions([&] {
    auto args = ToArgs(*o);
    args.push_back("serve");
    return args;
  }());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->address, o->address);
  EXPECT_EQ(again->action, "serve");
}

TEST(CshimOptions, RefusesUnknownFlagMissingValueAndAction) {
  EXPECT_EQ(ParseOptions({"-id", "x", "-bogus", "1", "start"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseOptions({"-id", "x", "-namespace"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseOptions({"-id", "x"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseOptions({"-id", "x", "run"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseOptions({"start"}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CshimBundle, ReadsProcessAndAnnotations) {
  auto b = ParseBundleConfig(R"({"process": {"args": ["sh", "-c", "x"], "env": ["A=1"],
      "cwd": "/w", "terminal": true, "user": {"uid": 1000, "gid": 100}},
      "annotations": {"io.kubernetes.cri.sandbox-id": "0123456789abcdef", "rauha.io/policy": "strict"}})");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->process.args, (std::vector<std::string>{"sh", "-c", "x"}));
  EXPECT_EQ(b->process.env, (std::vector<std::string>{"A=1"}));
  EXPECT_EQ(b->process.cwd, "/w");
  EXPECT_TRUE(b->process.terminal);
  EXPECT_EQ(b->process.uid, 1000u);
  EXPECT_EQ(b->process.gid, 100u);
  EXPECT_EQ(GroupId(*b, "app1"), "0123456789abcdef");
  EXPECT_EQ(ZoneName(*b, GroupId(*b, "app1")), "k8s-0123456789ab");
  b->annotations["rauha.io/zone"] = "agents";
  EXPECT_EQ(ZoneName(*b, "whatever"), "agents");
}

TEST(CshimBundle, LoneContainerIsItsOwnPod) {
  auto b = ParseBundleConfig(R"({"process": {"args": ["true"]}})");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(GroupId(*b, "t1"), "t1");
  EXPECT_EQ(ZoneName(*b, "t1"), "k8s-t1");
  EXPECT_EQ(b->process.cwd, "/");
}

TEST(CshimBundle, BadConfigNamesTheField) {
  auto no_args = ParseBundleConfig(R"({"process": {"args": []}})");
  EXPECT_EQ(no_args.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_args.status().message().find("process.args"), std::string::npos);
  auto bad_uid = ParseBundleConfig(R"({"process": {"args": ["x"], "user": {"uid": -1}}})");
  EXPECT_NE(bad_uid.status().message().find("process.user.uid"), std::string::npos);
  auto bad_ann = ParseBundleConfig(R"({"process": {"args": ["x"]}, "annotations": {"a": 1}})");
  EXPECT_NE(bad_ann.status().message().find("annotations.a"), std::string::npos);
  EXPECT_EQ(ParseBundleConfig("not json").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CshimSocket, OnePathPerContainerdNamespaceAndPod) {
  std::string a = ShimSocketPath("/run/containerd/containerd.sock", "k8s.io", "pod1");
  EXPECT_EQ(a, ShimSocketPath("/run/containerd/containerd.sock", "k8s.io", "pod1"));
  EXPECT_NE(a, ShimSocketPath("/run/containerd/containerd.sock", "k8s.io", "pod2"));
  EXPECT_NE(a, ShimSocketPath("/run/containerd/containerd.sock", "default", "pod1"));
  EXPECT_NE(a, ShimSocketPath("/tmp/other.sock", "k8s.io", "pod1"));
  EXPECT_LT(a.size(), 108u);  // fits sockaddr_un
  EXPECT_EQ(a.rfind("/run/containerd/s/", 0), 0u);
}

}  // namespace
}  // namespace rauha::cshim

namespace rauha::cshim {
namespace {

TEST(CshimBundle, ExecProcessSpecCapabilitiesRlimitsConsole) {
  auto p = ParseProcessJson(R"({"args": ["sh"], "terminal": true, "noNewPrivileges": true,
      "consoleSize": {"height": 30, "width": 100},
      "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"],
                       "effective": ["CAP_CHOWN", "CAP_SYS_ADMIN"], "permitted": ["CAP_KILL"]},
      "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}]})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->terminal);
  EXPECT_TRUE(p->no_new_privileges);
  EXPECT_EQ(p->console_rows, 30);
  EXPECT_EQ(p->console_cols, 100);
  // Effective and permitted, never past the bounding set (CAP_SYS_ADMIN is not in it).
  ASSERT_TRUE(p->capabilities.has_value());
  EXPECT_EQ(*p->capabilities, (std::vector<std::string>{"CAP_CHOWN", "CAP_KILL"}));
  ASSERT_EQ(p->rlimits.size(), 1u);
  EXPECT_EQ(p->rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(p->rlimits[0].soft, 1024u);
  EXPECT_EQ(p->rlimits[0].hard, 4096u);
  // No capabilities object: unset (the zone's policy decides), not empty.
  auto plain = ParseProcessJson(R"({"args": ["sh"]})");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->capabilities.has_value());
  auto bad = ParseProcessJson(R"({"args": ["sh"], "rlimits": [{"type": "RLIMIT_NOFILE"}]})");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("process.rlimits"), std::string::npos);
  EXPECT_EQ(ParseProcessJson("[]").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CshimBundle, ExecProcessIdsAreValidAndDistinct) {
  EXPECT_EQ(ExecProcessId("web", "x1"), "web.x1");
  // CRI's ids are 64 hex characters each: too long together, so a digest of both.
  std::string task(64, 'a'), exec1(64, 'b'), exec2(64, 'c');
  std::string a = ExecProcessId(task, exec1), b = ExecProcessId(task, exec2);
  EXPECT_EQ(a.rfind("exec-", 0), 0u);
  EXPECT_LE(a.size(), 64u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, ExecProcessId(task, exec1));
  // A character rauhad refuses in ids is never passed through.
  EXPECT_EQ(ExecProcessId("web", "a/b").rfind("exec-", 0), 0u);
}

}  // namespace
}  // namespace rauha::cshim
