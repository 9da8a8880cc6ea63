// containerd-shim-rauha-v2: where a pod's zone takes its network namespace and policy from
// (config.json's linux.namespaces, annotation rauha.io/policy, runtime options' ConfigPath).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "containerd-shim-rauha-v2/bundle.h"
#include "containerd-shim-rauha-v2/zone_runtime.h"
#include "github.com/containerd/containerd/pkg/runtimeoptions/v1/api.pb.h"

namespace rauha::cshim {
namespace {

google::protobuf::Any RuntimeOptions(const std::string& config_path) {
  runtimeoptions::v1::Options o;
  o.set_type_url("rauha.policy.v1");
  o.set_config_path(config_path);
  google::protobuf::Any any;
  any.set_type_url("runtimeoptions.v1.Options");  // as containerd sends it: no prefix
  any.set_value(o.SerializeAsString());
  return any;
}

TEST(CshimPodZone, NetworkNamespacePathFromTheSpec) {
  auto sandbox = ParseBundleConfig(R"({"process": {"args": ["/pause"]},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"},
                             {"type": "network", "path": "/var/run/netns/cni-1234"}]}})");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  EXPECT_EQ(sandbox->netns_path, "/var/run/netns/cni-1234");
  // A new network namespace asked for (no path): none to join.
  auto own = ParseBundleConfig(R"({"process": {"args": ["x"]},
    "linux": {"namespaces": [{"type": "network"}]}})");
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->netns_path, "");
  auto bad = ParseBundleConfig(R"({"process": {"args": ["x"]},
    "linux": {"namespaces": [{"type": "network", "path": 7}]}})");
  EXPECT_NE(bad.status().message().find("linux.namespaces[network].path"), std::string::npos)
      << bad.status();
  EXPECT_EQ(ParseBundleConfig(R"({"process": {"args": ["x"]}, "linux": {"namespaces": {}}})")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

class PodPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-podpolicy-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/strict.toml") << "# preset\n";
    std::ofstream(dir_ + "/node.toml") << "# node policy\n";
    ::setenv("RAUHA_POLICY_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("RAUHA_POLICY_DIR");
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(PodPolicyTest, AnnotationThenConfigPathThenDefault) {
  Bundle annotated;
  annotated.annotations[kPolicyAnnotation] = "strict";
  auto p = PodPolicy(annotated, RuntimeOptions(dir_ + "/node.toml"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "# preset\n");
  Bundle plain;
  p = PodPolicy(plain, RuntimeOptions(dir_ + "/node.toml"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "# node policy\n");
  p = PodPolicy(plain, google::protobuf::Any());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "");
  p = PodPolicy(plain, RuntimeOptions(""));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "");
}

TEST_F(PodPolicyTest, BadSourcesAreClearErrors) {
  Bundle plain;
  auto relative = PodPolicy(plain, RuntimeOptions("node.toml"));
  EXPECT_EQ(relative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(relative.status().message().find("absolute"), std::string::npos);
  auto missing = PodPolicy(plain, RuntimeOptions(dir_ + "/nope.toml"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir_ + "/nope.toml"), std::string::npos);
  google::protobuf::Any other;
  other.set_type_url("containerd.runc.v1.Options");
  auto wrong_type = PodPolicy(plain, other);
  EXPECT_EQ(wrong_type.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_type.status().message().find("containerd.runc.v1.Options"), std::string::npos);
  Bundle unknown;
  unknown.annotations[kPolicyAnnotation] = "no-such-preset";
  EXPECT_EQ(PodPolicy(unknown, {}).status().code(), absl::StatusCode::kNotFound);
  Bundle traversal;
  traversal.annotations[kPolicyAnnotation] = "../etc/passwd";
  EXPECT_EQ(PodPolicy(traversal, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rauha::cshim
