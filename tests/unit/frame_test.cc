#include "rauha-common/frame.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>

#include "rauha-common/fd.h"

namespace rauha::frame {
namespace {

std::string Header(uint32_t len) {
  std::string h(4, '\0');
  h[0] = static_cast<char>(len >> 24);
  h[1] = static_cast<char>(len >> 16);
  h[2] = static_cast<char>(len >> 8);
  h[3] = static_cast<char>(len);
  return h;
}

TEST(FrameTest, RoundTripsAnObject) {
  auto encoded = Encode({{"id", 1}, {"method", "hello"}});
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded->substr(0, 4), Header(static_cast<uint32_t>(encoded->size() - 4)));
  Decoder d;
  d.Feed(*encoded);
  auto next = d.Next();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((**next)["method"], "hello");
  auto none = d.Next();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(FrameTest, DecodesByteByByteAndBackToBack) {
  std::string stream;
  for (int i = 0; i < 5; ++i) stream += *Encode({{"id", i}});
  Decoder d;
  int seen = 0;
  for (char c : stream) {
    d.Feed(std::string_view(&c, 1));
    while (true) {
      auto next = d.Next();
      ASSERT_TRUE(next.ok());
      if (!next->has_value()) break;
      EXPECT_EQ((**next)["id"], seen);
      ++seen;
    }
  }
  EXPECT_EQ(seen, 5);
}

TEST(FrameTest, OversizedFrameIsRefusedFromItsHeader) {
  Decoder d;
  d.Feed(Header(kMaxFrameBytes + 1));
  auto next = d.Next();
  EXPECT_EQ(next.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(next.status().message().find("exceeds"), absl::string_view::npos);
}

TEST(FrameTest, GarbageEmptyAndNonObjectsAreRefused) {
  for (std::string_view body : {"{not json", "[1,2]", "\"str\"", "42", "", "{\"a\":\"\xff\"}"}) {
    Decoder d;
    d.Feed(Header(static_cast<uint32_t>(body.size())) + std::string(body));
    auto next = d.Next();
    EXPECT_EQ(next.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(FrameTest, EncodeRefusesNonObjectsAndReplacesInvalidUtf8) {
  EXPECT_FALSE(Encode(nlohmann::json::array()).ok());
  auto e = Encode({{"out", std::string("a\xff"
                                       "b")}});
  ASSERT_TRUE(e.ok());
  auto body = DecodeBody(e->substr(4));
  ASSERT_TRUE(body.ok());
  EXPECT_EQ((*body)["out"],
            "a\xEF\xBF\xBD"
            "b");
}

TEST(FrameTest, EncodeRefusesOversizedMessages) {
  std::string big(kMaxFrameBytes, 'x');
  EXPECT_EQ(Encode({{"big", big}}).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(FrameTest, SocketHelpersRoundTripAndReportClose) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  ASSERT_TRUE(WriteFrame(a.get(), {{"x", 1}}).ok());
  auto got = ReadFrame(b.get(), 1000);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["x"], 1);
  EXPECT_EQ(ReadFrame(b.get(), 50).status().code(), absl::StatusCode::kDeadlineExceeded);
  a.reset();
  EXPECT_EQ(ReadFrame(b.get(), 1000).status().code(), absl::StatusCode::kUnavailable);
}

TEST(FrameTest, RandomBytesNeverCrashTheDecoder) {
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    Decoder d(1 << 16);
    std::string junk(rng() % 64, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (round % 3 == 0) junk = Header(static_cast<uint32_t>(junk.size())) + junk;
    d.Feed(junk);
    for (int i = 0; i < 4; ++i) {
      auto next = d.Next();
      if (!next.ok() || !next->has_value()) break;
      EXPECT_TRUE((**next).is_object());
    }
  }
}

}  // namespace
}  // namespace rauha::frame
