// A ttrpc server on a listening unix socket. Each request runs on a thread of its own at once,
// because containerd keeps calls open (Task.Wait blocks until the process exits) while it sends
// others on the same connection, and each connection is read on a thread of its own. Responses
// go out in the order they finish, under the request's stream id.
//
// Threads are kept and reused (ThreadCache: up to kIdleThreads wait, each for at most
// kIdleThreadTimeout), and roles move between them instead of work: the thread that accepts a
// connection goes on to read it (another takes the accepting), and the thread that reads a
// request goes on to handle it (another takes the reading). So a client that connects and
// sends one request (rauha's CLI) is served by one thread, with no thread started and no
// wake-up of a second one on its path (eval/bench/README.md, "ttrpc: threads kept").
//
// Per-request timeouts: a request with timeout_nano gets DeadlineExceeded when its handler has
// not answered by then (the handler's late answer is dropped); handlers can also read the
// deadline from the CallContext. A stream id may carry a new request once its answer went out
// (containerd's Go server refuses ids that do not increase); a deadline, late answer or data
// frame of the old request never reaches the new one. Unknown service or method:
// Unimplemented. A request frame over 4 MiB: ResourceExhausted on its stream; an undecodable
// request or an even (server-side) stream id: InvalidArgument. Frames of other types are
// ignored, as containerd's ttrpc does.
//
// A client that does not read holds up only what is written to it: answers and data frames of
// its own connection wait for its socket; the reading of its requests, other connections and
// the deadlines of other requests do not.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

class ThreadCache;
struct Frame;

class Server {
 public:
  // Threads kept waiting for the next connection or request, and for how long.
  static constexpr size_t kIdleThreads = 8;
  static constexpr absl::Duration kIdleThreadTimeout = absl::Seconds(30);

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
  // Stops accepting, closes every connection, waits for the accepting and the readers to end.
  // Handlers still running finish on their own threads; their answers go nowhere.
  void Shutdown();
  // Requests being handled now, on every connection.
  int active_requests() const;
  // Connections open now.
  size_t connections() const;
  // The server's threads alive now, the deadline timer's apart: accepting, reading, handling,
  // or waiting for one of those.
  size_t threads() const;
  // Of those, the ones waiting for a role or a request.
  size_t idle_threads() const;

  // Defined in server.cc.
  struct Connection;
  struct Shared;  // what handlers may touch after the Server is gone
  struct Call;
  struct Deadline;

 private:
  // The roles, each run on a thread of threads_: accepting (one at a time), a connection's
  // reading (one per connection). Each returns when its role has moved to another thread or
  // ended.
  void AcceptAndRead();
  void ReadThenHandle(std::shared_ptr<Connection> conn);
  void HandOnReading(std::shared_ptr<Connection> conn);
  // Reads until a request to handle (admitted: its stream pending, its deadline set), or the
  // connection's end (then the role ends: nullopt).
  std::optional<Call> ReadUntilRequest(const std::shared_ptr<Connection>& conn);
  // A request to handle, or nullopt when it was refused (answered here) or is not a request.
  std::optional<Call> Admit(const std::shared_ptr<Connection>& conn, Frame& frame);
  static void Handle(const std::shared_ptr<Shared>& shared, Call call);
  void EndRole();
  void TimerLoop();

  std::shared_ptr<Shared> shared_;
  std::function<bool(const ucred&)> peer_filter_;
  UniqueFd listener_;
  UniqueFd wake_;  // eventfd: ends the accepting's poll
  std::unique_ptr<ThreadCache> threads_;
  std::thread timer_;
  mutable std::mutex mu_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;
  std::vector<std::shared_ptr<Connection>> conns_;
  // The accepting and each connection's reading, wherever they run; Shutdown waits for this
  // count to reach zero. Handlers are not counted: they may outlive the Server.
  int live_roles_ = 0;
  std::condition_variable roles_cv_;
  // Left here when their request is answered in time (Handle may outlive the Server): the
  // timer drops those whose answer is no longer owed (Connection::pending says which).
  std::multimap<absl::Time, Deadline> deadlines_;
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
