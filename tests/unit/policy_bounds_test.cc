// The bounds ParsePolicy checks before toml++ sees a policy (rauha-common/policy/prescan.h):
// the inputs that crashed rauhad and `rauha policy validate` (a 300 KB key of 150 000 dotted
// parts overflowed toml++ 3.3's stack), the other ways to make the parser recurse, and the
// strings and comments a scanner must not be fooled by.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "rauha-common/policy/policy.h"
#include "rauha-common/policy/prescan.h"
#include "rauha-common/strcat.h"
#include "tests/policy_error_location.h"

namespace rauha::policy {
namespace {

std::string Repeat(std::string_view part, size_t n) {
  std::string out;
  out.reserve(part.size() * n);
  for (size_t i = 0; i < n; ++i) out += part;
  return out;
}

void ExpectErrorAt(const std::string& toml, int line, int column, std::string_view needle) {
  auto parsed = ParsePolicy(toml, "t.toml");
  ASSERT_FALSE(parsed.ok()) << "accepted:\n" << ToCanonicalToml(*parsed);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  std::string message = ToStd(parsed.status().message());
  EXPECT_EQ(message.rfind(StrCat("t.toml:", line, ":", column, ": "), 0), 0u) << message;
  EXPECT_NE(message.find(needle), std::string::npos) << message;
}

// The reported crash: "a.a.a….a = 1" with 150 000 dots (300 KB), and the same as a header.
TEST(PolicyBounds, ThreeHundredKilobyteDottedKeyIsRefusedNotACrash) {
  std::string key = "a" + Repeat(".a", 150000);
  ExpectErrorAt(key + " = 1\n", 1, 65537, "longer than 65536 bytes");
  ExpectErrorAt("[" + key + "]\n", 1, 65537, "longer than 65536 bytes");
}

// Under the size limit, the same shape is refused by its depth, located at the key.
TEST(PolicyBounds, DeepDottedKeysAreRefusedAtTheKey) {
  std::string deep = "a" + Repeat(".a", 30000);  // 60 KB, inside the size limit
  ExpectErrorAt(deep + " = 1\n", 1, 1, "more than 8 dotted parts");
  ExpectErrorAt("[zone]\n[" + deep + "]\n", 2, 2, "more than 8 dotted parts");
  ExpectErrorAt("[[" + deep + "]]\n", 1, 3, "more than 8 dotted parts");
  ExpectErrorAt("x = {" + deep + " = 1}\n", 1, 6, "more than 8 dotted parts");
  ExpectErrorAt("  a . a . a . a . a . a . a . a . a = 1\n", 1, 3, "dotted parts");
  ExpectErrorAt("\"q\".\"q\".a.a.a.a.a.a.a = 1\n", 1, 1, "dotted parts");
  // Eight parts are below the bound: the policy schema is what refuses them.
  ExpectErrorAt("a.b.c.d.e.f.g.h = 1\n", 1, 1, "unknown table [a]");
}

TEST(PolicyBounds, DeepArraysAndInlineTablesAreRefused) {
  ExpectErrorAt("a = " + Repeat("[", 9) + Repeat("]", 9) + "\n", 1, 13, "nest more than 8");
  ExpectErrorAt("a = " + Repeat("{b = ", 9) + "1" + Repeat("}", 9) + "\n", 1, 45,
                "nest more than 8");
  // toml++ stops at 256 levels, but ~1 KB of stack per level is too much for a thread.
  ExpectErrorAt("a = " + Repeat("[", 255) + Repeat("]", 255) + "\n", 1, 13, "nest more than 8");
  ExpectErrorAt("[capabilities]\nallowed = [[[[[[[[]]]]]]]]\n", 2, 12, "got an array");
}

// Strings and comments are skipped as TOML reads them: their dots and brackets do not count,
// and a string's end is found exactly (escapes, quotes before a multi-line string's close).
TEST(PolicyBounds, StringsAndCommentsDoNotCountAndDoNotHideKeys) {
  std::string dots = Repeat(".a", 100);
  std::string brackets = Repeat("[{", 20);
  for (const std::string& text :
       {"# " + dots + brackets + "\n[zone]\nname = \"z\"\n",
        "[zone]\nname = \"z\" # " + brackets + "\n",
        "[filesystem]\nwritable_paths = [\"/x" + dots + "\", '/y" + dots + brackets + "']\n",
        "[filesystem]\nwritable_paths = [\"\"\"/x" + dots + "\n" + brackets + "\"\"\"]\n",
        "[filesystem]\nwritable_paths = ['''/x" + dots + "''']\n",
        "[filesystem]\nwritable_paths = [\"/x\\\"" + dots + "\"]\n",
        "[zone]\n\"" + dots + "\" = 1\n"}) {
    SCOPED_TRACE(text);
    auto bad = internal::Prescan(text);
    EXPECT_FALSE(bad) << bad->line << ":" << bad->column << ": " << bad->message;
  }
  // A multi-line string may end with up to two quotes before its closing three; what follows
  // is keys again, and counted.
  std::string after_quotes = "x = {a = \"\"\"q\"\"\"\"\", b" + Repeat(".b", 20) + " = 1}\n";
  auto bad = internal::Prescan(after_quotes);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->column, 21u) << bad->message;
  std::string after_literal = "x = {a = '''q''''', b" + Repeat(".b", 20) + " = 1}\n";
  bad = internal::Prescan(after_literal);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->column, 21u) << bad->message;
  // An escaped quote does not end a basic string; a literal string has no escapes.
  bad = internal::Prescan("x = 'a\\', b" + Repeat(".b", 20) + " = 1\n");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->column, 11u) << bad->message;
}

TEST(PolicyBounds, LongStringsAndManyKeysUpToTheSizeLimitParse) {
  std::string path = "/" + std::string(4000, 'p');
  std::string text = "[filesystem]\nwritable_paths = [";
  for (int i = 0; i < 8; ++i) text += StrCat("\"", path, i, "\", ");
  text += "]\n";
  auto parsed = ParsePolicy(text, "t.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->filesystem.writable_paths.size(), 8u);

  std::string padded = "[zone]\nname = \"z\"\n" + Repeat("# comment\n", 6000);
  ASSERT_LE(padded.size(), kMaxPolicyBytes);
  EXPECT_TRUE(ParsePolicy(padded).ok());
  padded += std::string(kMaxPolicyBytes - padded.size(), '\n');
  EXPECT_TRUE(ParsePolicy(padded).ok());
  // One byte more: located at that byte (every byte of the padding is a line of its own).
  int lines = static_cast<int>(std::count(padded.begin(), padded.end(), '\n'));
  ExpectErrorAt(padded + "#", lines + 1, 1, "longer than 65536 bytes");
}

// `rauha policy validate` and rauhad read files through LoadPolicyFile: no slurping past the
// limit, the same located error.
TEST(PolicyBounds, LoadPolicyFileRefusesAHugeFileWithALocatedError) {
  char path[] = "/tmp/rauha-policy-bounds-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "a" << Repeat(".a", 150000) << " = 1\n";
  auto parsed = LoadPolicyFile(path);
  std::remove(path);
  ASSERT_FALSE(parsed.ok());
  std::string message = ToStd(parsed.status().message());
  EXPECT_TRUE(rauha::testing::HasPolicyErrorLocation(message, path)) << message;
  EXPECT_NE(message.find("longer than 65536 bytes"), std::string::npos) << message;
}

// The fuzz corpus holds these inputs (tests/fuzz/policy_corpus/); CI runs them here too.
TEST(PolicyBounds, FuzzCorpusInputsGiveLocatedErrors) {
  std::string dir = StrCat(RAUHA_SOURCE_DIR, "/tests/fuzz/policy_corpus");
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    SCOPED_TRACE(entry.path().string());
    std::ifstream in(entry.path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = ParsePolicy(text, "corpus.toml");
    ASSERT_FALSE(parsed.ok()) << "every corpus input here is a hostile one";
    EXPECT_TRUE(
        rauha::testing::HasPolicyErrorLocation(ToStd(parsed.status().message()), "corpus.toml"))
        << parsed.status();
    ++files;
  }
  EXPECT_GE(files, 10);
}

}  // namespace
}  // namespace rauha::policy
