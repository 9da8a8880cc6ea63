#include "containerd-shim-rauha-v2/ttrpc/frame.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace rauha::ttrpc {
namespace {

void PutU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t GetU32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

}  // namespace

absl::StatusOr<std::string> EncodeFrame(uint32_t stream_id, MessageType type, uint8_t flags,
                                        std::string_view payload, uint32_t max_payload) {
  if (payload.size() > max_payload) {
    return absl::InvalidArgumentError(absl::StrCat("ttrpc message of ", payload.size(),
                                                   " bytes exceeds the limit of ", max_payload));
  }
  std::string out;
  out.reserve(kHeaderBytes + payload.size());
  PutU32(out, static_cast<uint32_t>(payload.size()));
  PutU32(out, stream_id);
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  out.append(payload);
  return out;
}

void FrameDecoder::Feed(std::string_view bytes) {
  if (skipping_) {
    uint64_t n = std::min<uint64_t>(skip_left_, bytes.size());
    skip_left_ -= n;
    bytes.remove_prefix(n);
  }
  if (offset_ > 0 && offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Frame> FrameDecoder::Next() {
  if (skipping_) {
    if (skip_left_ > 0) return std::nullopt;
    Frame done = std::move(*skipping_);
    skipping_.reset();
    return done;
  }
  if (buffered() < kHeaderBytes) return std::nullopt;
  const char* h = buffer_.data() + offset_;
  Frame frame;
  frame.length = GetU32(h);
  frame.stream_id = GetU32(h + 4);
  frame.type = static_cast<uint8_t>(h[8]);
  frame.flags = static_cast<uint8_t>(h[9]);
  if (frame.length > max_) {
    // Drop what of the payload is here already; Feed() discards the rest as it comes.
    offset_ += kHeaderBytes;
    uint64_t here = std::min<uint64_t>(frame.length, buffered());
    offset_ += here;
    skip_left_ = frame.length - here;
    frame.oversized = true;
    if (skip_left_ == 0) return frame;
    skipping_ = std::move(frame);
    return std::nullopt;
  }
  if (buffered() - kHeaderBytes < frame.length) return std::nullopt;
  frame.payload.assign(h + kHeaderBytes, frame.length);
  offset_ += kHeaderBytes + frame.length;
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  } else if (offset_ > (1u << 16) && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return frame;
}

}  // namespace rauha::ttrpc
