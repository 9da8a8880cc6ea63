// rauhad <-> rauha-shim framing: each frame is a 4-byte big-endian length followed by that
// many bytes of one UTF-8 JSON object. Frames over kMaxFrameBytes, empty frames, invalid
// JSON and non-objects are refused; a reader that sees one closes the connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rauha::frame {

inline constexpr uint32_t kMaxFrameBytes = 16u << 20;

// Serialises `message` (invalid UTF-8 in strings is replaced by U+FFFD) with its header.
absl::StatusOr<std::string> Encode(const nlohmann::json& message);

// Parses one frame body (no header) into a JSON object.
absl::StatusOr<nlohmann::json> DecodeBody(std::string_view body);

// Incremental decoder for a byte stream: Feed() what arrived, then call Next() until it
// returns nullopt. Once Next() has returned an error the stream is unusable.
class Decoder {
 public:
  explicit Decoder(uint32_t max_frame_bytes = kMaxFrameBytes) : max_(max_frame_bytes) {}
  void Feed(std::string_view bytes) { buffer_.append(bytes); }
  absl::StatusOr<std::optional<nlohmann::json>> Next();
  size_t buffered() const { return buffer_.size(); }

 private:
  uint32_t max_;
  std::string buffer_;
  size_t offset_ = 0;
};

// Blocking helpers for a connected stream socket. ReadFrame waits at most `timeout_ms`
// (-1: forever) for the whole frame; EOF before a header is Unavailable("connection closed").
absl::Status WriteFrame(int fd, const nlohmann::json& message);
// Writes frames Encode made (several at once: one write for a pipelined pair of requests).
absl::Status WriteEncoded(int fd, std::string_view frames);
absl::StatusOr<nlohmann::json> ReadFrame(int fd, int timeout_ms = -1);

}  // namespace rauha::frame
