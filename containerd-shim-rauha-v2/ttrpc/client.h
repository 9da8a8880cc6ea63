// A ttrpc client over one unix socket connection: calls from many threads at once, each on its
// own odd stream id (1, 3, 5, ...), answered in any order; a reader thread hands each response
// to its caller. A call with a timeout sends timeout_nano and gives up with DeadlineExceeded
// at the deadline. When the connection closes, every open call ends Unavailable.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "containerd-shim-rauha-v2/ttrpc/frame.h"
#include "rauha-common/fd.h"

namespace rauha::ttrpc {

// Lets another thread end a call that waits for its answer: the call returns Cancelled at once
// (or at its start, when cancelled before). ttrpc has no cancel message: the server learns it
// only when the connection closes, and its late answer is dropped.
class CallCanceller {
 public:
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Client;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::function<void()> wake_;  // set while a call waits
};

// (key, value) pairs a server sent ahead of its answer (ttrpc::CallContext::send_metadata).
using InitialMetadata = std::vector<std::pair<std::string, std::string>>;

class Client {
 public:
  // `max_response`: the largest answer payload read; a larger one ends its call
  // ResourceExhausted. Above ttrpc's 4 MiB only for a server that sends more (rauhad's
  // RunSandbox).
  static absl::StatusOr<std::unique_ptr<Client>> Connect(std::string_view address,
                                                         uint32_t max_response = kMaxPayload);
  // Takes a connected socket (tests: a socketpair).
  explicit Client(UniqueFd fd, uint32_t max_response = kMaxPayload);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  absl::StatusOr<std::string> Call(
      const std::string& service, const std::string& method, const std::string& payload,
      absl::Duration timeout = absl::InfiniteDuration(),
      const std::vector<std::pair<std::string, std::string>>& metadata = {},
      CallCanceller* canceller = nullptr, InitialMetadata* initial_metadata = nullptr);

  template <typename Response, typename Request>
  absl::StatusOr<Response> CallMethod(const std::string& service, const std::string& method,
                                      const Request& request,
                                      absl::Duration timeout = absl::InfiniteDuration(),
                                      CallCanceller* canceller = nullptr) {
    absl::StatusOr<std::string> bytes =
        Call(service, method, request.SerializeAsString(), timeout, {}, canceller);
    if (!bytes.ok()) return bytes.status();
    Response response;
    if (!response.ParseFromString(*bytes)) {
      return absl::InternalError("cannot decode " + response.GetTypeName() + " from " + service +
                                 "/" + method);
    }
    return response;
  }

  // False once the peer closed the connection.
  bool connected() const;

 private:
  struct Pending {
    bool done = false;
    absl::Status status;
    std::string payload;
    InitialMetadata initial_metadata;
  };
  void ReadLoop();

  UniqueFd fd_;
  uint32_t max_response_;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::mutex write_mu_;
  uint32_t next_stream_ = 1;
  bool closed_ = false;
  std::map<uint32_t, std::shared_ptr<Pending>> pending_;
};

// One call on connection `fd` (connected, used for nothing else), on the caller's thread: no
// reader thread, for a process that makes one call and exits (rauha's CLI). Sends the request,
// then reads until the answer, collecting what the server sends ahead of it. Another thread
// ends the call by ::shutdown(fd, SHUT_RDWR): it returns Unavailable then, and the server sees
// the connection close.
absl::StatusOr<std::string> CallOnConnection(int fd, const std::string& service,
                                             const std::string& method, const std::string& payload,
                                             uint32_t max_response = kMaxPayload,
                                             InitialMetadata* initial_metadata = nullptr);

// One call of a method that answers with a stream (rauhad's RunContainer, see
// ttrpc::CallContext::send_data) on connection `fd` (connected, used for nothing else), on the
// caller's thread: sends the request, hands each data frame's payload on stream 1 to
// `on_data` as it arrives, and returns the final answer's status (its payload, if any, is
// ignored). Frames of other streams or types are skipped. What ends the call early, and is
// returned as is: `on_data`'s error (the caller closes the connection, which the server sees
// as a cancellation); a data frame over `max_data` bytes (ResourceExhausted); an answer that is
// not a ttrpc Response (Internal); the connection closing first, or ::shutdown(fd, SHUT_RDWR)
// from another thread (Unavailable).
absl::Status StreamingCallOnConnection(int fd, const std::string& service,
                                       const std::string& method, const std::string& payload,
                                       const std::function<absl::Status(std::string_view)>& on_data,
                                       uint32_t max_data = kMaxPayload);

}  // namespace rauha::ttrpc
