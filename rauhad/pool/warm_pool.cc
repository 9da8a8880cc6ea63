#include "rauhad/pool/warm_pool.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

// A policy whose pooled zone could not be made (a limit the host refuses, a full disk) is
// tried again this much later, not in a loop.
constexpr std::chrono::seconds kRetryAfterFailure{5};
// A refill takes the locks a starting task needs (cgroup_mutex for cgroup creation and BPF
// attach) and the audit log's fsync, so while a call that took a pooled zone runs, the refill
// of a policy that still has a zone ready waits for that call to end, at most this long (a
// long task must not keep the pool low).
constexpr std::chrono::milliseconds kRefillDelay{100};

}  // namespace

WarmPool::WarmPool(ZoneManager* zones, Options options) : zones_(zones), options_(options) {}

WarmPool::~WarmPool() { Stop(); }

void WarmPool::Start() {
  std::lock_guard lock(mu_);
  if (started_ || options_.zones_per_policy == 0) return;
  auto key = zones_->PoolKey("");
  if (!key.ok()) {
    std::fprintf(stderr, "rauhad: warm pool: the default policy: %s; no pool\n",
                 ToStd(key.status().message()).c_str());
    return;
  }
  default_key_ = *key;
  Entry& e = entries_[default_key_];
  e.target = Base();
  e.last_used = std::chrono::steady_clock::now();
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

std::optional<std::string> WarmPool::Claim(const std::string& policy_toml, bool keep) {
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopping_) return std::nullopt;
  }
  // A policy that does not parse takes the ordinary path, which says why.
  auto key = zones_->PoolKey(policy_toml);
  if (!key.ok()) return std::nullopt;
  std::lock_guard lock(mu_);
  if (!started_ || stopping_) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  auto it = entries_.find(*key);
  if (it == entries_.end()) {
    // Pooled from now on: an agent sends the same policy with every call.
    Entry& e = entries_[*key];
    e.policy_toml = policy_toml;
    e.target = Base();
    e.last_used = now;
    EvictLocked();
    ++stats_.misses;
    cv_.notify_all();
    return std::nullopt;
  }
  it->second.last_used = now;
  // Lock order: the pool's, then the registry's (the registry never calls the pool).
  while (!it->second.ready.empty()) {
    std::string name = std::move(it->second.ready.front());
    it->second.ready.pop_front();
    if (zones_->ClaimPooled(name, keep)) {
      ++stats_.hits;
      ++in_flight_;
      last_claim_ = now;
      cv_.notify_all();  // refill (or plan it)
      return name;
    }
    retire_.push_back(std::move(name));  // its shim died while it waited (or not kept)
  }
  GrowLocked(it->second);
  ++stats_.misses;
  cv_.notify_all();
  return std::nullopt;
}

void WarmPool::Retire(const std::string& zone_name, bool claimed) {
  zones_->MarkRetiring(zone_name);
  {
    std::lock_guard lock(mu_);
    if (claimed && in_flight_ > 0) --in_flight_;
    if (thread_.joinable() && !stopping_) {
      retire_.push_back(zone_name);
      cv_.notify_all();
      return;
    }
  }
  auto st = zones_->DeleteInternal(zone_name, /*force=*/true);
  if (!st.ok() && !absl::IsNotFound(st)) {
    std::fprintf(stderr, "rauhad: removing temporary zone %s: %s\n", zone_name.c_str(),
                 ToStd(st.message()).c_str());
  }
}

void WarmPool::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  thread_.join();
  Stats st = stats();
  std::fprintf(stderr,
               "rauhad: warm pool stopped: %llu calls served from it, %llu not; %llu zones made, "
               "%llu deleted\n",
               static_cast<unsigned long long>(st.hits), static_cast<unsigned long long>(st.misses),
               static_cast<unsigned long long>(st.created),
               static_cast<unsigned long long>(st.retired));
}

WarmPool::Stats WarmPool::stats() {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.ready = 0;
  for (const auto& [key, e] : entries_) {
    s.ready += static_cast<uint32_t>(e.ready.size());
    s.target += e.target;
  }
  s.policies = static_cast<uint32_t>(entries_.size());
  return s;
}

std::string WarmPool::NextToFill(std::chrono::steady_clock::time_point now) {
  std::string best;
  size_t fewest = SIZE_MAX;
  const bool calls_running = in_flight_ > 0 && now - last_claim_ < kRefillDelay;
  for (const auto& [key, e] : entries_) {
    if (e.filling || e.retry_after > now || e.ready.size() >= e.target) continue;
    if (calls_running && !e.ready.empty()) continue;
    if (e.ready.size() < fewest) {
      fewest = e.ready.size();
      best = key;
    }
  }
  return best;
}

void WarmPool::GrowLocked(Entry& e) {
  if (e.target < Max()) ++e.target;
}

std::chrono::steady_clock::time_point WarmPool::ShrinkIdleLocked(
    std::chrono::steady_clock::time_point now) {
  auto next = std::chrono::steady_clock::time_point::max();
  for (auto& [key, e] : entries_) {
    if (e.target > Base()) {
      const auto idle_at = e.last_used + options_.shrink_after;
      if (idle_at > now) {
        next = std::min(next, idle_at);
      } else {
        std::fprintf(
            stderr,
            "rauhad: warm pool: policy %s had no call for %lld s: keeping %u zones, not "
            "%u\n",
            key.substr(0, 12).c_str(),
            static_cast<long long>(
                std::chrono::duration_cast<std::chrono::seconds>(options_.shrink_after).count()),
            Base(), e.target);
        e.target = Base();
      }
    }
    // (A zone made while its policy shrank is one too many too.)
    while (e.ready.size() > e.target) {
      retire_.push_back(std::move(e.ready.back()));
      e.ready.pop_back();
    }
  }
  return next;
}

void WarmPool::EvictLocked() {
  while (entries_.size() > std::max<uint32_t>(options_.max_policies, 1)) {
    auto lru = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == default_key_ || it->second.filling) continue;
      if (lru == entries_.end() || it->second.last_used < lru->second.last_used) lru = it;
    }
    if (lru == entries_.end()) return;
    for (auto& name : lru->second.ready) retire_.push_back(std::move(name));
    entries_.erase(lru);
  }
}

void WarmPool::Run() {
  // Refills yield to request threads; the shims they spawn run at normal priority
  // (ZoneManager::Bringup).
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.nice);
  int current_nice = options_.nice;
  std::unique_lock lock(mu_);
  while (true) {
    // Deletions first: they give back what the next zones need (memory, addresses).
    if (!retire_.empty()) {
      std::string name = std::move(retire_.front());
      retire_.pop_front();
      deleting_ = true;
      lock.unlock();
      auto st = zones_->DeleteInternal(name, /*force=*/true);
      if (!st.ok() && !absl::IsNotFound(st)) {
        std::fprintf(stderr, "rauhad: warm pool: removing zone %s: %s\n", name.c_str(),
                     ToStd(st.message()).c_str());
      }
      lock.lock();
      deleting_ = false;
      ++stats_.retired;
      continue;
    }
    if (stopping_) {
      // What still waits in the pool goes too; then the thread ends.
      for (auto& [key, e] : entries_) {
        for (auto& name : e.ready) retire_.push_back(std::move(name));
        e.ready.clear();
      }
      if (!retire_.empty()) continue;
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    const auto shrink_at = ShrinkIdleLocked(now);
    if (!retire_.empty()) continue;
    std::string key = NextToFill(now);
    if (key.empty()) {
      auto wake = shrink_at;
      for (const auto& [k, e] : entries_) {
        if (e.retry_after > now && e.ready.size() < e.target) wake = std::min(wake, e.retry_after);
        if (in_flight_ > 0 && e.ready.size() < e.target)
          wake = std::min(wake, last_claim_ + kRefillDelay);
      }
      if (wake == std::chrono::steady_clock::time_point::max()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, wake);
      }
      continue;
    }
    Entry& entry = entries_[key];
    entry.filling = true;
    const std::string policy_toml = entry.policy_toml;
    // Calls find this policy's pool empty: its refill is as urgent as they are.
    const int nice = entry.ready.empty() && entry.target > Base() ? 0 : options_.nice;
    lock.unlock();
    if (nice != current_nice) {
      (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
      current_nice = nice;
    }
    auto made = zones_->CreatePooled(policy_toml);
    lock.lock();
    auto it = entries_.find(key);
    if (it != entries_.end()) it->second.filling = false;
    if (!made.ok()) {
      std::fprintf(stderr, "rauhad: warm pool: making a zone (policy %s): %s\n",
                   key.substr(0, 12).c_str(), ToStd(made.status().message()).c_str());
      if (it != entries_.end()) it->second.retry_after = now + kRetryAfterFailure;
      continue;
    }
    ++stats_.created;
    auto& [name, made_key] = *made;
    if (it == entries_.end() || stopping_) {
      retire_.push_back(std::move(name));  // evicted (or stopping) while it was made
      continue;
    }
    if (made_key != key) {
      // The policy resolves differently now (the default policy file changed): the zone is
      // right for its new key, and the old key is gone.
      Entry moved = std::move(it->second);
      entries_.erase(it);
      if (key == default_key_) default_key_ = made_key;
      Entry& target = entries_[made_key];
      if (target.ready.empty() && target.policy_toml.empty()) target.policy_toml = policy_toml;
      target.last_used = std::max(target.last_used, moved.last_used);
      target.target = std::max({target.target, moved.target, Base()});
      for (auto& n : moved.ready) retire_.push_back(std::move(n));
      std::fprintf(stderr, "rauhad: warm pool: zone %s ready\n", name.c_str());
      target.ready.push_back(std::move(name));
      continue;
    }
    // Said once it can be claimed (tests wait for it: a zone's shim runs before that).
    std::fprintf(stderr, "rauhad: warm pool: zone %s ready\n", name.c_str());
    it->second.ready.push_back(std::move(name));
  }
}

}  // namespace rauha
