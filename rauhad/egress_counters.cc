#include "rauhad/egress_counters.h"

#include <cstdio>
#include <vector>

#include "rauha-common/strcat.h"

namespace rauha {
namespace {}  // namespace

absl::Status EgressCounterKeeper::Load() {
  auto records = store_->ListEgressCounters();
  if (!records.ok()) return records.status();
  std::lock_guard lock(flush_mu_);
  for (const auto& r : *records) {
    proxy_->SeedCounters(r.zone_id, r);
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
    // The counts of the stats (not `open`, not the budget), under the zone's id.
    store::EgressCounterRecord r{stats, zone_id};
    auto it = written_.find(zone_id);
    if (it == written_.end() || it->second != r) changed.push_back(std::move(r));
  }
  // Zones the proxy forgot (deleted) are forgotten here too; the store drops their rows itself.
  std::erase_if(written_, [&](const auto& kv) { return !all.count(kv.first); });
  if (changed.empty()) return absl::OkStatus();
  if (auto st = store_->PutEgressCounters(changed); !st.ok()) return st;
  for (auto& r : changed) written_[r.zone_id] = std::move(r);
  return absl::OkStatus();
}

}  // namespace rauha
