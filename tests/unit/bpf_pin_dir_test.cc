// The default bpffs directory of a rauhad instance, derived from its state directory.
#include "rauhad/linux/bpf/pin_dir.h"

#include <gtest/gtest.h>

namespace rauha::bpf {
namespace {

TEST(DefaultPinDir, ReadableNameBelowSysFsBpfRauha) {
  std::string d = DefaultPinDir("/var/lib/rauha-unit-test-missing");
  EXPECT_EQ(d.rfind("/sys/fs/bpf/rauha/var-lib-rauha-unit-test-missing-", 0), 0u) << d;
  EXPECT_EQ(d.size(), std::string("/sys/fs/bpf/rauha/var-lib-rauha-unit-test-missing-").size() + 8);
}

TEST(DefaultPinDir, NoDotsBecauseBpffsRefusesThem) {
  std::string d = DefaultPinDir("/tmp/state.d/x..y");
  EXPECT_EQ(d.find('.'), std::string::npos) << d;
}

TEST(DefaultPinDir, SameDirectorySpelledTwoWaysGetsOnePinDir) {
  EXPECT_EQ(DefaultPinDir("/tmp/rauha-state-unit"), DefaultPinDir("/tmp/rauha-state-unit/"));
  EXPECT_EQ(DefaultPinDir("/tmp/rauha-state-unit"), DefaultPinDir("/tmp/./rauha-state-unit"));
}

TEST(DefaultPinDir, DirectoriesThatReadAlikeStayApart) {
  // Both read "a-b-c": the hash of the full path keeps their pins apart.
  EXPECT_NE(DefaultPinDir("/a/b-c"), DefaultPinDir("/a-b/c"));
}

TEST(DefaultPinDir, LongStateDirsStayWithinANameBpffsAccepts) {
  std::string d = DefaultPinDir("/" + std::string(400, 'x'));
  std::string name = d.substr(std::string("/sys/fs/bpf/rauha/").size());
  EXPECT_LE(name.size(), 255u);
}

}  // namespace
}  // namespace rauha::bpf
