#include "rauhad/server/event_watch.h"

#include "rauhad/server/status.h"

namespace rauha {

EventWatch::EventWatch(EventBus* bus, const std::string& zone_name) : bus_(bus) {
  // on_ready runs under the bus lock, and Unsubscribe (in OnDone) takes that lock: so this
  // object is alive whenever on_ready runs. PumpLocked reads sub_ only after the headers went
  // out, which is after sub_ is set here.
  auto sub = bus_->Subscribe(zone_name, [this] {
    std::lock_guard lock(mu_);
    PumpLocked();
  });
  if (!sub.ok()) {
    std::lock_guard lock(mu_);
    FinishLocked(ToGrpc(sub.status()));
    return;
  }
  sub_ = *std::move(sub);
  // Headers first, so a client knows the watch is live before the first event.
  StartSendInitialMetadata();
}

void EventWatch::OnSendInitialMetadataDone(bool ok) {
  std::lock_guard lock(mu_);
  headers_sent_ = true;
  if (!ok) cancelled_ = true;
  PumpLocked();
}

void EventWatch::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  writing_ = false;
  if (!ok) cancelled_ = true;
  PumpLocked();
}

void EventWatch::OnCancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  PumpLocked();
}

void EventWatch::OnDone() {
  // No on_ready after Unsubscribe; then wait out a thread that still holds mu_ (the one that
  // called Finish may not have released it yet).
  if (sub_) bus_->Unsubscribe(sub_);
  { std::lock_guard lock(mu_); }
  delete this;
}

void EventWatch::PumpLocked() {
  if (finished_ || !headers_sent_ || writing_) return;
  // Finish only with no write in flight: the write's completion comes back first.
  if (cancelled_) return FinishLocked(grpc::Status::CANCELLED);
  if (sub_->closed()) return FinishLocked(grpc::Status::OK);
  std::optional<ZoneEventRecord> e = sub_->Pop();
  if (!e) return;
  out_.set_zone_name(std::move(e->zone_name));
  out_.set_event_type(std::move(e->event_type));
  out_.set_message(std::move(e->message));
  out_.set_timestamp(std::move(e->timestamp));
  writing_ = true;
  StartWrite(&out_);
}

void EventWatch::FinishLocked(grpc::Status status) {
  if (finished_) return;
  finished_ = true;
  Finish(std::move(status));
}

}  // namespace rauha
