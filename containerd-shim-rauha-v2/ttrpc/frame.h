// ttrpc framing (github.com/containerd/ttrpc channel.go): a 10-byte big-endian header
//   uint32 length (of the payload only), uint32 stream_id, uint8 type, uint8 flags
// then `length` bytes of payload (a protobuf Request, Response or stream data).
// Payloads over kMaxPayload are not buffered: the decoder skips them and reports the frame as
// oversized, so the reader can answer ResourceExhausted on that stream and carry on, as
// containerd's own ttrpc does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rauha::ttrpc {

inline constexpr size_t kHeaderBytes = 10;
inline constexpr uint32_t kMaxPayload = 4u << 20;

enum class MessageType : uint8_t { kRequest = 1, kResponse = 2, kData = 3 };

// Flags of a data frame (ttrpc streaming); requests and responses carry none.
inline constexpr uint8_t kFlagRemoteClosed = 0x1;
inline constexpr uint8_t kFlagRemoteOpen = 0x2;
inline constexpr uint8_t kFlagNoData = 0x4;

struct Frame {
  uint32_t stream_id = 0;
  uint8_t type = 0;  // a MessageType, or a value a newer peer sent (callers ignore those)
  uint8_t flags = 0;
  bool oversized = false;  // payload longer than the limit: skipped, `payload` empty
  uint32_t length = 0;     // the header's length (also when oversized)
  std::string payload;
};

// Header and payload; InvalidArgument when the payload exceeds `max_payload` (a peer that
// agreed to more, e.g. rauha's CLI for a RunSandbox result, may pass a larger one).
absl::StatusOr<std::string> EncodeFrame(uint32_t stream_id, MessageType type, uint8_t flags,
                                        std::string_view payload,
                                        uint32_t max_payload = kMaxPayload);

// Incremental decoder over a byte stream: Feed() what arrived, then Next() until nullopt.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_payload = kMaxPayload) : max_(max_payload) {}
  void Feed(std::string_view bytes);
  std::optional<Frame> Next();
  // Bytes held for a frame not complete yet (never more than a header plus max_payload).
  size_t buffered() const { return buffer_.size() - offset_; }

 private:
  uint32_t max_;
  std::string buffer_;
  size_t offset_ = 0;
  // Set while the payload of an oversized frame is being skipped.
  std::optional<Frame> skipping_;
  uint64_t skip_left_ = 0;
};

}  // namespace rauha::ttrpc
