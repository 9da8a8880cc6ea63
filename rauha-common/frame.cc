#include "rauha-common/frame.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::frame {
namespace {

uint32_t LoadBigEndian(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

absl::Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOTSOCK) {
        n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
      }
      if (n < 0) return ErrnoStatus(errno, "writing frame");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Reads exactly `len` bytes before `deadline` (steady clock ms; <0 = none).
absl::Status ReadExact(int fd, char* out, size_t len, int64_t deadline_ms, bool* eof_at_start) {
  size_t got = 0;
  while (got < len) {
    int wait = -1;
    if (deadline_ms >= 0) {
      int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count();
      if (now >= deadline_ms) return absl::DeadlineExceededError("timed out reading frame");
      wait = static_cast<int>(deadline_ms - now);
    }
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, wait);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll");
    }
    if (r == 0) return absl::DeadlineExceededError("timed out reading frame");
    ssize_t n = ::read(fd, out + got, len - got);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoStatus(errno, "reading frame");
    }
    if (n == 0) {
      if (got == 0 && eof_at_start) *eof_at_start = true;
      return absl::UnavailableError(got == 0 ? "connection closed"
                                             : "connection closed in the middle of a frame");
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> Encode(const nlohmann::json& message) {
  if (!message.is_object()) return absl::InvalidArgumentError("a frame must hold a JSON object");
  std::string body = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (body.size() > kMaxFrameBytes) {
    return absl::ResourceExhaustedError(
        StrCat("frame of ", body.size(), " bytes exceeds the limit of ", kMaxFrameBytes));
  }
  std::string out(4, '\0');
  uint32_t len = static_cast<uint32_t>(body.size());
  out[0] = static_cast<char>(len >> 24);
  out[1] = static_cast<char>(len >> 16);
  out[2] = static_cast<char>(len >> 8);
  out[3] = static_cast<char>(len);
  out += body;
  return out;
}

absl::StatusOr<nlohmann::json> DecodeBody(std::string_view body) {
  if (body.empty()) return absl::InvalidArgumentError("empty frame");
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("frame is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("frame is not a JSON object");
  return j;
}

absl::StatusOr<std::optional<nlohmann::json>> Decoder::Next() {
  size_t avail = buffer_.size() - offset_;
  if (avail < 4) return std::optional<nlohmann::json>();
  uint32_t len = LoadBigEndian(buffer_.data() + offset_);
  if (len > max_) {
    return absl::ResourceExhaustedError(
        StrCat("frame of ", len, " bytes exceeds the limit of ", max_));
  }
  if (avail - 4 < len) return std::optional<nlohmann::json>();
  std::string_view body(buffer_.data() + offset_ + 4, len);
  offset_ += 4 + len;
  auto decoded = DecodeBody(body);
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  } else if (offset_ > (1u << 20)) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  if (!decoded.ok()) return decoded.status();
  return std::optional<nlohmann::json>(std::move(*decoded));
}

absl::Status WriteEncoded(int fd, std::string_view frames) { return WriteAll(fd, frames); }

absl::Status WriteFrame(int fd, const nlohmann::json& message) {
  auto encoded = Encode(message);
  if (!encoded.ok()) return encoded.status();
  return WriteAll(fd, *encoded);
}

absl::StatusOr<nlohmann::json> ReadFrame(int fd, int timeout_ms) {
  int64_t deadline = -1;
  if (timeout_ms >= 0) {
    deadline = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
                   .count() +
               timeout_ms;
  }
  char header[4];
  bool eof = false;
  RAUHA_RETURN_IF_ERROR(ReadExact(fd, header, 4, deadline, &eof));
  uint32_t len = LoadBigEndian(header);
  if (len > kMaxFrameBytes) {
    return absl::ResourceExhaustedError(
        StrCat("frame of ", len, " bytes exceeds the limit of ", kMaxFrameBytes));
  }
  std::string body(len, '\0');
  RAUHA_RETURN_IF_ERROR(ReadExact(fd, body.data(), len, deadline, nullptr));
  return DecodeBody(body);
}

}  // namespace rauha::frame
