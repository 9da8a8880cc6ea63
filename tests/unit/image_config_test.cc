// The image config fields a task honours, and User resolved through the image's own
// /etc/passwd and /etc/group across layers (the topmost layer holding the file decides).
#include "rauhad/image/image_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace rauha::image {
namespace {

namespace fs = std::filesystem;

TEST(ImageConfigTest, ReadsEntrypointCmdEnvWorkingDirUser) {
  auto c =
      ParseImageConfig(R"({"architecture":"amd64","config":{"Entrypoint":["/e"],"Cmd":["a","b"],)"
                       R"("Env":["PATH=/bin","X=1"],"WorkingDir":"/srv","User":"app:staff"}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->entrypoint, (std::vector<std::string>{"/e"}));
  EXPECT_EQ(c->cmd, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c->env, (std::vector<std::string>{"PATH=/bin", "X=1"}));
  EXPECT_EQ(c->working_dir, "/srv");
  EXPECT_EQ(c->user, "app:staff");
  // No config at all (a scratch image) is fine; nulls too.
  EXPECT_TRUE(ParseImageConfig(R"({"os":"linux"})").ok());
  EXPECT_TRUE(ParseImageConfig(R"({"config":{"Cmd":null,"User":null}})").ok());
}

TEST(ImageConfigTest, WrongTypesAreInvalidArgumentNamingTheField) {
  auto bad = ParseImageConfig(R"({"config":{"Cmd":"sh -c x"}})");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("config.Cmd"), std::string::npos) << bad.status();
  EXPECT_EQ(ParseImageConfig("not json").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseImageConfig(R"({"config":{"User":7}})").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ImageConfigTest, ExposedPortsAreReadInPortOrderAsDockerShowsThem) {
  auto c = ParseImageConfig(
      R"({"config":{"ExposedPorts":{"8080/tcp":{},"53/udp":{},"443":{},"53/TCP":{},"9/sctp":{}}}})");
  ASSERT_TRUE(c.ok()) << c.status();
  // A bare port is tcp (docker's rule); "53/TCP" and "53/tcp" are one port.
  EXPECT_EQ(c->exposed_ports,
            (std::vector<std::string>{"9/sctp", "53/tcp", "53/udp", "443/tcp", "8080/tcp"}));
  EXPECT_TRUE(ParseImageConfig(R"({"config":{"ExposedPorts":null}})")->exposed_ports.empty());
  EXPECT_TRUE(ParseImageConfig(R"({"config":{"Cmd":["x"]}})")->exposed_ports.empty());
  for (const char* bad :
       {R"({"config":{"ExposedPorts":["80/tcp"]}})", R"({"config":{"ExposedPorts":{"0/tcp":{}}}})",
        R"({"config":{"ExposedPorts":{"65536/tcp":{}}}})",
        R"({"config":{"ExposedPorts":{"80/icmp":{}}}})",
        R"({"config":{"ExposedPorts":{"http/tcp":{}}}})",
        R"({"config":{"ExposedPorts":{"8000-8010/tcp":{}}}})",
        R"({"config":{"ExposedPorts":{"":{}}}})"}) {
    auto st = ParseImageConfig(bad).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find("ExposedPorts"), std::string::npos) << st;
  }
}

class ImageUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-image-user-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/lower/etc");
    fs::create_directories(dir_ + "/upper/etc");
    std::ofstream(dir_ + "/lower/etc/passwd") << "root:x:0:0::/root:/bin/sh\n";
    std::ofstream(dir_ + "/upper/etc/passwd")
        << "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
    std::ofstream(dir_ + "/lower/etc/group") << "root:x:0:\nstaff:x:50:\n";
    layers_ = {dir_ + "/upper", dir_ + "/lower"};
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
  std::vector<std::string> layers_;
};

TEST_F(ImageUserTest, NamesAndNumbersResolveThroughTheTopmostFile) {
  auto root = ResolveImageUser("", layers_);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->uid, 0u);
  auto app = ResolveImageUser("app", layers_);
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(app->uid, 1000u);
  EXPECT_EQ(app->gid, 1001u);
  auto with_group = ResolveImageUser("app:staff", layers_);
  ASSERT_TRUE(with_group.ok()) << with_group.status();
  EXPECT_EQ(with_group->gid, 50u) << "etc/group from the lower layer (the upper has none)";
  auto numeric = ResolveImageUser("1000", layers_);
  ASSERT_TRUE(numeric.ok());
  EXPECT_EQ(numeric->gid, 1001u) << "a uid alone takes its passwd group";
  auto both = ResolveImageUser("42:43", layers_);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->uid, 42u);
  EXPECT_EQ(both->gid, 43u);
  // Only the lower layer's passwd: "app" is unknown there.
  auto unknown = ResolveImageUser("app", {dir_ + "/lower"});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("\"app\""), std::string::npos);
  EXPECT_EQ(ResolveImageUser("app:nogroup", layers_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rauha::image
