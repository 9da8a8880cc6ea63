// rauhad's audit log: an append-only chain of signed records (rauha-common/audit/record.h) in
// segment files <dir>/log-000000.ndjson, log-000001.ndjson, ... A record is on disk (fsync'ed)
// before Append returns; concurrent appenders share one fsync. The signing key (Ed25519) is
// <dir>/signing.key (0600), created at first start or copied from --audit-key; every public
// key ever used is <dir>/keys/<key_id>.pub, the current one also <dir>/key.pub. After the
// fsyncs <dir>/head.json names the last durable record (seq, hash), signed, so cutting whole
// records off the end is detected. It is written behind the fsyncs, by a thread of its own, at
// most every kHeadInterval and at once when the log closes: a signature, a file made and a
// rename per fsync were on every call's path (and held the fsync's lock), and head.json was
// never itself fsynced, so a crash could always leave it behind the log.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "rauha-common/audit/signing_key.h"
#include "rauha-common/fd.h"

namespace rauha::audit {

struct AuditLogOptions {
  std::string dir;                       // <state-dir>/audit
  std::string import_key_file;           // --audit-key: used when the log has no key yet
  uint64_t segment_bytes = 64ull << 20;  // a new segment starts past this size
};

class AuditLog {
 public:
  // How long head.json may trail the last fsync while rauhad runs.
  static constexpr std::chrono::milliseconds kHeadInterval{50};

  // Opens (or starts) the chain. A torn last line (a write cut short by a crash) is kept as it
  // is and acknowledged by a `log.torn` record at the head of a new segment; `*torn_report` (if
  // given) then says where.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const AuditLogOptions& options,
                                                        std::string* torn_report = nullptr);
  // Writes head.json for the last durable record.
  ~AuditLog();

  // Appends one record and returns its line once it is on disk.
  absl::StatusOr<std::string> Append(const std::string& kind, const std::string& zone_id,
                                     nlohmann::json body);
  // Appends without waiting for the disk (enforcement events: not caused by an RPC). The next
  // durable Append covers it.
  absl::StatusOr<std::string> AppendNoSync(const std::string& kind, const std::string& zone_id,
                                           nlohmann::json body);
  // Takes the record's place in the chain now (its seq, and its time) and leaves its signature
  // and write for later: for a caller that holds a lock others wait for, or that is about to
  // wait itself (a sandbox call while its shim starts the task). The record is written by the
  // next WritePending, Append, AppendNoSync, Flush or FlushThisThread of any thread, whichever
  // comes first, and FlushThisThread of this thread covers it.
  void AppendLater(const std::string& kind, const std::string& zone_id, nlohmann::json body);
  // Signs and writes the records AppendLater left (not durable yet).
  absl::Status WritePending();
  // Makes every record written so far durable (one fsync, shared with concurrent callers).
  absl::Status Flush();
  // Makes the records this thread has written durable (with all before them); nothing when
  // they already are. Records other threads wrote since are not waited for.
  absl::Status FlushThisThread();
  // A new key: a `key.rotate` record signed by the old key names it; later records use it.
  absl::StatusOr<PublicKey> Rotate();

  PublicKey current_key() const;
  const std::string& dir() const { return options_.dir; }

 private:
  explicit AuditLog(AuditLogOptions options) : options_(std::move(options)) {}
  absl::Status OpenSegment(uint64_t index);  // mu_ held
  absl::StatusOr<std::string> WriteLocked(const std::string& kind, const std::string& zone_id,
                                          nlohmann::json body);  // mu_ held
  // The records AppendLater left, in order, before anything else is written (mu_ held).
  absl::Status WritePendingLocked();
  absl::StatusOr<std::string> WriteRecordLocked(const std::string& kind, const std::string& zone_id,
                                                nlohmann::json body,
                                                std::string time);  // mu_ held
  absl::Status Sync(int64_t seq);
  absl::Status PublishKey(const PublicKey& key) const;
  struct Head {
    int64_t seq = -1;
    std::string hash;
    SigningKey key;
  };
  // The head thread: writes the newest pending head, then waits kHeadInterval.
  void WriteHeads();
  void WriteHead(const Head& head) const;

  AuditLogOptions options_;
  mutable std::mutex mu_;  // the chain: seq, prev, key, the segment being written
  SigningKey key_;
  int64_t next_seq_ = 0;
  std::string prev_;
  uint64_t segment_index_ = 0;
  uint64_t segment_size_ = 0;
  std::shared_ptr<UniqueFd> segment_;  // shared: Sync may fsync it while a rollover replaces it
  int64_t written_seq_ = -1;           // last record written (mu_)
  std::string written_hash_;
  struct PendingRecord {
    std::string kind, zone_id, time;
    nlohmann::json body;
  };
  // AppendLater's records, seq next_seq_, next_seq_ + 1, ... (mu_).
  std::vector<PendingRecord> pending_;

  std::mutex sync_mu_;  // one fsync at a time; callers whose record it covered skip theirs
  // Written under sync_mu_ once its fsync returned; read without it too, so that a caller whose
  // records are durable already does not queue behind another thread's fsync (the warm pool's
  // zone deletion, say) only to find that out.
  std::atomic<int64_t> synced_seq_{-1};

  std::mutex head_mu_;
  std::condition_variable head_cv_;
  std::optional<Head> pending_head_;  // durable, not yet in head.json (head_mu_)
  bool head_stop_ = false;            // (head_mu_)
  std::thread head_thread_;           // started by the first fsync
};

}  // namespace rauha::audit
