// Publishes task events to containerd over ttrpc (containerd.services.events.ttrpc.v1.Events/
// Forward on $TTRPC_ADDRESS), one at a time from one thread, so containerd sees them in the
// order they happened (/tasks/create before /tasks/start before /tasks/exit before
// /tasks/delete: CRI depends on it). A failed send is retried on a fresh connection a few
// times, then dropped with a log line.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "google/protobuf/message_lite.h"

namespace rauha::cshim {

class EventPublisher {
 public:
  // `ttrpc_address`: containerd's ttrpc socket; `ns`: the containerd namespace of the events.
  EventPublisher(std::string ttrpc_address, std::string ns);
  ~EventPublisher();  // sends what is queued (bounded), then stops

  // Queues `event` under `topic` ("/tasks/exit"); its Any type_url is its bare full name
  // ("containerd.events.TaskExit"), as containerd's typeurl registry names it.
  void Publish(const std::string& topic, const google::protobuf::MessageLite& event);
  // Blocks until everything queued so far was sent or dropped.
  void Flush();

 private:
  struct Item {
    std::string topic;
    std::string type_url;
    std::string value;
    int64_t timestamp_ns;
  };
  void Loop();

  std::string address_;
  std::string ns_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool sending_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace rauha::cshim
