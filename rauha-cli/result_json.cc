#include "rauha-cli/result_json.h"

#include "absl/strings/escaping.h"

namespace rauha::cli {

using rauha::sandbox::v1::SandboxResult;

Json SandboxResultToJson(const SandboxResult& r) {
  using json = Json;
  json out = json::object();
  out["task_id"] = r.task_id();
  out["zone_id"] = r.zone_id();
  out["zone_name"] = r.zone_name();
  out["command"] = json::array();
  for (const auto& arg : r.command()) out["command"].push_back(arg);
  out["status"] = r.status();
  out["exit_code"] = r.has_exit_code() ? json(r.exit_code()) : json(nullptr);
  out["signal"] = r.has_signal() ? json(r.signal()) : json(nullptr);
  out["duration_ms"] = r.duration_ms();
  out["started_at"] = r.started_at();
  out["finished_at"] = r.finished_at();
  // Text when the bytes are UTF-8; otherwise a lossy rendering (U+FFFD) beside the exact bytes
  // in base64, so a consumer that reads only "stdout" still gets text.
  out["stdout"] = r.stdout();
  out["stderr"] = r.stderr();
  if (!r.stdout_bytes().empty()) out["stdout_base64"] = absl::Base64Escape(r.stdout_bytes());
  if (!r.stderr_bytes().empty()) out["stderr_base64"] = absl::Base64Escape(r.stderr_bytes());
  out["stdout_truncated"] = r.stdout_truncated();
  out["stderr_truncated"] = r.stderr_truncated();
  const auto& res = r.resources();
  out["resources"] = {
      {"peak_memory_bytes", res.peak_memory_bytes()},
      {"cpu_user_ms", res.cpu_user_ms()},
      {"cpu_system_ms", res.cpu_system_ms()},
      {"oom_killed", res.oom_killed()},
  };
  out["events"] = json::array();
  for (const auto& e : r.events()) {
    out["events"].push_back(
        {{"timestamp", e.timestamp()}, {"kind", e.kind()}, {"message", e.message()}});
  }
  out["enforcement_events"] = json::array();
  for (const auto& e : r.enforcement_events()) {
    json ev = json::object();
    ev["timestamp"] = e.timestamp();
    ev["hook"] = e.hook();
    ev["action"] = e.action();
    ev["decision"] = e.decision();
    ev["message"] = e.message();
    ev["pid"] = e.has_pid() ? json(e.pid()) : json(nullptr);
    ev["source_zone"] = e.source_zone();
    ev["target_zone"] = e.target_zone();
    ev["object"] = e.object();
    ev["comm"] = e.comm();
    ev["layer"] = e.layer();
    out["enforcement_events"].push_back(std::move(ev));
  }
  out["enforcement_events_lost"] = r.enforcement_events_lost();
  if (!r.error().empty()) out["error"] = r.error();
  if (!r.image_digest().empty()) out["image_digest"] = r.image_digest();
  out["unavailable_controls"] = json::array();
  for (const auto& c : r.unavailable_controls()) out["unavailable_controls"].push_back(c);
  if (!r.receipt().empty()) out["receipt"] = r.receipt();
  return out;
}

int ExitCodeForResult(const SandboxResult& r) {
  // A timeout kills the task, so it usually also carries SIGKILL; 124 says why (as timeout(1)).
  if (r.status() == "timed_out") return kExitTimedOut;
  if (r.status() == "runtime_error" || r.status() == "error") return kExitRuntimeError;
  int code = kExitRuntimeError;
  if (r.has_signal() && r.signal() > 0) {
    code = ExitCodeForSignal(r.signal());
  } else if (r.has_exit_code()) {
    if (r.exit_code() < 0 || r.exit_code() > 255) return kExitRuntimeError;
    code = r.exit_code();
  }
  if (r.status() == "failed" && code == 0) return 1;
  return code;
}

}  // namespace rauha::cli
