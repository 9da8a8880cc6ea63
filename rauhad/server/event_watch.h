// One WatchEvents stream as a gRPC callback reactor: it holds no thread while it waits for
// events (a thread per watcher made 4000 watchers 4000 threads), and it ends as soon as the
// event bus closes, so rauhad's stop is not held up by connected `rauha events` clients.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>

#include "rauha/v1/zone.grpc.pb.h"
#include "rauhad/event_bus.h"

namespace rauha {

class EventWatch final : public grpc::ServerWriteReactor<rauha::zone::v1::ZoneEvent> {
 public:
  // Subscribes to `bus` (events of `zone_name`, or all when empty); a refused subscription
  // finishes the call at once with that status. Deletes itself when the call is done.
  EventWatch(EventBus* bus, const std::string& zone_name);

  void OnSendInitialMetadataDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Starts the next write if none is in flight; finishes the call once the bus closed or the
  // client went away. Called with mu_ held.
  void PumpLocked();
  void FinishLocked(grpc::Status status);

  EventBus* bus_;
  std::shared_ptr<EventBus::Subscription> sub_;
  std::mutex mu_;
  bool headers_sent_ = false;
  bool writing_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
  rauha::zone::v1::ZoneEvent out_;
};

// A WatchEvents call refused before it subscribes (e.g. an invalid zone name).
class RefusedWatch final : public grpc::ServerWriteReactor<rauha::zone::v1::ZoneEvent> {
 public:
  explicit RefusedWatch(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace rauha
