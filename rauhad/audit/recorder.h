// What rauhad records in its audit log, in one place: zone lifecycle, tasks (with their
// receipts), enforcement denials (each one up to a rate, then a counted summary per zone and
// second), admission refusals, daemon start and stop. A record that cannot be written is
// reported on stderr and as a zone event; the action it describes is not undone.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "rauha-common/enforcement_event.h"
#include "rauha-common/policy/policy.h"
#include "rauha/v1/sandbox.pb.h"
#include "rauhad/audit/audit_log.h"

namespace rauha::audit {

class Recorder {
 public:
  // `log` null: recording is off (unit tests of the registry).
  explicit Recorder(AuditLog* log) : log_(log) {}

  void DaemonStart(const std::string& version, const std::string& torn_report);
  void DaemonStop(int signal);
  void ZoneCreated(const std::string& zone_id, const std::string& name,
                   const std::string& zone_type, const policy::Policy& policy, bool temporary);
  void ZoneRefused(const std::string& name, const std::string& reason);
  void ZonePolicyApplied(const std::string& zone_id, const policy::Policy& policy);
  // A lifecycle transition (written at once, durable with the next durable record or Flush:
  // callers hold the registry lock and must not wait for the disk). While a Hold lives on the
  // thread it only takes its place in the chain, and is signed and written when the Hold ends.
  void ZoneTransition(const std::string& zone_id, const std::string& name, const std::string& state,
                      const std::string& reason);
  void ZoneDeleted(const std::string& zone_id, const std::string& name, bool force);
  // A secret stored, replaced or removed: its name and the first 12 hex digits of its value's
  // SHA-256 (never the value).
  void SecretSet(const std::string& name, const std::string& sha256, bool replaced);
  void SecretRemoved(const std::string& name, const std::string& sha256);
  // Makes every record so far durable, before an RPC answers.
  void Flush();
  // Makes the records this thread wrote durable (AuditLog::FlushThisThread): what a call
  // needs before it answers, without waiting for records other threads wrote meanwhile (the
  // warm pool's deletions, say), which their own durable record or the next one covers.
  void FlushThisThread();
  void TaskStarted(const std::string& zone_id, const std::string& task_id,
                   const std::vector<std::string>& command);
  // Appends the task's task.finish record and puts it in `result` as its receipt.
  void TaskFinished(const policy::Policy& policy, const std::vector<std::string>& layers,
                    rauha::sandbox::v1::SandboxResult& result);
  // Containers (ContainerService): created (image digest, the command's digest), started
  // (pid), stopped (exit code, and why when it did not end by itself: "lost" ...), deleted
  // (forced, or auto-removed at its exit).
  void ContainerCreated(const std::string& zone_id, const std::string& container_id,
                        const std::string& name, const std::string& image_digest,
                        const std::vector<std::string>& command, bool auto_remove);
  void ContainerStarted(const std::string& zone_id, const std::string& container_id, int64_t pid);
  void ContainerStopped(const std::string& zone_id, const std::string& container_id, int exit_code,
                        const std::string& reason);
  void ContainerDeleted(const std::string& zone_id, const std::string& container_id,
                        const std::string& how);
  // Denials: the first kDenialsPerSecond of a zone in each second are records of their own;
  // the rest of that second become one `enforcement.summary` record with counts per hook.
  void Denial(const EnforcementEvent& event);

  static constexpr int kDenialsPerSecond = 100;

  // While a Batch lives on a thread, that thread's records wait for one fsync when the last
  // Batch ends (FlushThisThread): a sandbox call writes a dozen records (its temporary zone's
  // transitions, the task's start and end) and pays one fsync before it answers, not one per
  // record.
  class Batch {
   public:
    explicit Batch(Recorder* recorder);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    Recorder* recorder_;
  };

  // While a Hold lives on a thread, that thread's zone transitions take their place in the
  // chain (seq, time) but are signed and written when the last Hold ends, or by Release:
  // a sandbox call's zone goes Running under the registry lock, just before the call starts
  // its task, and its record is signed while the zone's shim starts the task instead (an
  // Ed25519 signature is ~50 us here). A record another thread writes meanwhile writes the
  // held ones first, so the chain's order is the order of the transitions.
  class Hold {
   public:
    explicit Hold(Recorder* recorder);
    ~Hold();
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    // Writes what was held (once; later transitions are written at once).
    void Release();

   private:
    Recorder* recorder_;
  };

 private:
  // The record's line, or "" when it could not be written (reported on stderr).
  std::string Write(const std::string& kind, const std::string& zone_id, nlohmann::json body,
                    bool durable = true);
  void FlushSummaries(int64_t now_second);  // mu_ held

  AuditLog* log_;
  std::mutex mu_;
  struct Window {
    int64_t second = 0;
    int count = 0;
    std::map<std::string, uint64_t> suppressed;  // per hook
  };
  std::map<std::string, Window> windows_;  // by zone id
};

// Lowercase hex SHA-256 of the policy's canonical TOML.
std::string PolicyDigest(const policy::Policy& policy);

}  // namespace rauha::audit
