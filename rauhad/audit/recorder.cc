#include "rauhad/audit/recorder.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

#include "rauha-common/audit/jcs.h"
#include "rauha-common/audit/receipt.h"
#include "rauha-common/strcat.h"

namespace rauha::audit {

std::string PolicyDigest(const policy::Policy& policy) {
  return Sha256Hex(policy::ToCanonicalToml(policy));
}

namespace {
thread_local int batch_depth = 0;
thread_local int hold_depth = 0;
}  // namespace

Recorder::Hold::Hold(Recorder* recorder) : recorder_(recorder) {
  if (recorder_) ++hold_depth;
}

Recorder::Hold::~Hold() { Release(); }

void Recorder::Hold::Release() {
  if (recorder_ == nullptr) return;
  Recorder* recorder = std::exchange(recorder_, nullptr);
  // A record that cannot be written is reported by the log, as AppendNoSync's would be.
  if (--hold_depth == 0 && recorder->log_ != nullptr) (void)recorder->log_->WritePending();
}

Recorder::Batch::Batch(Recorder* recorder) : recorder_(recorder) {
  if (recorder_) ++batch_depth;
}

Recorder::Batch::~Batch() {
  if (recorder_ && --batch_depth == 0) recorder_->FlushThisThread();
}

std::string Recorder::Write(const std::string& kind, const std::string& zone_id,
                            nlohmann::json body, bool durable) {
  if (log_ == nullptr) return "";
  auto line = durable && batch_depth == 0 ? log_->Append(kind, zone_id, std::move(body))
                                          : log_->AppendNoSync(kind, zone_id, std::move(body));
  if (!line.ok()) {
    std::fprintf(stderr, "rauhad: audit: cannot record %s: %s\n", kind.c_str(),
                 ToStd(line.status().message()).c_str());
    return "";
  }
  return *std::move(line);
}

void Recorder::DaemonStart(const std::string& version, const std::string& torn_report) {
  nlohmann::json body = {{"version", version}, {"pid", static_cast<int64_t>(::getpid())}};
  if (!torn_report.empty()) body["torn"] = torn_report;
  Write("daemon.start", "", std::move(body));
}

void Recorder::DaemonStop(int signal) {
  {
    std::lock_guard lock(mu_);
    FlushSummaries(INT64_MAX);
  }
  Write("daemon.stop", "", {{"signal", signal}});
}

void Recorder::ZoneCreated(const std::string& zone_id, const std::string& name,
                           const std::string& zone_type, const policy::Policy& policy,
                           bool temporary) {
  Write("zone.create", zone_id,
        {{"name", ToValidUtf8(name)},
         {"zone_type", zone_type},
         {"policy_sha256", PolicyDigest(policy)},
         {"temporary", temporary}});
}

void Recorder::ZoneRefused(const std::string& name, const std::string& reason) {
  Write("zone.refused", "", {{"name", ToValidUtf8(name)}, {"reason", ToValidUtf8(reason)}});
}

void Recorder::ZonePolicyApplied(const std::string& zone_id, const policy::Policy& policy) {
  Write("zone.policy", zone_id, {{"policy_sha256", PolicyDigest(policy)}});
}

void Recorder::ZoneTransition(const std::string& zone_id, const std::string& name,
                              const std::string& state, const std::string& reason) {
  nlohmann::json body = {{"name", ToValidUtf8(name)}, {"state", state}};
  if (!reason.empty()) body["reason"] = ToValidUtf8(reason);
  if (hold_depth > 0 && log_ != nullptr) {
    log_->AppendLater("zone.state", zone_id, std::move(body));
    return;
  }
  Write("zone.state", zone_id, std::move(body), /*durable=*/false);
}

void Recorder::ZoneDeleted(const std::string& zone_id, const std::string& name, bool force) {
  Write("zone.delete", zone_id, {{"name", ToValidUtf8(name)}, {"force", force}});
}

void Recorder::SecretSet(const std::string& name, const std::string& sha256, bool replaced) {
  Write("secret.set", "",
        {{"name", ToValidUtf8(name)},
         {"sha256_prefix", sha256.substr(0, 12)},
         {"replaced", replaced}});
}

void Recorder::SecretRemoved(const std::string& name, const std::string& sha256) {
  Write("secret.remove", "",
        {{"name", ToValidUtf8(name)}, {"sha256_prefix", sha256.substr(0, 12)}});
}

void Recorder::Flush() {
  if (log_ == nullptr) return;
  if (auto st = log_->Flush(); !st.ok()) {
    std::fprintf(stderr, "rauhad: audit: %s\n", ToStd(st.message()).c_str());
  }
}

void Recorder::FlushThisThread() {
  if (log_ == nullptr) return;
  if (auto st = log_->FlushThisThread(); !st.ok()) {
    std::fprintf(stderr, "rauhad: audit: %s\n", ToStd(st.message()).c_str());
  }
}

void Recorder::TaskStarted(const std::string& zone_id, const std::string& task_id,
                           const std::vector<std::string>& command) {
  TaskFacts facts;
  facts.command = command;
  // Durable with the task's end (its task.finish record answers the RPC).
  Write("task.start", zone_id,
        {{"task_id", task_id}, {"command_sha256", ResultDigests(facts)["command_sha256"]}},
        /*durable=*/false);
}

void Recorder::ContainerCreated(const std::string& zone_id, const std::string& container_id,
                                const std::string& name, const std::string& image_digest,
                                const std::vector<std::string>& command, bool auto_remove) {
  TaskFacts facts;
  facts.command = command;
  Write("container.create", zone_id,
        {{"container_id", container_id},
         {"name", ToValidUtf8(name)},
         {"image_digest", image_digest},
         {"command_sha256", ResultDigests(facts)["command_sha256"]},
         {"auto_remove", auto_remove}});
}

void Recorder::ContainerStarted(const std::string& zone_id, const std::string& container_id,
                                int64_t pid) {
  Write("container.start", zone_id, {{"container_id", container_id}, {"pid", pid}});
}

void Recorder::ContainerStopped(const std::string& zone_id, const std::string& container_id,
                                int exit_code, const std::string& reason) {
  nlohmann::json body = {{"container_id", container_id}, {"exit_code", exit_code}};
  if (!reason.empty()) body["reason"] = ToValidUtf8(reason);
  Write("container.stop", zone_id, std::move(body));
}

void Recorder::ContainerDeleted(const std::string& zone_id, const std::string& container_id,
                                const std::string& how) {
  Write("container.delete", zone_id, {{"container_id", container_id}, {"how", how}});
}

void Recorder::TaskFinished(const policy::Policy& policy, const std::vector<std::string>& layers,
                            rauha::sandbox::v1::SandboxResult& result) {
  if (log_ == nullptr) return;
  {
    // The task's counted denials go before its receipt.
    std::lock_guard lock(mu_);
    FlushSummaries(INT64_MAX);
  }
  TaskFacts facts;
  facts.task_id = result.task_id();
  facts.zone_id = result.zone_id();
  facts.command.assign(result.command().begin(), result.command().end());
  facts.status = result.status();
  if (result.has_exit_code()) facts.exit_code = result.exit_code();
  if (result.has_signal()) facts.signal = result.signal();
  // The exact bytes: stdout_bytes holds them when they are not UTF-8 (stdout is then lossy).
  facts.stdout_bytes = result.stdout_bytes().empty() ? result.stdout() : result.stdout_bytes();
  facts.stderr_bytes = result.stderr_bytes().empty() ? result.stderr() : result.stderr_bytes();
  facts.stdout_truncated = result.stdout_truncated();
  facts.stderr_truncated = result.stderr_truncated();
  uint64_t denials = static_cast<uint64_t>(result.enforcement_events_size());
  std::string line = Write(
      kKindTaskFinish, result.zone_id(),
      ReceiptBody(facts, PolicyDigest(policy), layers, denials, result.enforcement_events_lost()));
  if (line.empty()) {
    auto* e = result.add_events();
    e->set_kind("audit");
    e->set_message("no receipt: the audit log refused the record (see rauhad's log)");
    return;
  }
  result.set_receipt(line);
}

void Recorder::FlushSummaries(int64_t now_second) {
  for (auto it = windows_.begin(); it != windows_.end();) {
    Window& w = it->second;
    if (w.second < now_second && !w.suppressed.empty()) {
      nlohmann::json hooks = nlohmann::json::object();
      uint64_t total = 0;
      for (const auto& [hook, n] : w.suppressed) {
        hooks[hook] = n;
        total += n;
      }
      Write("enforcement.summary", it->first,
            {{"second", w.second}, {"denials", total}, {"by_hook", hooks}}, /*durable=*/false);
      w.suppressed.clear();
    }
    if (w.second < now_second - 60) {
      it = windows_.erase(it);
    } else {
      ++it;
    }
  }
}

void Recorder::Denial(const EnforcementEvent& e) {
  if (log_ == nullptr) return;
  int64_t second = e.time_ns / 1000000000;
  std::lock_guard lock(mu_);
  FlushSummaries(second);
  Window& w = windows_[e.zone_id];
  if (w.second != second) {
    w.second = second;
    w.count = 0;
  }
  if (++w.count > kDenialsPerSecond) {
    ++w.suppressed[e.hook];
    return;
  }
  Write("enforcement.deny", e.zone_id,
        {{"layer", e.layer},
         {"hook", e.hook},
         {"action", e.action},
         {"decision", e.decision},
         {"object", ToValidUtf8(e.object)},
         {"pid", e.pid},
         {"comm", ToValidUtf8(e.comm)},
         {"target_zone", e.target_zone}},
        /*durable=*/false);
}

}  // namespace rauha::audit
