#include "containerd-shim-rauha-v2/events.h"

#include <time.h>

#include "containerd-shim-rauha-v2/log.h"
#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h"

namespace rauha::cshim {

EventPublisher::EventPublisher(std::string ttrpc_address, std::string ns)
    : address_(std::move(ttrpc_address)), ns_(std::move(ns)) {
  thread_ = std::thread([this] { Loop(); });
}

EventPublisher::~EventPublisher() {
  Flush();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void EventPublisher::Publish(const std::string& topic, const google::protobuf::MessageLite& event) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::lock_guard lock(mu_);
  queue_.push_back({topic, event.GetTypeName(), event.SerializeAsString(),
                    int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec});
  cv_.notify_all();
}

void EventPublisher::Flush() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return queue_.empty() && !sending_; });
}

void EventPublisher::Loop() {
  std::unique_ptr<ttrpc::Client> client;
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    sending_ = true;
    lock.unlock();
    containerd::services::events::ttrpc::v1::ForwardRequest request;
    auto* envelope = request.mutable_envelope();
    envelope->mutable_timestamp()->set_seconds(item.timestamp_ns / 1'000'000'000);
    envelope->mutable_timestamp()->set_nanos(
        static_cast<int32_t>(item.timestamp_ns % 1'000'000'000));
    envelope->set_namespace_(ns_);
    envelope->set_topic(item.topic);
    envelope->mutable_event()->set_type_url(item.type_url);
    envelope->mutable_event()->set_value(item.value);
    absl::Status sent = absl::UnavailableError("not sent");
    for (int attempt = 0; attempt < 3 && !sent.ok(); attempt++) {
      if (!client || !client->connected()) {
        auto c = ttrpc::Client::Connect(address_);
        if (!c.ok()) {
          sent = c.status();
          continue;
        }
        client = std::move(*c);
      }
      sent = client
                 ->Call("containerd.services.events.ttrpc.v1.Events", "Forward",
                        request.SerializeAsString(), absl::Seconds(10))
                 .status();
      if (!sent.ok()) client.reset();
    }
    if (!sent.ok()) Log("event " + item.topic + " dropped: " + std::string(sent.message()));
    lock.lock();
    sending_ = false;
    cv_.notify_all();
  }
}

}  // namespace rauha::cshim
