// The egress proxy's counters per zone (bytes both ways, which the zone's byte budget
// [network] egress_bytes_max is measured against, connections, refusals, secrets injected,
// misuses, TLS ended, connections the budget closed) kept in SQLite, so that a restarted rauhad
// continues them: a zone gets no fresh budget, and `rauha zone stats` no fresh counts, by
// outliving a restart. Deleting the zone deletes them (Store::DeleteZone).
//
// Writes are batched, never one per relayed chunk: every kFlushInterval the zones whose
// counters changed are written in one transaction, and Stop writes the last ones. A crash
// (kill -9) loses at most the counts of the interval before it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "rauhad/egress/proxy.h"
#include "rauhad/store/store.h"

namespace rauha {

class EgressCounterKeeper {
 public:
  static constexpr std::chrono::milliseconds kFlushInterval{1000};

  EgressCounterKeeper(store::Store* store, egress::EgressProxy* proxy)
      : store_(store), proxy_(proxy) {}
  ~EgressCounterKeeper() { Stop(); }
  EgressCounterKeeper(const EgressCounterKeeper&) = delete;
  EgressCounterKeeper& operator=(const EgressCounterKeeper&) = delete;

  // Gives the proxy the counters the store holds; before zones get their listeners again.
  absl::Status Load();
  // Writes every kFlushInterval from here on.
  void Start();
  // Writes what changed since the last batch, and stops.
  void Stop();
  // One batch: the zones whose counters changed since the last one.
  absl::Status Flush();

 private:
  store::Store* store_;
  egress::EgressProxy* proxy_;
  std::mutex flush_mu_;  // one batch at a time; guards written_
  std::map<std::string, store::EgressCounterRecord> written_;  // by zone id
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace rauha
