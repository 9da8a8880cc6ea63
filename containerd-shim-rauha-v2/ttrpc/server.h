// A ttrpc server on a listening unix socket. Each connection has a reader thread; each request
// runs on a thread of its own, because containerd keeps calls open (Task.Wait blocks until the
// process exits) while it sends others on the same connection. Responses go out in the order
// they finish, under the request's stream id.
//
// Per-request timeouts: a request with timeout_nano gets DeadlineExceeded when its handler has
// not answered by then (the handler's late answer is dropped); handlers can also read the
// deadline from the CallContext. Unknown service or method: Unimplemented. A request frame
// over 4 MiB: ResourceExhausted on its stream; an undecodable request or an even (server-side)
// stream id: InvalidArgument. Frames of other types are ignored, as containerd's ttrpc does.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <sys/socket.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"
#include "rauha-common/fd.h"

namespace rauha::ttrpc {

struct CallContext {
  std::string service;
  std::string method;
  absl::Time deadline = absl::InfiniteFuture();
  std::vector<std::pair<std::string, std::string>> metadata;
  uid_t peer_uid = 0;
  // Set once the request's connection has closed: ttrpc has no cancel message, a client that
  // gives up closes its connection (a handler that blocks, e.g. a wait, polls this).
  std::shared_ptr<const std::atomic<bool>> connection_closed;
  // Sends (key, value) to the client before the answer: a data frame on the request's stream
  // whose payload is a ttrpc KeyValue. rauha's extension, gRPC's initial metadata for ttrpc
  // (rauhad's RunSandbox names the task it started, so a client cut off later can collect
  // it); Client::Call hands them to its caller, containerd's ttrpc ignores such frames. Does
  // nothing once the answer has gone out.
  std::function<void(std::string_view key, std::string_view value)> send_metadata;
  // Sends `payload` to the client before the answer as a data frame (type 3, flags 0) on the
  // request's stream: rauha's server stream for ttrpc (rauhad's RunContainer sends each of its
  // messages so; the client of such a method reads them as its messages, not as metadata).
  // Blocks while the client's socket is full, so a client that reads slowly holds the handler
  // back. False when it did not go: the answer has gone out, the connection is closed, or the
  // payload is over ttrpc's 4 MiB.
  std::function<bool(std::string_view payload)> send_data;
  // The first value of metadata `key`, or "".
  std::string Metadata(std::string_view key) const;
  bool cancelled() const { return connection_closed && connection_closed->load(); }
};

using Handler =
    std::function<absl::StatusOr<std::string>(const CallContext&, const std::string& payload)>;

class Server {
 public:
  Server();
  ~Server();  // Shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Before Serve only. Connections whose peer (SO_PEERCRED) `allow` refuses are closed at
  // accept, before anything is read from them. Default: every peer.
  void SetPeerFilter(std::function<bool(const ucred&)> allow);
  // Before Serve only. The largest answer payload sent (default kMaxPayload, ttrpc's 4 MiB);
  // a larger one is replaced by ResourceExhausted. Only for clients that read more.
  void SetMaxResponsePayload(uint32_t bytes);
  // Before Serve only.
  void Register(const std::string& service, const std::string& method, Handler handler);
  // A handler over decoded messages: an undecodable payload is InvalidArgument.
  template <typename Request, typename Response>
  void RegisterMethod(
      const std::string& service, const std::string& method,
      std::function<absl::StatusOr<Response>(const CallContext&, const Request&)> f);

  // Accepts connections on `listener` on a thread of its own; returns at once.
  void Serve(UniqueFd listener);
  // Stops accepting, closes every connection, joins the server's threads. Handlers still
  // running finish on their own threads; their answers go nowhere.
  void Shutdown();
  // Requests being handled now, on every connection.
  int active_requests() const;
  // Connections open now.
  size_t connections() const;

 private:
  struct Connection;
  struct Shared;  // what request threads may touch after the Server is gone
  void AcceptLoop();
  void ReadLoop(std::shared_ptr<Connection> conn);
  void TimerLoop();

  std::shared_ptr<Shared> shared_;
  std::function<bool(const ucred&)> peer_filter_;
  UniqueFd listener_;
  UniqueFd wake_;  // eventfd: ends AcceptLoop's poll
  std::thread acceptor_;
  std::thread timer_;
  mutable std::mutex mu_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;
  std::vector<std::shared_ptr<Connection>> conns_;
  // Reader threads are detached (a finished one must not keep its stack); Shutdown waits for
  // this count to reach zero.
  int live_readers_ = 0;
  std::condition_variable readers_cv_;
  std::multimap<absl::Time, std::pair<std::weak_ptr<Connection>, uint32_t>> deadlines_;
};

template <typename Request, typename Response>
void Server::RegisterMethod(
    const std::string& service, const std::string& method,
    std::function<absl::StatusOr<Response>(const CallContext&, const Request&)> f) {
  Register(service, method,
           [f = std::move(f)](const CallContext& ctx,
                              const std::string& payload) -> absl::StatusOr<std::string> {
             Request request;
             if (!request.ParseFromString(payload)) {
               return absl::InvalidArgumentError("cannot decode " + request.GetTypeName() +
                                                 " for " + ctx.service + "/" + ctx.method);
             }
             absl::StatusOr<Response> response = f(ctx, request);
             if (!response.ok()) return response.status();
             return response->SerializeAsString();
           });
}

}  // namespace rauha::ttrpc
