// One direction of a relayed connection moved in the kernel: socket -> pipe -> socket with
// splice(2), so the bytes of a tunnel the proxy does not read (a CONNECT passed through, a
// plain-HTTP body once the head is parsed) never enter user space. Non-blocking on both ends:
// it fits the proxy's one epoll thread, which asks WantsRead/WantsWrite what to wait for.
// splice(2) into a socket cannot ask for MSG_NOSIGNAL: the process must ignore SIGPIPE (rauhad
// does, main.cc); a broken destination is then an error (EPIPE) like any other.
//
// Why a pipe is not "full" by its byte count: a pipe has a fixed number of slots and a TCP
// receive fills one slot per socket-buffer fragment, often far less than a page, so a splice
// into it can fail with EAGAIN long before `capacity` bytes. The pipe remembers that (full_)
// until some of it has been written out, so the proxy does not wait for a readable socket it
// cannot read from (a busy loop with level-triggered epoll).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha::egress {

class SplicePipe {
 public:
  SplicePipe() = default;
  SplicePipe(UniqueFd read_end, UniqueFd write_end, size_t capacity)
      : read_(std::move(read_end)), write_(std::move(write_end)), capacity_(capacity) {}
  SplicePipe(SplicePipe&&) = default;
  SplicePipe& operator=(SplicePipe&&) = default;

  // A pipe of about `capacity` bytes (F_SETPIPE_SZ; the kernel's default when it refuses).
  static absl::StatusOr<SplicePipe> Open(size_t capacity);

  explicit operator bool() const { return static_cast<bool>(read_); }
  // Bytes read from the source and not yet written to the destination.
  size_t pending() const { return pending_; }
  // Worth waiting for the source to be readable / the destination to be writable.
  bool WantsRead(bool eof) const { return !eof && !full_ && pending_ < capacity_; }
  bool WantsWrite() const { return pending_ > 0; }

  struct Moved {
    uint64_t written = 0;  // bytes that reached `to` (the zone's accounting)
    bool eof = false;      // `from` was read to its end
    int error = 0;         // errno of a failed splice (the connection is broken), else 0
  };
  // Reads from `from` while there is room and writes to `to` while `to` takes it, until neither
  // moves a byte or `budget` bytes were written. `write` false: read only (bytes buffered
  // outside the pipe must reach `to` first). At most `max_written` bytes go to `to`.
  Moved Pump(int from, int to, bool read, bool write, uint64_t max_written, uint64_t budget);

 private:
  UniqueFd read_, write_;
  size_t capacity_ = 0;
  size_t pending_ = 0;
  bool full_ = false;
};

// Empty pipes kept for the next connection: creating and sizing two pipes costs a few
// syscalls per connection, which small requests would feel. Only an empty pipe comes back.
class SplicePipePool {
 public:
  SplicePipePool(size_t capacity, size_t max_kept) : capacity_(capacity), max_kept_(max_kept) {}
  absl::StatusOr<SplicePipe> Take();
  void Give(SplicePipe pipe);
  size_t kept() const { return kept_.size(); }

 private:
  size_t capacity_;
  size_t max_kept_;
  std::vector<SplicePipe> kept_;
};

}  // namespace rauha::egress
