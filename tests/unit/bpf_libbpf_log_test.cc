// libbpf's messages: the memlock hint never reaches users; captures collect a thread's lines.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include "rauhad/linux/bpf/libbpf_log.h"

namespace rauha::bpf {
namespace {

TEST(BpfLibbpfLogTest, MemlockHintIsRecognised) {
  EXPECT_TRUE(
      IsMemlockHint("Error in bpf_object__probe_loading():Operation not permitted(1). "
                    "Couldn't load trivial BPF program. Make sure your kernel supports "
                    "BPF (CONFIG_BPF_SYSCALL=y) and/or that RLIMIT_MEMLOCK is set to big "
                    "enough value."));
  EXPECT_TRUE(IsMemlockHint("try `ulimit -l unlimited`"));
  EXPECT_FALSE(IsMemlockHint("prog 'x': BPF program load failed: Permission denied"));
}

TEST(BpfLibbpfLogTest, CaptureCollectsWarningsOfThisThreadOnly) {
  InstallLibbpfLog();
  LibbpfCapture capture;
  // A missing object file makes libbpf warn through the print callback.
  bpf_object* obj = bpf_object__open("/nonexistent/rauha-test.bpf.o");
  EXPECT_EQ(obj, nullptr);
  ASSERT_FALSE(capture.lines().empty());
  bool named = false;
  for (const std::string& l : capture.lines())
    named |= l.find("/nonexistent/rauha-test.bpf.o") != std::string::npos;
  EXPECT_TRUE(named);
  for (const std::string& l : capture.lines()) EXPECT_EQ(l.back() == '\n', false);
}

}  // namespace
}  // namespace rauha::bpf
