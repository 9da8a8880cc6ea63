// CommandWord: main() builds the options of this command alone, so it must name the command
// CLI11 will run, or give up ("") wherever the command is not certain before parsing.
#include "rauha-cli/command_word.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace rauha::cli {
namespace {

class CommandWordTest : public ::testing::Test {
 protected:
  CommandWordTest() {
    app_.add_option("--socket", socket_);
    app_.add_option("--timeout-connect", seconds_);
    app_.add_flag("--quiet", quiet_);
    app_.add_option("--pair", pair_)->expected(2);
  }
  std::string Word(std::vector<std::string> args) const { return CommandWord(app_, args); }

  CLI::App app_{"test", "rauha"};
  std::string socket_;
  double seconds_ = 5;
  bool quiet_ = false;
  std::vector<std::string> pair_;
};

TEST_F(CommandWordTest, TheFirstWordAfterGlobalOptionsIsTheCommand) {
  EXPECT_EQ(Word({"version"}), "version");
  EXPECT_EQ(Word({"sandbox", "--zone", "z", "--", "true"}), "sandbox");
  EXPECT_EQ(Word({"--socket", "/s", "version"}), "version");
  EXPECT_EQ(Word({"--socket=/s", "--timeout-connect", "2", "zone", "ls"}), "zone");
  EXPECT_EQ(Word({"--quiet", "info"}), "info");
  EXPECT_EQ(Word({"bogus", "version"}), "bogus") << "main() checks that it names a command";
}

TEST_F(CommandWordTest, AnOptionsValueIsNeverTheCommandEvenWhenItLooksLikeOne) {
  // CLI11 gives an option of one value the next word, whatever it is.
  EXPECT_EQ(Word({"--socket", "version", "zone"}), "zone");
  EXPECT_EQ(Word({"--socket", "-x", "zone"}), "zone");
  EXPECT_EQ(Word({"--socket=", "version", "zone"}), "zone") << "an empty =value takes the next";
  EXPECT_EQ(Word({"--socket", "version"}), "");
  EXPECT_EQ(Word({"--socket"}), "");
}

TEST_F(CommandWordTest, NothingIsCertainAfterHelpUnknownOptionsOrTheSeparator) {
  EXPECT_EQ(Word({}), "");
  EXPECT_EQ(Word({"--help", "version"}), "") << "rauha --help lists every command";
  EXPECT_EQ(Word({"-h", "version"}), "");
  EXPECT_EQ(Word({"--bogus", "version"}), "");
  EXPECT_EQ(Word({"-x", "version"}), "");
  EXPECT_EQ(Word({"--", "version"}), "");
  EXPECT_EQ(Word({"--pair", "a", "b", "version"}), "") << "only options of one value are known";
}

}  // namespace
}  // namespace rauha::cli
