#include "rauhad/container/log_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

#include "rauha-common/container_log.h"
#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"
#include "rauha-common/timeutil.h"

namespace rauha::container {
namespace {

// A follower wakes at each change (LogQuery::wait_for_change); this bounds a wait for one
// that never comes (a watcher gone with its shim), not the latency of output.
constexpr int kFollowCheckMs = 1000;

bool InWindow(const LogQuery& q, const LogLine& l) {
  if (q.since_ns < 0 && q.until_ns < 0) return true;
  int64_t t = NanosFromRfc3339(l.timestamp);
  if (t < 0) return true;  // not ours to judge: shown
  return (q.since_ns < 0 || t >= q.since_ns) && (q.until_ns < 0 || t < q.until_ns);
}

class Parser {
 public:
  explicit Parser(std::function<void(LogLine)> out) : out_(std::move(out)) {}

  // Bytes of the file; complete records are parsed, the rest kept for the next call.
  void Feed(std::string_view data) {
    buffer_.append(data);
    size_t start = 0;
    while (true) {
      size_t nl = buffer_.find('\n', start);
      if (nl == std::string::npos) break;
      Record(std::string_view(buffer_).substr(start, nl - start));
      start = nl + 1;
    }
    buffer_.erase(0, start);
  }
  // A file ends (rotated away): a torn last line is dropped.
  void EndFile() { buffer_.clear(); }

 private:
  void Record(std::string_view line) {
    auto r = ParseLogRecord(line);
    if (!r) return;
    LogLine& pending = pending_[r->is_stderr ? 1 : 0];
    bool had = !pending.timestamp.empty();
    if (!had) {
      pending.timestamp = r->timestamp;
      pending.is_stderr = r->is_stderr;
    }
    pending.text += r->text;
    if (r->partial) return;
    out_(std::move(pending));
    pending = LogLine();
  }

  std::function<void(LogLine)> out_;
  std::string buffer_;
  LogLine pending_[2];
};

// Reads what `fd` has now into the parser; false on a read error.
bool Drain(int fd, Parser& parser) {
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    parser.Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace

absl::Status ReadContainerLog(const std::string& dir, const LogQuery& query,
                              const std::function<bool()>& cancelled,
                              const std::function<bool(const LogLine&)>& emit) {
  const uint32_t tail = query.tail;
  const std::string path = StrCat(dir, "/container.log");
  const std::string rotated = StrCat(path, ".1");
  std::deque<LogLine> lines;
  bool gone = false;  // the client went away
  Parser collect([&](LogLine l) {
    if (!InWindow(query, l)) return;
    lines.push_back(std::move(l));
    if (tail != 0 && lines.size() > tail) lines.pop_front();
  });
  // The rotated file, then the current one: opened first, so a rotation in between shows as
  // a changed inode below and nothing is read twice or skipped for good.
  UniqueFd current(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!current && errno != ENOENT) return ErrnoStatus(errno, StrCat("open ", path));
  if (UniqueFd old(::open(rotated.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)); old) {
    struct stat a, b;
    // If the current file was rotated just now, ".1" is the one already open: skip it.
    bool same = current && ::fstat(old.get(), &a) == 0 && ::fstat(current.get(), &b) == 0 &&
                a.st_ino == b.st_ino;
    if (!same) {
      if (!Drain(old.get(), collect)) return ErrnoStatus(errno, StrCat("read ", rotated));
      collect.EndFile();
    }
  }
  if (current && !Drain(current.get(), collect)) return ErrnoStatus(errno, StrCat("read ", path));
  for (const auto& l : lines) {
    if (!emit(l)) return absl::OkStatus();
  }
  lines.clear();
  if (!query.follow) return absl::OkStatus();

  Parser live([&](LogLine l) {
    if (!gone && InWindow(query, l) && !emit(l)) gone = true;
  });
  // The collecting parser may hold an unfinished line's pieces; they are few (a line of over
  // 16 KiB being written): the live parser starts after them.
  while (!gone) {
    if (cancelled && cancelled()) return absl::OkStatus();
    bool more = query.more_may_come();
    if (current && !Drain(current.get(), live)) return ErrnoStatus(errno, StrCat("read ", path));
    // Rotated: the rest of the old file was just read; continue with the new one.
    struct stat now, held;
    if (::stat(path.c_str(), &now) == 0 &&
        (!current || (::fstat(current.get(), &held) == 0 && held.st_ino != now.st_ino))) {
      live.EndFile();
      current.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      continue;
    }
    if (!more) return absl::OkStatus();
    query.wait_for_change(kFollowCheckMs);
  }
  return absl::OkStatus();
}

}  // namespace rauha::container
