#include "rauhad/egress/splice_pipe.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>

#include "rauha-common/errors.h"

namespace rauha::egress {

absl::StatusOr<SplicePipe> SplicePipe::Open(size_t capacity) {
  int p[2];
  if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2 (splice relay)");
  UniqueFd r(p[0]), w(p[1]);
  // F_SETPIPE_SZ rounds up to a power of two pages; a refusal (pipe-user-pages limits) keeps
  // the default, which F_GETPIPE_SZ reports.
  int size = ::fcntl(w.get(), F_SETPIPE_SZ, static_cast<int>(capacity));
  if (size < 0) size = ::fcntl(w.get(), F_GETPIPE_SZ);
  if (size <= 0) return ErrnoStatus(errno, "F_GETPIPE_SZ (splice relay)");
  return SplicePipe(std::move(r), std::move(w), static_cast<size_t>(size));
}

SplicePipe::Moved SplicePipe::Pump(int from, int to, bool read, bool write, uint64_t max_written,
                                   uint64_t budget) {
  Moved m;
  for (;;) {
    bool progressed = false;
    if (read && pending_ < capacity_ && !full_) {
      ssize_t n = ::splice(from, nullptr, write_.get(), nullptr, capacity_ - pending_,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        pending_ += static_cast<size_t>(n);
        progressed = true;
      } else if (n == 0) {
        m.eof = true;
        read = false;
      } else if (errno == EAGAIN) {
        // The socket is empty, or the pipe's slots are: only the second is worth remembering,
        // and only while something is in the pipe can it be the case.
        full_ = pending_ > 0;
      } else if (errno != EINTR) {
        m.error = errno;
        return m;
      }
    }
    uint64_t may = std::min<uint64_t>(pending_, max_written - m.written);
    if (write && may > 0) {
      ssize_t n = ::splice(read_.get(), nullptr, to, nullptr, static_cast<size_t>(may),
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        pending_ -= static_cast<size_t>(n);
        m.written += static_cast<uint64_t>(n);
        full_ = false;
        progressed = true;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        m.error = errno;
        return m;
      }
    }
    if (!progressed || m.written >= budget || m.written >= max_written) return m;
  }
}

absl::StatusOr<SplicePipe> SplicePipePool::Take() {
  if (kept_.empty()) return SplicePipe::Open(capacity_);
  SplicePipe p = std::move(kept_.back());
  kept_.pop_back();
  return p;
}

void SplicePipePool::Give(SplicePipe pipe) {
  if (!pipe || pipe.pending() > 0 || kept_.size() >= max_kept_) return;  // closed here
  kept_.push_back(std::move(pipe));
}

}  // namespace rauha::egress
