#include "rauhad/egress_counters.h"

#include <cstdio>
#include <vector>

#include "rauha-common/strcat.h"

namespace rauha {
namespace {

store::EgressCounterRecord RecordOf(const std::string& zone_id, const egress::ProxyZoneStats& s) {
  store::EgressCounterRecord r;
  r.zone_id = zone_id;
  r.bytes_out = s.bytes_out;
  r.bytes_in = s.bytes_in;
  r.connections = s.connections;
  r.refused = s.refused;
  r.secrets_injected = s.secrets_injected;
  r.secret_misuses = s.secret_misuses;
  r.tls_terminated = s.tls_terminated;
  r.budget_closed = s.budget_closed;
  return r;
}

bool Same(const store::EgressCounterRecord& a, const store::EgressCounterRecord& b) {
  return a.bytes_out == b.bytes_out && a.bytes_in == b.bytes_in && a.connections == b.connections &&
         a.refused == b.refused && a.secrets_injected == b.secrets_injected &&
         a.secret_misuses == b.secret_misuses && a.tls_terminated == b.tls_terminated &&
         a.budget_closed == b.budget_closed;
}

}  // namespace

absl::Status EgressCounterKeeper::Load() {
  auto records = store_->ListEgressCounters();
  if (!records.ok()) return records.status();
  std::lock_guard lock(flush_mu_);
  for (const auto& r : *records) {
    egress::ProxyZoneStats s;
    s.bytes_out = r.bytes_out;
    s.bytes_in = r.bytes_in;
    s.connections = r.connections;
    s.refused = r.refused;
    s.secrets_injected = r.secrets_injected;
    s.secret_misuses = r.secret_misuses;
    s.tls_terminated = r.tls_terminated;
    s.budget_closed = r.budget_closed;
    proxy_->SeedCounters(r.zone_id, s);
    written_[r.zone_id] = r;
  }
  return absl::OkStatus();
}

void EgressCounterKeeper::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, kFlushInterval, [this] { return stop_; });
      if (stop_) break;
      lock.unlock();
      if (auto st = Flush(); !st.ok()) {
        std::fprintf(stderr, "rauhad: recording egress counters: %s\n",
                     ToStd(st.message()).c_str());
      }
      lock.lock();
    }
  });
}

void EgressCounterKeeper::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (auto st = Flush(); !st.ok()) {
    std::fprintf(stderr, "rauhad: recording egress counters: %s\n", ToStd(st.message()).c_str());
  }
}

absl::Status EgressCounterKeeper::Flush() {
  std::lock_guard lock(flush_mu_);
  std::vector<store::EgressCounterRecord> changed;
  auto all = proxy_->AllCounters();
  for (const auto& [zone_id, stats] : all) {
    store::EgressCounterRecord r = RecordOf(zone_id, stats);
    auto it = written_.find(zone_id);
    if (it == written_.end() || !Same(it->second, r)) changed.push_back(std::move(r));
  }
  // Zones the proxy forgot (deleted) are forgotten here too; the store drops their rows itself.
  std::erase_if(written_, [&](const auto& kv) { return !all.count(kv.first); });
  if (changed.empty()) return absl::OkStatus();
  if (auto st = store_->PutEgressCounters(changed); !st.ok()) return st;
  for (auto& r : changed) written_[r.zone_id] = std::move(r);
  return absl::OkStatus();
}

}  // namespace rauha
