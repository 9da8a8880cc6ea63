// ttrpc framing: the exact header layout containerd's ttrpc uses, incremental decoding, and
// what happens to malformed and oversized frames.
#include "containerd-shim-rauha-v2/ttrpc/frame.h"

#include <gtest/gtest.h>

#include <string>

namespace rauha::ttrpc {
namespace {

TEST(TtrpcFrame, HeaderIsBigEndianLengthStreamTypeFlags) {
  auto frame = EncodeFrame(0x01020304, MessageType::kResponse, 0x05, "abc");
  ASSERT_TRUE(frame.ok()) << frame.status();
  EXPECT_EQ(*frame, std::string("\x00\x00\x00\x03\x01\x02\x03\x04\x02\x05"
                                "abc",
                                13));
}

TEST(TtrpcFrame, EncodeRefusesPayloadOverFourMiB) {
  auto frame = EncodeFrame(1, MessageType::kRequest, 0, std::string(kMaxPayload + 1, 'x'));
  EXPECT_EQ(frame.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(EncodeFrame(1, MessageType::kRequest, 0, std::string(kMaxPayload, 'x')).ok());
}

TEST(TtrpcFrame, DecodesByteByByteAndBackToBack) {
  std::string stream = *EncodeFrame(1, MessageType::kRequest, 0, "first") +
                       *EncodeFrame(3, MessageType::kRequest, 0, "") +
                       *EncodeFrame(5, MessageType::kData, kFlagRemoteClosed, "third");
  FrameDecoder decoder;
  std::vector<Frame> frames;
  for (char c : stream) {
    decoder.Feed(std::string_view(&c, 1));
    while (auto f = decoder.Next()) frames.push_back(std::move(*f));
  }
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].stream_id, 1u);
  EXPECT_EQ(frames[0].payload, "first");
  EXPECT_EQ(frames[1].stream_id, 3u);
  EXPECT_EQ(frames[1].payload, "");
  EXPECT_EQ(frames[2].type, static_cast<uint8_t>(MessageType::kData));
  EXPECT_EQ(frames[2].flags, kFlagRemoteClosed);
  EXPECT_EQ(frames[2].payload, "third");
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(TtrpcFrame, TruncatedFrameWaitsForTheRest) {
  std::string frame = *EncodeFrame(7, MessageType::kRequest, 0, "payload");
  FrameDecoder decoder;
  decoder.Feed(frame.substr(0, 9));  // not even a whole header
  EXPECT_FALSE(decoder.Next().has_value());
  decoder.Feed(frame.substr(9, 3));
  EXPECT_FALSE(decoder.Next().has_value());
  decoder.Feed(frame.substr(12));
  auto f = decoder.Next();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "payload");
}

TEST(TtrpcFrame, OversizedFrameIsSkippedWithoutBufferingAndTheNextOneDecodes) {
  // A header announcing 5 MiB, then that many bytes in 64 KiB pieces, then a normal frame.
  const uint32_t big = 5u << 20;
  std::string header("\x00\x50\x00\x00\x00\x00\x00\x09\x01\x00", 10);
  ASSERT_EQ(big, 0x00500000u);
  FrameDecoder decoder;
  decoder.Feed(header);
  EXPECT_FALSE(decoder.Next().has_value());  // skipping from here on
  std::optional<Frame> oversized;
  std::string chunk(64 * 1024, 'z');
  for (uint32_t sent = 0; sent < big; sent += chunk.size()) {
    decoder.Feed(chunk);
    EXPECT_LE(decoder.buffered(), kHeaderBytes) << "oversized payload must not be buffered";
    if (auto f = decoder.Next()) oversized = std::move(f);
  }
  ASSERT_TRUE(oversized.has_value());
  EXPECT_TRUE(oversized->oversized);
  EXPECT_EQ(oversized->stream_id, 9u);
  EXPECT_EQ(oversized->length, big);
  EXPECT_TRUE(oversized->payload.empty());
  decoder.Feed(*EncodeFrame(11, MessageType::kRequest, 0, "after"));
  auto next = decoder.Next();
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->oversized);
  EXPECT_EQ(next->stream_id, 11u);
  EXPECT_EQ(next->payload, "after");
}

TEST(TtrpcFrame, OversizedFrameArrivingWholeIsReportedAtOnce) {
  FrameDecoder decoder(/*max_payload=*/4);
  decoder.Feed(*EncodeFrame(3, MessageType::kRequest, 0, "12345"));
  decoder.Feed(*EncodeFrame(5, MessageType::kRequest, 0, "1234"));
  auto first = decoder.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->oversized);
  EXPECT_EQ(first->stream_id, 3u);
  auto second = decoder.Next();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->payload, "1234");
}

}  // namespace
}  // namespace rauha::ttrpc
