// rauhad/host_path: which host directories a request may expose to a zone. Runs unprivileged
// against this machine's real file system (a temp directory for the cases that need files).
#include "rauhad/host_path.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace rauha {
namespace {

class HostPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-hostpath-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = std::filesystem::canonical(tmpl).string();
    std::filesystem::create_directories(dir_ + "/repo/src");
    std::filesystem::create_directories(dir_ + "/daemon/run");
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  HostPathRules Rules() const {
    return {{}, {dir_ + "/daemon/rauhad.sock", dir_ + "/daemon/run", dir_ + "/daemon/state"}};
  }
  absl::StatusCode Code(const std::string& path, const HostPathRules& rules) {
    auto r = OpenExposableDirectory("repo_path", path, rules);
    if (!r.ok()) last_message_ = std::string(r.status().message());
    return r.status().code();
  }

  std::string dir_;
  std::string last_message_;
};

TEST_F(HostPathTest, ProjectDirectoryIsAccepted) {
  auto r = OpenExposableDirectory("repo_path", dir_ + "/repo", Rules());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->path, dir_ + "/repo");
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/repo").c_str(), &st), 0);
  EXPECT_EQ(r->identity.dev, st.st_dev);
  EXPECT_EQ(r->identity.ino, st.st_ino);
  EXPECT_TRUE(r->fd.valid());
}

TEST_F(HostPathTest, HostRootAndSystemDirectoriesAreRefused) {
  EXPECT_EQ(Code("/", Rules()), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(last_message_.find("host's root"), std::string::npos) << last_message_;
  for (const char* p : {"/etc", "/etc/ssl", "/proc", "/proc/1", "/sys", "/dev", "/usr",
                        "/usr/share", "/run", "/var/lib", "/boot"}) {
    if (!std::filesystem::is_directory(p)) continue;
    EXPECT_EQ(Code(p, Rules()), absl::StatusCode::kPermissionDenied) << p;
  }
  EXPECT_EQ(Code("/var", Rules()), absl::StatusCode::kPermissionDenied);  // holds /var/lib
}

TEST_F(HostPathTest, BroadDirectoriesAreRefusedButNotWhatIsBeneath) {
  EXPECT_EQ(Code("/tmp", Rules()), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code(dir_ + "/repo/src", Rules()), absl::StatusCode::kOk) << last_message_;
}

TEST_F(HostPathTest, RauhadsFilesAndTheirAncestorsAreRefused) {
  // Holds the socket and the run and state dirs.
  EXPECT_EQ(Code(dir_ + "/daemon", Rules()), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(last_message_.find("rauhad's"), std::string::npos) << last_message_;
  EXPECT_EQ(Code(dir_, Rules()), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code(dir_ + "/daemon/run", Rules()), absl::StatusCode::kPermissionDenied);
  std::filesystem::create_directories(dir_ + "/daemon/run/zones");
  EXPECT_EQ(Code(dir_ + "/daemon/run/zones", Rules()), absl::StatusCode::kPermissionDenied);
}

TEST_F(HostPathTest, SymlinksAnywhereOnThePathAreRefused) {
  std::filesystem::create_directory_symlink("/etc", dir_ + "/etc-link");
  std::filesystem::create_directory_symlink(dir_ + "/repo", dir_ + "/repo-link");
  EXPECT_EQ(Code(dir_ + "/etc-link", Rules()), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(last_message_.find("symlink"), std::string::npos) << last_message_;
  EXPECT_EQ(Code(dir_ + "/repo-link", Rules()), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(dir_ + "/repo-link/src", Rules()), absl::StatusCode::kInvalidArgument);
}

TEST_F(HostPathTest, MalformedAndMissingPathsAreRefused) {
  EXPECT_EQ(Code("relative", Rules()), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(dir_ + "/repo/../daemon", Rules()), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(dir_ + "//repo", Rules()), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(dir_ + "/missing", Rules()), absl::StatusCode::kNotFound);
  ::close(::creat((dir_ + "/repo/file").c_str(), 0600));
  EXPECT_EQ(Code(dir_ + "/repo/file", Rules()), absl::StatusCode::kInvalidArgument);
}

TEST_F(HostPathTest, RepoRootsNarrowWhatIsAllowed) {
  HostPathRules rules = Rules();
  rules.roots = {dir_ + "/repo"};
  EXPECT_EQ(Code(dir_ + "/repo", rules), absl::StatusCode::kOk) << last_message_;
  EXPECT_EQ(Code(dir_ + "/repo/src", rules), absl::StatusCode::kOk) << last_message_;
  std::filesystem::create_directories(dir_ + "/repository");  // a prefix, not beneath
  EXPECT_EQ(Code(dir_ + "/repository", rules), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(last_message_.find("--repo-root"), std::string::npos) << last_message_;
}

TEST(HostPathPrivilegedTest, ExemptFromTheRulesButMustExist) {
  auto root = OpenDirectoryForPrivilegedZone("repo_path", "/");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->path, "/");
  EXPECT_EQ(OpenDirectoryForPrivilegedZone("repo_path", "/definitely/not/here").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace rauha
