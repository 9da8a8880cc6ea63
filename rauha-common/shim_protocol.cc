#include "rauha-common/shim_protocol.h"

#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "rauha-common/strcat.h"

namespace rauha::shim {
namespace {

using nlohmann::json;

// Small strict reader over one JSON object: each getter records the first type error.
class Reader {
 public:
  Reader(const json& j, std::string_view what) : j_(j), what_(what) {
    if (!j.is_object()) fail("", "an object");
  }

  template <typename T>
  void Get(const char* key, T& out, bool required = false) {
    if (!status_.ok()) return;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) {
      if (required) fail(key, "present");
      return;
    }
    if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) return fail(key, "a string");
      out = it->template get<std::string>();
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) return fail(key, "a boolean");
      out = it->template get<bool>();
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      if (!it->is_array()) return fail(key, "an array of strings");
      out.clear();
      for (const auto& e : *it) {
        if (!e.is_string()) return fail(key, "an array of strings");
        out.push_back(e.template get<std::string>());
      }
    } else if constexpr (std::is_same_v<T, std::optional<int>>) {
      if (!it->is_number_integer()) return fail(key, "an integer");
      out = it->template get<int>();
    } else if constexpr (std::is_unsigned_v<T>) {
      if (!it->is_number_unsigned()) return fail(key, "a non-negative integer");
      out = it->template get<T>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) return fail(key, "an integer");
      out = it->template get<T>();
    } else {
      static_assert(sizeof(T) == 0, "unsupported field type");
    }
  }

  const json* Array(const char* key) {
    if (!status_.ok()) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    if (!it->is_array()) {
      fail(key, "an array");
      return nullptr;
    }
    return &*it;
  }

  void Merge(const absl::Status& s) {
    if (status_.ok() && !s.ok()) status_ = s;
  }
  const absl::Status& status() const { return status_; }

 private:
  void fail(std::string_view key, std::string_view expected) {
    if (!status_.ok()) return;
    status_ =
        absl::InvalidArgumentError(key.empty() ? StrCat(what_, " must be ", expected)
                                               : StrCat(what_, ".", key, " must be ", expected));
  }
  const json& j_;
  std::string what_;
  absl::Status status_;
};

std::string CodeName(absl::StatusCode code) {
  std::string name = absl::StatusCodeToString(code);  // "INVALID_ARGUMENT"
  return absl::AsciiStrToLower(name);
}

absl::StatusCode CodeFromName(std::string_view name) {
  for (int c = 0; c <= 16; ++c) {
    auto code = static_cast<absl::StatusCode>(c);
    if (CodeName(code) == name) return code;
  }
  return absl::StatusCode::kInternal;
}

}  // namespace

json ToJson(const TaskSpec& s) {
  json mounts = json::array();
  for (const auto& m : s.mounts) {
    mounts.push_back({{"source", m.source},
                      {"target", m.target},
                      {"readonly", m.readonly},
                      {"source_dev", m.source_dev},
                      {"source_ino", m.source_ino}});
  }
  json rlimits = json::array();
  for (const auto& r : s.rlimits) {
    rlimits.push_back({{"resource", r.resource}, {"soft", r.soft}, {"hard", r.hard}});
  }
  return {{"task_id", s.task_id},
          {"argv", s.argv},
          {"env", s.env},
          {"workdir", s.workdir},
          {"cgroup_v2", s.cgroup_v2},
          {"cgroup_v1", s.cgroup_v1},
          {"mounts", mounts},
          {"writable_paths", s.writable_paths},
          {"devices", s.devices},
          {"capabilities", s.capabilities},
          {"rlimits", rlimits},
          {"no_new_privs", s.no_new_privs},
          {"seccomp", s.seccomp},
          {"seccomp_deny", s.seccomp_deny},
          {"landlock", s.landlock},
          {"exec_allowed", s.exec_allowed},
          {"timeout_ms", s.timeout_ms},
          {"kill_after_ms", s.kill_after_ms},
          {"output_limit", s.output_limit},
          {"output_dir", s.output_dir},
          {"output_spool_dir", s.output_spool_dir},
          {"stdin_base64", absl::Base64Escape(s.stdin_data)},
          {"uid", s.uid},
          {"gid", s.gid},
          {"zone_address", s.zone_address},
          {"probe", s.probe},
          {"probe_skip", s.probe_skip},
          {"image_layers", s.image_layers},
          {"rootfs", s.rootfs},
          {"stdin_path", s.stdin_path},
          {"stdout_path", s.stdout_path},
          {"stderr_path", s.stderr_path},
          {"image_upper", s.image_upper},
          {"image_upper_volatile", s.image_upper_volatile},
          {"log_path", s.log_path},
          {"log_max_bytes", s.log_max_bytes},
          {"stdin_pipe", s.stdin_pipe},
          {"tty", s.tty},
          {"tty_rows", s.tty_rows},
          {"tty_cols", s.tty_cols},
          {"join_task", s.join_task},
          {"stdin_is_terminal", s.stdin_is_terminal}};
}

absl::StatusOr<TaskSpec> TaskSpecFromJson(const json& j) {
  TaskSpec s;
  Reader r(j, "task");
  r.Get("task_id", s.task_id, true);
  r.Get("argv", s.argv);
  r.Get("env", s.env);
  r.Get("workdir", s.workdir);
  r.Get("cgroup_v2", s.cgroup_v2);
  r.Get("cgroup_v1", s.cgroup_v1);
  if (const json* mounts = r.Array("mounts")) {
    for (const auto& m : *mounts) {
      Mount mount;
      Reader mr(m, "task.mounts[]");
      mr.Get("source", mount.source, true);
      mr.Get("target", mount.target, true);
      mr.Get("readonly", mount.readonly);
      mr.Get("source_dev", mount.source_dev);
      mr.Get("source_ino", mount.source_ino);
      r.Merge(mr.status());
      s.mounts.push_back(std::move(mount));
    }
  }
  r.Get("writable_paths", s.writable_paths);
  r.Get("devices", s.devices);
  r.Get("capabilities", s.capabilities);
  if (const json* rlimits = r.Array("rlimits")) {
    for (const auto& e : *rlimits) {
      Rlimit rl;
      Reader rr(e, "task.rlimits[]");
      rr.Get("resource", rl.resource, true);
      rr.Get("soft", rl.soft, true);
      rr.Get("hard", rl.hard, true);
      r.Merge(rr.status());
      s.rlimits.push_back(std::move(rl));
    }
  }
  r.Get("no_new_privs", s.no_new_privs);
  r.Get("seccomp", s.seccomp);
  r.Get("seccomp_deny", s.seccomp_deny);
  r.Get("landlock", s.landlock);
  r.Get("exec_allowed", s.exec_allowed);
  r.Get("timeout_ms", s.timeout_ms);
  r.Get("kill_after_ms", s.kill_after_ms);
  r.Get("output_limit", s.output_limit);
  r.Get("output_dir", s.output_dir);
  r.Get("output_spool_dir", s.output_spool_dir);
  std::string stdin_base64;
  r.Get("stdin_base64", stdin_base64);
  if (!absl::Base64Unescape(stdin_base64, &s.stdin_data)) {
    r.Merge(absl::InvalidArgumentError("task.stdin_base64 is not base64"));
  }
  r.Get("uid", s.uid);
  r.Get("gid", s.gid);
  r.Get("zone_address", s.zone_address);
  r.Get("probe", s.probe);
  r.Get("probe_skip", s.probe_skip);
  r.Get("image_layers", s.image_layers);
  r.Get("rootfs", s.rootfs);
  r.Get("stdin_path", s.stdin_path);
  r.Get("stdout_path", s.stdout_path);
  r.Get("stderr_path", s.stderr_path);
  r.Get("image_upper", s.image_upper);
  r.Get("image_upper_volatile", s.image_upper_volatile);
  r.Get("log_path", s.log_path);
  r.Get("log_max_bytes", s.log_max_bytes);
  r.Get("stdin_pipe", s.stdin_pipe);
  r.Get("tty", s.tty);
  r.Get("tty_rows", s.tty_rows);
  r.Get("tty_cols", s.tty_cols);
  r.Get("join_task", s.join_task);
  r.Get("stdin_is_terminal", s.stdin_is_terminal);
  if (!r.status().ok()) return r.status();
  if (s.task_id.empty()) return absl::InvalidArgumentError("task.task_id is empty");
  if (s.probe) {
    if (!s.argv.empty()) {
      return absl::InvalidArgumentError("task.argv must be empty for a probe task");
    }
  } else if (s.argv.empty() || s.argv[0].empty()) {
    return absl::InvalidArgumentError("task.argv is empty: give the command to run");
  }
  return s;
}

json ToJson(const TaskResult& t) {
  json j = {{"task_id", t.task_id},
            {"pid", t.pid},
            {"timed_out", t.timed_out},
            {"killed_after_grace", t.killed_after_grace},
            {"killed", t.killed},
            {"start_error", t.start_error},
            {"stdout_base64", absl::Base64Escape(t.stdout_data)},
            {"stderr_base64", absl::Base64Escape(t.stderr_data)},
            {"stdout_truncated", t.stdout_truncated},
            {"stderr_truncated", t.stderr_truncated},
            {"started_at_ns", t.started_at_ns},
            {"finished_at_ns", t.finished_at_ns},
            {"cpu_user_us", t.cpu_user_us},
            {"cpu_system_us", t.cpu_system_us},
            {"max_rss_kb", t.max_rss_kb},
            {"warnings", t.warnings},
            {"layers", t.layers},
            {"enforcement_events_lost", t.enforcement_events_lost}};
  json events = json::array();
  for (const auto& e : t.enforcement_events) events.push_back(ToJson(e));
  j["enforcement_events"] = std::move(events);
  j["exit_code"] = t.exit_code ? json(*t.exit_code) : json(nullptr);
  j["signal"] = t.signal ? json(*t.signal) : json(nullptr);
  return j;
}

absl::StatusOr<TaskResult> TaskResultFromJson(const json& j) {
  TaskResult t;
  Reader r(j, "result");
  r.Get("task_id", t.task_id, true);
  r.Get("pid", t.pid);
  r.Get("exit_code", t.exit_code);
  r.Get("signal", t.signal);
  r.Get("timed_out", t.timed_out);
  r.Get("killed_after_grace", t.killed_after_grace);
  r.Get("killed", t.killed);
  r.Get("start_error", t.start_error);
  // Output is bytes: base64 keeps what JSON strings (UTF-8) cannot hold.
  for (auto [key, out] :
       {std::pair{"stdout", &t.stdout_data}, std::pair{"stderr", &t.stderr_data}}) {
    std::string encoded;
    r.Get(StrCat(key, "_base64").c_str(), encoded);
    if (!encoded.empty()) {
      if (!absl::Base64Unescape(encoded, out)) {
        r.Merge(absl::InvalidArgumentError(StrCat("result.", key, "_base64 is not base64")));
      }
    } else {
      r.Get(key, *out);
    }
  }
  r.Get("stdout_truncated", t.stdout_truncated);
  r.Get("stderr_truncated", t.stderr_truncated);
  r.Get("started_at_ns", t.started_at_ns);
  r.Get("finished_at_ns", t.finished_at_ns);
  r.Get("cpu_user_us", t.cpu_user_us);
  r.Get("cpu_system_us", t.cpu_system_us);
  r.Get("max_rss_kb", t.max_rss_kb);
  r.Get("warnings", t.warnings);
  r.Get("layers", t.layers);
  r.Get("enforcement_events_lost", t.enforcement_events_lost);
  if (const json* events = r.Array("enforcement_events")) {
    for (const auto& e : *events) {
      auto event = EnforcementEventFromJson(e);
      if (!event.ok()) {
        r.Merge(absl::InvalidArgumentError(
            StrCat("result.enforcement_events[]: ", ToStd(event.status().message()))));
        break;
      }
      t.enforcement_events.push_back(*std::move(event));
    }
  }
  if (!r.status().ok()) return r.status();
  return t;
}

json ToJson(const TaskStatus& s) {
  return {{"task_id", s.task_id},
          {"pid", s.pid},
          {"running", s.running},
          {"started_at_ns", s.started_at_ns}};
}

absl::StatusOr<TaskStatus> TaskStatusFromJson(const json& j) {
  TaskStatus s;
  Reader r(j, "task");
  r.Get("task_id", s.task_id, true);
  r.Get("pid", s.pid);
  r.Get("running", s.running);
  r.Get("started_at_ns", s.started_at_ns);
  if (!r.status().ok()) return r.status();
  return s;
}

json ToJson(const ShimHello& h) {
  json tasks = json::array();
  for (const auto& t : h.tasks) tasks.push_back(ToJson(t));
  return {{"zone_id", h.zone_id}, {"pid", h.pid}, {"version", h.version}, {"tasks", tasks}};
}

absl::StatusOr<ShimHello> ShimHelloFromJson(const json& j) {
  ShimHello h;
  Reader r(j, "hello");
  r.Get("zone_id", h.zone_id, true);
  r.Get("pid", h.pid, true);
  r.Get("version", h.version);
  if (const json* tasks = r.Array("tasks")) {
    for (const auto& t : *tasks) {
      auto s = TaskStatusFromJson(t);
      if (!s.ok()) {
        r.Merge(s.status());
        break;
      }
      h.tasks.push_back(*std::move(s));
    }
  }
  if (!r.status().ok()) return r.status();
  return h;
}

json ToJson(const ProbeResult& p) {
  return {{"name", p.name},
          {"refused", p.refused},
          {"errno", p.errno_name},
          {"detail", p.detail},
          {"skipped", p.skipped}};
}

absl::StatusOr<std::vector<ProbeResult>> ProbeResultsFromJson(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) {
    return absl::InvalidArgumentError("probe output is not a JSON array of probe results");
  }
  std::vector<ProbeResult> out;
  for (const auto& e : j) {
    ProbeResult p;
    Reader r(e, "probe");
    r.Get("name", p.name, true);
    r.Get("refused", p.refused, true);
    r.Get("errno", p.errno_name);
    r.Get("detail", p.detail);
    r.Get("skipped", p.skipped);
    if (!r.status().ok()) return r.status();
    out.push_back(std::move(p));
  }
  return out;
}

json MakeEventFrame(std::string_view task_id, const EnforcementEvent& event) {
  return {{"event", ToJson(event)}, {"task_id", std::string(task_id)}};
}

bool IsEventFrame(const json& frame) {
  return frame.is_object() && frame.contains("event") && !frame.contains("id");
}

json MakeRequest(uint64_t id, std::string_view method, json params) {
  return {{"id", id}, {"method", std::string(method)}, {"params", std::move(params)}};
}

json MakeOkResponse(uint64_t id, json result) {
  return {{"id", id}, {"ok", true}, {"result", std::move(result)}};
}

json MakeErrorResponse(uint64_t id, const absl::Status& status) {
  return {
      {"id", id},
      {"ok", false},
      {"error", {{"code", CodeName(status.code())}, {"message", std::string(status.message())}}}};
}

absl::StatusOr<json> ParseResponse(const json& response) {
  auto ok = response.find("ok");
  if (ok == response.end() || !ok->is_boolean()) {
    return absl::InternalError("shim response has no boolean \"ok\"");
  }
  if (ok->get<bool>()) {
    auto result = response.find("result");
    if (result == response.end()) return json::object();
    return *result;
  }
  auto error = response.find("error");
  if (error == response.end() || !error->is_object()) {
    return absl::InternalError("shim error response has no \"error\" object");
  }
  std::string code = error->value("code", "internal");
  std::string message = error->value("message", "shim error");
  return absl::Status(CodeFromName(code), message);
}

}  // namespace rauha::shim
