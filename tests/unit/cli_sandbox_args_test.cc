#include "rauha-cli/sandbox_args.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace rauha::cli {
namespace {

TEST(SandboxArgsTest, SecondsTakeFractionsAndRoundUpToWholeMilliseconds) {
  EXPECT_EQ(*ParseSeconds("--timeout", "0.5"), 500u);
  EXPECT_EQ(*ParseSeconds("--timeout", "2"), 2000u);
  EXPECT_EQ(*ParseSeconds("--timeout", "0"), 0u);
  EXPECT_EQ(*ParseSeconds("--timeout", "0.0001"), 1u) << "above 0 never means 'no timeout'";
  EXPECT_EQ(*ParseSeconds("--timeout", "4294967295"), 4294967295000u);
  for (const char* bad : {"", "-1", "soon", "1s", "nan", "inf", "1e99", "0x10", "4294967296"}) {
    auto r = ParseSeconds("--timeout", bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("--timeout"), absl::string_view::npos);
  }
}

TEST(SandboxArgsTest, UserIsUidColonGidOrAName) {
  rauha::sandbox::v1::RunSandboxRequest req;
  ASSERT_TRUE(ParseUser("1000", req).ok());
  EXPECT_EQ(req.uid(), 1000u);
  EXPECT_FALSE(req.has_gid()) << "rauhad makes GID = UID";
  req.Clear();
  ASSERT_TRUE(ParseUser("1000:100", req).ok());
  EXPECT_EQ(req.gid(), 100u);
  req.Clear();
  ASSERT_TRUE(ParseUser("0", req).ok());
  EXPECT_TRUE(req.has_uid());
  req.Clear();
  ASSERT_TRUE(ParseUser("root", req).ok()) << "a name of this host";
  EXPECT_EQ(req.uid(), 0u);
  EXPECT_EQ(req.gid(), 0u);
  for (const char* bad : {"", ":", "1000:", ":5", "a:b", "1000:x", "4294967295", "1:4294967295",
                          "-1", "99999999999", "no-such-user-rauha"}) {
    req.Clear();
    auto st = ParseUser(bad, req);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find("--user"), absl::string_view::npos);
  }
}

TEST(SandboxArgsTest, OutputLimitIsOneByteToOneMebibyte) {
  EXPECT_EQ(*ParseOutputLimit("1"), 1u);
  EXPECT_EQ(*ParseOutputLimit("64Ki"), 65536u);
  EXPECT_EQ(*ParseOutputLimit("1Mi"), kMaxOutputLimit);
  EXPECT_EQ(*ParseOutputLimit("1048576"), kMaxOutputLimit);
  for (const char* bad : {"0", "1048577", "2Mi", "lots", ""}) {
    EXPECT_EQ(ParseOutputLimit(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(SandboxArgsTest, StdinIsReadToEofWithinTheBound) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_EQ(::write(fds[1], "abc\0\xff", 5), 5);
  ::close(fds[1]);
  auto data = ReadStdin(fds[0]);
  ::close(fds[0]);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, std::string("abc\0\xff", 5));

  FILE* big = std::tmpfile();
  ASSERT_NE(big, nullptr);
  std::string chunk(kMaxStdinBytes + 1, 'x');
  ASSERT_EQ(std::fwrite(chunk.data(), 1, chunk.size(), big), chunk.size());
  std::fflush(big);
  std::rewind(big);
  EXPECT_EQ(ReadStdin(fileno(big)).status().code(), absl::StatusCode::kFailedPrecondition);
  std::fclose(big);
}

// `rauha sandbox --zone z stray` said only that --zone was not expected, then "Put the command
// after --", which was not the problem: the zone is --name.
TEST(SandboxArgsTest, AnUnknownOptionBeforeTheCommandIsNamedWithItsSpelling) {
  UsageError e =
      UnknownSandboxOptions({"sandbox", "--zone", "z", "stray"}, {"--zone"}, {"z", "stray"});
  EXPECT_EQ(e.error, "sandbox: unknown option --zone; the zone to run in is --name ZONE");
  EXPECT_EQ(e.hint, "Run 'rauha sandbox --help' for its options.");
  e = UnknownSandboxOptions({"--socket", "/x", "sandbox", "--zone=z", "--", "true"}, {"--zone=z"},
                            {});
  EXPECT_EQ(e.error, "sandbox: unknown option --zone=z; the zone to run in is --name ZONE");
  e = UnknownSandboxOptions({"sandbox", "--bogus"}, {"--bogus"}, {});
  EXPECT_EQ(e.error, "sandbox: unknown option --bogus");
}

TEST(SandboxArgsTest, AnUnknownOptionAfterTheCommandIsTheCommandsAndGoesAfterDashes) {
  UsageError e = UnknownSandboxOptions({"sandbox", "--name", "z", "ls", "-la"}, {"-la"}, {"ls"});
  EXPECT_EQ(e.error, "sandbox: -la follows the command ls and is not an option of rauha sandbox");
  EXPECT_EQ(e.hint, "Put the command after --: rauha sandbox [OPTIONS] -- CMD ARGS...");
}

TEST(SandboxArgsTest, ACommandOnBothSidesOfDashesIsAUsageError) {
  EXPECT_EQ(CommandOnBothSidesOfDashes({"stray"}, {"/bin/true"}),
            "sandbox: unexpected argument 'stray' before --: put the whole command after -- "
            "(rauha sandbox [OPTIONS] -- CMD ARGS...)");
  EXPECT_EQ(CommandOnBothSidesOfDashes({}, {"/bin/true"}), "");
  EXPECT_EQ(CommandOnBothSidesOfDashes({"/bin/true"}, {}), "");
}

}  // namespace
}  // namespace rauha::cli
