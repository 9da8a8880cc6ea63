// The warm zone pool: temporary zones made ahead of sandbox calls, so that a call for a policy
// with a pooled zone skips the zone's set-up (cgroups in every hierarchy and their limits, the
// BPF programs attached and the zone's map entries, the shim spawned with the zone's
// namespaces, the bridged network). Each pooled zone serves exactly one task and is deleted
// after it, off the request path (deferred teardown), so every task still gets a fresh zone
// identity: nothing of one task is visible to the next.
//
// Keyed by policy digest (ZoneManager::PoolKey). The daemon's default policy is always pooled;
// a policy given inline is pooled from its first call on (its first call takes the ordinary
// path), for up to `max_policies` policies, the least recently used giving way.
//
// The number kept ready follows demand: it starts at `zones_per_policy` and grows by one
// (up to `max_zones_per_policy`) for every call that finds the policy's pool empty; a policy left
// without calls for `shrink_after` is back at `zones_per_policy`, its extra zones deleted. So a
// burst of parallel calls is served from the pool from the second burst on, and an idle daemon
// keeps only the base number.
//
// One background thread at a raised nice value does all the pool's work: the deferred
// deletions first, then refills, one zone at a time. A refill for a policy whose pool is
// empty runs at normal priority (calls are waiting for zones like it). While a call that took a
// pooled zone runs, a policy that still has a zone ready is refilled only after that call (or 100
// ms): the refill would compete with the call's task start for cgroup locks and the disk. Pooled
// zones are temporary zones in the store, so a crash leaves nothing the next start does not remove
// (RemoveIdleTemporaryZones).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "rauhad/zone_manager.h"

namespace rauha {

class WarmPool {
 public:
  struct Options {
    uint32_t zones_per_policy = 2;  // 0: no pool; every call takes the ordinary path
    // The most kept ready per policy after calls found it empty (see above); below
    // zones_per_policy it is zones_per_policy.
    uint32_t max_zones_per_policy = 8;
    std::chrono::milliseconds shrink_after{30000};
    uint32_t max_policies = 4;  // policies pooled at once, the default policy included
    int nice = 10;              // of the pool's thread (the shims it spawns run at 0)
  };
  struct Stats {
    uint64_t hits = 0;      // calls served from the pool
    uint64_t misses = 0;    // calls that took the ordinary path
    uint64_t created = 0;   // zones the pool made
    uint64_t retired = 0;   // used zones it deleted after their task
    uint32_t ready = 0;     // pooled zones waiting now
    uint32_t target = 0;    // zones the pool aims to keep ready now, all policies together
    uint32_t policies = 0;  // policies pooled now
  };

  WarmPool(ZoneManager* zones, Options options);
  ~WarmPool();
  WarmPool(const WarmPool&) = delete;
  WarmPool& operator=(const WarmPool&) = delete;

  // Starts the background thread, which fills the pool for the default policy. Call after
  // ZoneManager::Recover and RemoveIdleTemporaryZones.
  void Start();
  // A pooled zone for `policy_toml` ("" = the default policy), now claimed by the caller (an
  // ordinary temporary zone), or nullopt: none is ready (the pool starts keeping some).
  // `keep`: the zone outlives the call (a container's; ZoneManager::ClaimPooled).
  std::optional<std::string> Claim(const std::string& policy_toml, bool keep = false);
  // The task of a claimed zone ended: the zone takes no other task and is deleted in the
  // background. After Stop, it is deleted before this returns. Any zone may be retired this
  // way (a container's zone, pooled or not, goes off the request path too); `claimed`: it
  // came from Claim (its call has ended).
  void Retire(const std::string& zone_name, bool claimed = true);
  // Stops the thread, deletes the zones still waiting in the pool and those retired and not
  // yet deleted. Idempotent.
  void Stop();
  Stats stats();

 private:
  struct Entry {
    std::string policy_toml;  // as given ("" = the default policy)
    std::deque<std::string> ready;
    uint32_t target = 0;   // zones to keep ready now (grows with demand, shrinks when idle)
    bool filling = false;  // the thread is making a zone for it
    std::chrono::steady_clock::time_point last_used;
    std::chrono::steady_clock::time_point retry_after;  // after a failed create
  };

  void Run();
  // The key whose entry most lacks a zone, or "" when all are full. mu_ held.
  std::string NextToFill(std::chrono::steady_clock::time_point now);
  // Forgets the least recently used entry beyond max_policies (its zones retired). mu_ held.
  void EvictLocked();
  // A call found `e` empty: it keeps one more zone ready (bounded). mu_ held.
  void GrowLocked(Entry& e);
  // Entries idle for shrink_after go back to the base size, their extra zones retired; returns
  // when the next entry would be idle long enough (or max). mu_ held.
  std::chrono::steady_clock::time_point ShrinkIdleLocked(std::chrono::steady_clock::time_point now);
  uint32_t Base() const { return options_.zones_per_policy; }
  uint32_t Max() const {
    return std::max(options_.zones_per_policy, options_.max_zones_per_policy);
  }

  ZoneManager* zones_;
  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Entry> entries_;  // by pool key
  std::string default_key_;               // never evicted
  std::deque<std::string> retire_;        // zone names to delete
  bool deleting_ = false;
  uint32_t in_flight_ = 0;  // claimed zones whose call has not ended (Retire)
  std::chrono::steady_clock::time_point last_claim_;
  bool started_ = false;
  bool stopping_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace rauha
