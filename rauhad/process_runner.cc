#include "rauhad/process_runner.h"

#include <time.h>

#include <cstdio>

#include "rauha-common/shim_protocol.h"
#include "rauha-common/strcat.h"
#include "rauhad/process_spec.h"
#include "rauhad/shim_client.h"

namespace rauha {
namespace {

namespace pb = rauha::process::v1;

bool ValidProcessId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  if (!std::isalnum(static_cast<unsigned char>(id[0]))) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

int64_t NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

absl::StatusOr<uint32_t> ProcessRunner::Start(const pb::StartProcessRequest& req) {
  if (!ValidProcessId(req.process_id())) {
    return absl::InvalidArgumentError(
        StrCat("process_id \"", req.process_id(),
               "\" must be 1-64 characters of [A-Za-z0-9_.-], starting with a letter or digit"));
  }
  if (req.args().empty()) return absl::InvalidArgumentError("args must not be empty");
  const bool exec = !req.join_process().empty();
  if (exec ? !req.rootfs().empty() : req.rootfs().empty() || req.rootfs()[0] != '/') {
    return absl::InvalidArgumentError(
        exec ? StrCat("join_process runs in ", req.join_process(), "'s root: rootfs must be empty")
             : StrCat("rootfs \"", req.rootfs(), "\" must be an absolute host path"));
  }
  auto process = std::make_shared<Process>();
  process->id = req.process_id();
  std::string join_zone;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return absl::UnavailableError("rauhad is stopping");
    if (exec) {
      auto target = processes_.find(req.join_process());
      if (target == processes_.end() || target->second->done) {
        return absl::FailedPreconditionError(
            StrCat("process ", req.join_process(), " is not running: nothing to join"));
      }
      join_zone = target->second->zone_id;
    }
    if (!processes_.emplace(req.process_id(), process).second) {
      return absl::AlreadyExistsError(StrCat("process ", req.process_id(), " already exists"));
    }
  }
  auto forget = [&] {
    std::lock_guard lock(mu_);
    processes_.erase(req.process_id());
  };
  auto zone = zones_->BeginTask(req.zone_name());
  if (!zone.ok()) {
    forget();
    return zone.status();
  }
  if (exec && zone->id != join_zone) {
    zones_->EndTask(zone->id);
    forget();
    return absl::InvalidArgumentError(
        StrCat("process ", req.join_process(), " does not run in zone ", req.zone_name()));
  }
  auto spec = ProcessTaskSpec(*zone, req, rules_);
  if (!spec.ok()) {
    zones_->EndTask(zone->id);
    forget();
    return spec.status();
  }
  ShimClient shim(zone->shim_socket);
  auto pid = shim.Start(*spec);
  if (!pid.ok()) {
    zones_->EndTask(zone->id);
    forget();
    return pid.status();
  }
  std::lock_guard lock(mu_);
  process->zone_id = zone->id;
  process->shim_socket = zone->shim_socket;
  process->pid = static_cast<uint32_t>(*pid);
  process->collector = std::thread([this, process] { Collect(process); });
  return process->pid;
}

void ProcessRunner::Collect(std::shared_ptr<Process> process) {
  ShimClient shim(process->shim_socket);
  auto result = shim.Wait(process->id, [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  });
  pb::WaitProcessResponse end;
  end.set_pid(process->pid);
  if (result.ok()) {
    // The process API has no place for them (containerd's tasks): rauhad's log says them,
    // e.g. that a root that cannot be idmapped kept the host's ids.
    for (const auto& w : result->warnings) {
      std::fprintf(stderr, "rauhad: process %s: %s\n", process->id.c_str(), w.c_str());
    }
    if (result->exit_code) end.set_exit_code(*result->exit_code);
    if (result->signal) end.set_signal(*result->signal);
    end.set_error(result->start_error);
    end.set_exited_at_unix_nano(result->finished_at_ns ? result->finished_at_ns : NowNs());
    (void)shim.Forget(process->id);
  } else if (result.status().code() == absl::StatusCode::kCancelled) {
    return;  // rauhad is stopping; the process runs on in its zone
  } else {
    end.set_error(StrCat("lost the process: ", result.status().message()));
    end.set_exited_at_unix_nano(NowNs());
  }
  zones_->EndTask(process->zone_id);
  std::lock_guard lock(mu_);
  process->end = std::move(end);
  process->done = true;
  cv_.notify_all();
}

absl::StatusOr<pb::WaitProcessResponse> ProcessRunner::Wait(
    const std::string& id, const std::function<bool()>& cancelled) {
  std::unique_lock lock(mu_);
  auto it = processes_.find(id);
  if (it == processes_.end()) return absl::NotFoundError(StrCat("process ", id, " not found"));
  std::shared_ptr<Process> process = it->second;
  while (!process->done) {
    if (stopping_) return absl::UnavailableError("rauhad is stopping");
    if (cancelled && cancelled()) return absl::CancelledError("wait cancelled");
    // Woken at the end; the slice only bounds how late a gone client is noticed.
    cv_.wait_for(lock, std::chrono::milliseconds(200));
  }
  return process->end;
}

absl::Status ProcessRunner::Kill(const std::string& id, int signal) {
  if (signal <= 0 || signal > 64) {
    return absl::InvalidArgumentError(StrCat("signal ", signal, " is not 1-64"));
  }
  std::string socket;
  {
    std::lock_guard lock(mu_);
    auto it = processes_.find(id);
    if (it == processes_.end()) return absl::NotFoundError(StrCat("process ", id, " not found"));
    if (it->second->done) {
      return absl::FailedPreconditionError(StrCat("process ", id, " already finished"));
    }
    socket = it->second->shim_socket;
  }
  return ShimClient(socket).Kill(id, signal);
}

absl::Status ProcessRunner::Delete(const std::string& id) {
  std::shared_ptr<Process> process;
  {
    std::lock_guard lock(mu_);
    auto it = processes_.find(id);
    if (it == processes_.end()) return absl::NotFoundError(StrCat("process ", id, " not found"));
    if (!it->second->done) {
      return absl::FailedPreconditionError(StrCat("process ", id, " is running: kill it first"));
    }
    process = it->second;
    processes_.erase(it);
  }
  if (process->collector.joinable()) process->collector.join();
  return absl::OkStatus();
}

void ProcessRunner::Stop() {
  std::map<std::string, std::shared_ptr<Process>> processes;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    processes = processes_;
  }
  cv_.notify_all();
  for (auto& [id, p] : processes) {
    if (p->collector.joinable()) p->collector.join();
  }
}

}  // namespace rauha
