#include "rauhad/output_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace rauha {
namespace {

class OutputDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-outdir-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_.run_dir = dir_ + "/run";
    config_.state_dir = dir_ + "/state";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
  DaemonConfig config_;
};

TEST_F(OutputDirTest, AnOrdinaryDirectoryIsAccepted) {
  std::filesystem::create_directories(dir_ + "/out");
  EXPECT_TRUE(CheckOutputDir(dir_ + "/out", config_).ok());
  EXPECT_TRUE(CheckOutputDir(dir_ + "//out/./", config_).ok());
}

TEST_F(OutputDirTest, PlacesWhereAFileMeansSomethingAreRefused) {
  for (const std::string& bad :
       {std::string("/"), std::string("/etc"), std::string("/etc/cron.d"), std::string("/usr/lib"),
        std::string("/boot"), std::string("/run/rauha"), std::string("/var/lib/rauha"),
        std::string("/var/spool/cron"), std::string("//etc/"), std::string("/tmp/../etc"),
        std::string("relative/dir"), dir_ + "/run/zones", dir_ + "/state"}) {
    auto st = CheckOutputDir(bad, config_);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad << ": " << st;
    EXPECT_NE(st.message().find("output_dir"), absl::string_view::npos) << st;
  }
}

TEST_F(OutputDirTest, SymlinksAndMissingDirectoriesAreRefused) {
  std::filesystem::create_directories(dir_ + "/real");
  std::filesystem::create_directory_symlink(dir_ + "/real", dir_ + "/link");
  auto st = CheckOutputDir(dir_ + "/link", config_);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("symlink"), absl::string_view::npos) << st;
  std::filesystem::create_directories(dir_ + "/real/sub");
  EXPECT_EQ(CheckOutputDir(dir_ + "/link/sub", config_).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckOutputDir(dir_ + "/missing", config_).code(), absl::StatusCode::kNotFound);
  FILE* file = std::fopen((dir_ + "/f").c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fclose(file);
  EXPECT_EQ(CheckOutputDir(dir_ + "/f", config_).code(), absl::StatusCode::kInvalidArgument);
}

// The rules of every host path a request names (host_path.h) apply too.
TEST_F(OutputDirTest, HostPathRulesApply) {
  // A directory holding rauhad's run and state directories.
  auto st = CheckOutputDir(dir_, config_);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_NE(st.message().find("output_dir"), absl::string_view::npos) << st;
  EXPECT_NE(st.message().find("stdout and stderr"), absl::string_view::npos) << st;
  // A directory holding other users' files, itself.
  EXPECT_EQ(CheckOutputDir("/tmp", config_).code(), absl::StatusCode::kPermissionDenied);
  // --repo-root narrows repositories, not output.
  config_.repo_roots = {dir_ + "/repos"};
  std::filesystem::create_directories(dir_ + "/out");
  EXPECT_TRUE(CheckOutputDir(dir_ + "/out", config_).ok());
}

}  // namespace
}  // namespace rauha
