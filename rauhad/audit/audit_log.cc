#include "rauhad/audit/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rauha-common/audit/chain_verifier.h"
#include "rauha-common/audit/jcs.h"
#include "rauha-common/audit/record.h"
#include "rauha-common/errors.h"
#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"
#include "rauha-common/timeutil.h"

namespace rauha::audit {
namespace {

std::string SegmentName(uint64_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "log-%06llu.ndjson", static_cast<unsigned long long>(index));
  return name;
}

absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, StrCat("mkdir ", path));
  }
  return absl::OkStatus();
}

// Writes `text` to `path` through a temp file and rename, so readers see old or new.
absl::Status WriteFileAtomic(const std::string& path, const std::string& text, mode_t mode) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return ErrnoStatus(errno, StrCat("create ", tmp));
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno, StrCat("write ", tmp));
  }
  if (::fchmod(fd.get(), mode) != 0) return ErrnoStatus(errno, StrCat("chmod ", tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, StrCat("rename ", tmp));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(errno, StrCat("open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<SigningKey> LoadOrCreateKey(const AuditLogOptions& options) {
  std::string own = options.dir + "/signing.key";
  struct stat st {};
  if (::stat(own.c_str(), &st) == 0) {
    RAUHA_ASSIGN_OR_RETURN(SigningKey key, SigningKey::FromPemFile(own));
    if (!options.import_key_file.empty()) {
      RAUHA_ASSIGN_OR_RETURN(SigningKey given, SigningKey::FromPemFile(options.import_key_file));
      if (given.public_key().id() != key.public_key().id()) {
        return absl::FailedPreconditionError(
            StrCat("the audit log in ", options.dir, " already signs with key ",
                   key.public_key().id(), "; --audit-key ", options.import_key_file,
                   " is another key. Rotate keys with "
                   "`rauha audit rotate` instead of replacing them"));
      }
    }
    return key;
  }
  SigningKey key;
  if (!options.import_key_file.empty()) {
    RAUHA_ASSIGN_OR_RETURN(key, SigningKey::FromPemFile(options.import_key_file));
  } else {
    RAUHA_ASSIGN_OR_RETURN(key, SigningKey::Generate());
  }
  RAUHA_RETURN_IF_ERROR(key.SavePem(own));
  return key;
}

// The last whole line of the chain and anything after it (a torn line), searching segments
// from the newest.
struct Tail {
  std::string last_line;  // "" when the chain is empty
  std::string torn;       // bytes after the last newline of the newest segment
  size_t torn_line_no = 0;
};

absl::StatusOr<Tail> ReadTail(const std::vector<std::string>& segments) {
  Tail tail;
  for (size_t i = segments.size(); i-- > 0;) {
    RAUHA_ASSIGN_OR_RETURN(std::string bytes, ReadFile(segments[i]));
    size_t end = bytes.size();
    if (i == segments.size() - 1 && !bytes.empty() && bytes.back() != '\n') {
      size_t nl = bytes.rfind('\n');
      size_t start = nl == std::string::npos ? 0 : nl + 1;
      tail.torn = bytes.substr(start);
      tail.torn_line_no = 1 + static_cast<size_t>(std::count(bytes.begin(), bytes.end(), '\n'));
      end = start;
    }
    if (end == 0) continue;
    // bytes[0, end) is whole lines, each ending in '\n'.
    size_t prev_nl = end >= 2 ? bytes.rfind('\n', end - 2) : std::string::npos;
    size_t start = prev_nl == std::string::npos ? 0 : prev_nl + 1;
    tail.last_line = bytes.substr(start, end - 1 - start);
    return tail;
  }
  return tail;
}

double MsBetween(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The last record this thread wrote, and to which log (FlushThisThread).
thread_local const AuditLog* thread_log = nullptr;
thread_local int64_t thread_seq = -1;

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const AuditLogOptions& options,
                                                         std::string* torn_report) {
  RAUHA_RETURN_IF_ERROR(MakeDir(options.dir));
  RAUHA_RETURN_IF_ERROR(MakeDir(options.dir + "/keys"));
  std::unique_ptr<AuditLog> log(new AuditLog(options));
  RAUHA_ASSIGN_OR_RETURN(log->key_, LoadOrCreateKey(options));
  RAUHA_RETURN_IF_ERROR(log->PublishKey(log->key_.public_key()));

  RAUHA_ASSIGN_OR_RETURN(std::vector<std::string> segments, SegmentFiles(options.dir));
  RAUHA_ASSIGN_OR_RETURN(Tail tail, ReadTail(segments));
  log->prev_ = kGenesisPrev;
  if (!tail.last_line.empty()) {
    auto last = ParseCanonical(tail.last_line);
    if (!last.ok() || !(*last).contains("seq") || !(*last)["seq"].is_number_integer()) {
      return absl::DataLossError(StrCat("the audit log's last record in ", options.dir,
                                        " is not a record; check it with `rauha audit verify`"));
    }
    std::string key_id = (*last).value("key_id", "");
    if ((*last).value("kind", "") == kKindKeyRotate) {
      auto next = PublicKey::FromPem((*last)["body"].value("public_key", ""));
      if (next.ok()) key_id = next->id();
    }
    if (key_id != log->key_.public_key().id()) {
      return absl::FailedPreconditionError(
          StrCat("the audit log in ", options.dir, " continues with key ", key_id,
                 " but rauhad's signing key is ", log->key_.public_key().id()));
    }
    log->next_seq_ = (*last)["seq"].get<int64_t>() + 1;
    log->prev_ = RecordHash(tail.last_line);
  }
  uint64_t last_index = segments.empty() ? 0 : segments.size() - 1;
  std::lock_guard lock(log->mu_);
  if (!tail.torn.empty()) {
    // Never append after a torn line (it would sit in the middle of the chain) and never
    // change it: the chain runs on in a new segment that starts by saying where it is.
    std::string torn_segment = std::filesystem::path(segments.back()).filename();
    RAUHA_RETURN_IF_ERROR(log->OpenSegment(last_index + 1));
    nlohmann::json body = {{"segment", torn_segment},
                           {"line", tail.torn_line_no},
                           {"sha256", Sha256Hex(tail.torn)},
                           {"bytes", tail.torn.size()}};
    RAUHA_RETURN_IF_ERROR(log->WriteLocked(kKindLogTorn, "", body).status());
    if (torn_report != nullptr) {
      *torn_report =
          StrCat(torn_segment, ":", tail.torn_line_no, ": torn last line (", tail.torn.size(),
                 " bytes) kept; acknowledged by seq ", log->next_seq_ - 1);
    }
  } else {
    RAUHA_RETURN_IF_ERROR(log->OpenSegment(last_index));
  }
  return log;
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mu_);
    (void)WritePendingLocked();
  }
  std::optional<Head> last;
  {
    std::lock_guard lock(head_mu_);
    head_stop_ = true;
  }
  head_cv_.notify_all();
  if (head_thread_.joinable()) head_thread_.join();
  // What the thread had not written yet (it stops without writing).
  last = std::move(pending_head_);
  if (last) WriteHead(*last);
}

void AuditLog::WriteHead(const Head& head) const {
  auto signed_head = SignHead(head.seq, head.hash, head.key);
  if (signed_head.ok()) {
    (void)WriteFileAtomic(options_.dir + "/head.json", *signed_head + "\n", 0644);
  }
}

void AuditLog::WriteHeads() {
  std::unique_lock lock(head_mu_);
  while (true) {
    head_cv_.wait(lock, [this] { return head_stop_ || pending_head_.has_value(); });
    if (head_stop_) return;
    Head head = std::move(*pending_head_);
    pending_head_.reset();
    lock.unlock();
    WriteHead(head);
    lock.lock();
    // The fsyncs of the next interval share one head.
    head_cv_.wait_for(lock, kHeadInterval, [this] { return head_stop_; });
  }
}

absl::Status AuditLog::PublishKey(const PublicKey& key) const {
  std::string path = StrCat(options_.dir, "/keys/", key.id(), ".pub");
  RAUHA_RETURN_IF_ERROR(WriteFileAtomic(path, key.pem(), 0644));
  return WriteFileAtomic(options_.dir + "/key.pub", key.pem(), 0644);
}

absl::Status AuditLog::OpenSegment(uint64_t index) {
  std::string path = StrCat(options_.dir, "/", SegmentName(index));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus(errno, StrCat("open ", path));
  auto next = std::make_shared<UniqueFd>(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, StrCat("stat ", path));
  // What the old segment holds must be durable before the chain goes on elsewhere.
  if (segment_ && ::fdatasync(segment_->get()) != 0) {
    return ErrnoStatus(errno, "fdatasync audit segment");
  }
  segment_ = std::move(next);
  segment_index_ = index;
  segment_size_ = static_cast<uint64_t>(st.st_size);
  return absl::OkStatus();
}

absl::StatusOr<std::string> AuditLog::WriteLocked(const std::string& kind,
                                                  const std::string& zone_id, nlohmann::json body) {
  // Another caller's record that cannot be written does not stop this one (it was reported).
  (void)WritePendingLocked();
  return WriteRecordLocked(kind, zone_id, std::move(body), NowRfc3339());
}

absl::Status AuditLog::WritePendingLocked() {
  size_t done = 0;
  absl::Status status;
  for (; done < pending_.size(); ++done) {
    PendingRecord& r = pending_[done];
    auto line = WriteRecordLocked(r.kind, r.zone_id, std::move(r.body), std::move(r.time));
    if (!line.ok()) {
      // Reported to its writer, who may be another thread: said here too, once. The record
      // is dropped (as one AppendNoSync could not write is), so the chain goes on.
      std::fprintf(stderr, "rauhad: audit: cannot record %s: %s\n", r.kind.c_str(),
                   ToStd(line.status().message()).c_str());
      status = line.status();
    }
  }
  pending_.clear();
  return status;
}

void AuditLog::AppendLater(const std::string& kind, const std::string& zone_id,
                           nlohmann::json body) {
  std::lock_guard lock(mu_);
  pending_.push_back({kind, zone_id, NowRfc3339(), std::move(body)});
  thread_log = this;
  thread_seq = next_seq_ + static_cast<int64_t>(pending_.size()) - 1;
}

absl::Status AuditLog::WritePending() {
  std::lock_guard lock(mu_);
  return WritePendingLocked();
}

absl::StatusOr<std::string> AuditLog::WriteRecordLocked(const std::string& kind,
                                                        const std::string& zone_id,
                                                        nlohmann::json body, std::string time) {
  if (segment_size_ >= options_.segment_bytes) {
    RAUHA_RETURN_IF_ERROR(OpenSegment(segment_index_ + 1));
  }
  RecordFields fields;
  fields.seq = next_seq_;
  fields.time = std::move(time);
  fields.kind = kind;
  fields.zone_id = zone_id;
  fields.body = std::move(body);
  fields.prev = prev_;
  const auto sign_start = std::chrono::steady_clock::now();
  RAUHA_ASSIGN_OR_RETURN(std::string line, SignRecord(fields, key_));
  std::string out = line + "\n";
  const auto write_start = std::chrono::steady_clock::now();
  // One write per record: a crash leaves whole records and at most one torn last line.
  ssize_t n = ::write(segment_->get(), out.data(), out.size());
  if (SpanTrace::Enabled()) {
    const auto end = std::chrono::steady_clock::now();
    SpanTrace::TallyCurrent("audit_sign", MsBetween(sign_start, write_start));
    SpanTrace::TallyCurrent("audit_write", MsBetween(write_start, end));
    SpanTrace::TallyCurrent("audit_records", 1);
  }
  if (n != static_cast<ssize_t>(out.size())) {
    int err = n < 0 ? errno : ENOSPC;
    if (n > 0) {
      // Part of the line reached the file: that is a torn line now, and only a restart (which
      // acknowledges it in a new segment) may continue the chain.
      segment_size_ = options_.segment_bytes;
      (void)OpenSegment(segment_index_ + 1);
    }
    return ErrnoStatus(err, "append to the audit log");
  }
  segment_size_ += out.size();
  prev_ = RecordHash(line);
  written_seq_ = next_seq_;
  thread_log = this;
  thread_seq = written_seq_;
  written_hash_ = prev_;
  ++next_seq_;
  return line;
}

absl::Status AuditLog::Sync(int64_t seq) {
  if (synced_seq_.load(std::memory_order_acquire) >= seq) {
    SpanTrace::TallyCurrent("sync_covered", 1);
    return absl::OkStatus();
  }
  const auto wait_start = std::chrono::steady_clock::now();
  std::lock_guard sync_lock(sync_mu_);
  const auto locked = std::chrono::steady_clock::now();
  if (SpanTrace::Enabled()) SpanTrace::TallyCurrent("sync_mu_wait", MsBetween(wait_start, locked));
  if (synced_seq_.load(std::memory_order_relaxed) >= seq) {
    SpanTrace::TallyCurrent("sync_covered", 1);
    return absl::OkStatus();
  }
  std::shared_ptr<UniqueFd> fd;
  int64_t target = 0;
  std::string hash;
  SigningKey key;
  {
    std::lock_guard lock(mu_);
    // AppendLater's records (this caller's among them, perhaps) go to the file first.
    (void)WritePendingLocked();
    fd = segment_;
    target = written_seq_;
    hash = written_hash_;
    key = key_;
  }
  const auto sync_start = std::chrono::steady_clock::now();
  if (::fdatasync(fd->get()) != 0) return ErrnoStatus(errno, "fdatasync the audit log");
  if (SpanTrace::Enabled()) {
    SpanTrace::TallyCurrent("fdatasync", MsBetween(sync_start, std::chrono::steady_clock::now()));
    SpanTrace::TallyCurrent("sync_records", static_cast<double>(target - synced_seq_.load()));
  }
  synced_seq_.store(target, std::memory_order_release);
  {
    std::lock_guard lock(head_mu_);
    // In seq order: Sync runs under sync_mu_, and target only grows.
    pending_head_ = Head{target, std::move(hash), std::move(key)};
    if (!head_thread_.joinable() && !head_stop_) {
      head_thread_ = std::thread([this] { WriteHeads(); });
    }
  }
  head_cv_.notify_one();
  return absl::OkStatus();
}

absl::StatusOr<std::string> AuditLog::Append(const std::string& kind, const std::string& zone_id,
                                             nlohmann::json body) {
  std::string line;
  int64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(line, WriteLocked(kind, zone_id, std::move(body)));
    seq = written_seq_;
  }
  RAUHA_RETURN_IF_ERROR(Sync(seq));
  return line;
}

absl::StatusOr<std::string> AuditLog::AppendNoSync(const std::string& kind,
                                                   const std::string& zone_id,
                                                   nlohmann::json body) {
  const auto wait_start = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (SpanTrace::Enabled()) {
    SpanTrace::TallyCurrent("audit_mu_wait",
                            MsBetween(wait_start, std::chrono::steady_clock::now()));
  }
  return WriteLocked(kind, zone_id, std::move(body));
}

absl::Status AuditLog::FlushThisThread() {
  if (thread_log != this || thread_seq < 0) return absl::OkStatus();
  return Sync(thread_seq);
}

absl::Status AuditLog::Flush() {
  int64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    seq = next_seq_ + static_cast<int64_t>(pending_.size()) - 1;
  }
  return seq < 0 ? absl::OkStatus() : Sync(seq);
}

absl::StatusOr<PublicKey> AuditLog::Rotate() {
  RAUHA_ASSIGN_OR_RETURN(SigningKey next, SigningKey::Generate());
  RAUHA_RETURN_IF_ERROR(PublishKey(next.public_key()));
  int64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    RAUHA_RETURN_IF_ERROR(
        WriteLocked(kKindKeyRotate, "",
                    {{"public_key", next.public_key().pem()}, {"key_id", next.public_key().id()}})
            .status());
    seq = written_seq_;
    // The record naming the new key is written: from here on the chain is the new key's.
    RAUHA_RETURN_IF_ERROR(next.SavePem(options_.dir + "/signing.key"));
    key_ = next;
  }
  RAUHA_RETURN_IF_ERROR(Sync(seq));
  return next.public_key();
}

PublicKey AuditLog::current_key() const {
  std::lock_guard lock(mu_);
  return key_.public_key();
}

}  // namespace rauha::audit
