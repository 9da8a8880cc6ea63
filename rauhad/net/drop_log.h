// The packets nftables dropped, read from an NFLOG group (libnetfilter_log) in rauhad's network
// namespace: the zone chains' drop rules log to it ("log group N prefix rauha/<kind>/<id8>"),
// rate-limited per zone chain in the kernel. One thread waits on the socket; Drain() handles
// what is queued now, so a task's result can hold the drops of its last moments.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "rauha-common/fd.h"
#include "rauhad/net/drop_packet.h"

struct nflog_handle;
struct nflog_g_handle;
struct nflog_data;
struct nfgenmsg;

namespace rauha::net {

class DropLog {
 public:
  // Called on the reader thread (or Drain's caller) with the log's own lock held: it must not
  // call back into the DropLog.
  using Sink = std::function<void(const DroppedPacket& packet, int64_t time_ns)>;

  explicit DropLog(uint16_t group) : group_(group) {}
  ~DropLog() { Stop(); }
  DropLog(const DropLog&) = delete;
  DropLog& operator=(const DropLog&) = delete;

  void SetSink(Sink sink);
  uint16_t group() const { return group_; }
  // Binds the group and starts the reader; a no-op when running. EBUSY: another process
  // (another rauhad in this network namespace) holds the group. `netns_fd` >= 0: the group of
  // that network namespace (a pod's: NFLOG groups are per namespace), not rauhad's.
  absl::Status Start(int netns_fd = -1);
  void Stop();
  // Handles every message queued on the socket now.
  void Drain();
  // Messages the kernel could not queue (the socket's buffer was full).
  uint64_t lost() const;

 private:
  static int OnPacket(nflog_g_handle* gh, nfgenmsg* msg, nflog_data* data, void* self);
  void Loop();
  void ReadPendingLocked();  // read_mu_ held

  const uint16_t group_;
  mutable std::mutex read_mu_;  // the handle, the sink and the counters
  nflog_handle* handle_ = nullptr;
  nflog_g_handle* group_handle_ = nullptr;
  UniqueFd stop_;  // eventfd: wakes the reader to end
  std::thread reader_;
  Sink sink_;
  uint64_t lost_ = 0;
};

}  // namespace rauha::net
