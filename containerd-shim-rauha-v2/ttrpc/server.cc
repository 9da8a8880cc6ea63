#include "containerd-shim-rauha-v2/ttrpc/server.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "containerd-shim-rauha-v2/ttrpc/frame.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "containerd-shim-rauha-v2/ttrpc/status.h"
#include "containerd-shim-rauha-v2/ttrpc/thread_cache.h"
#include "ttrpc.pb.h"

namespace rauha::ttrpc {

struct Server::Shared {
  std::map<std::string, Handler> handlers;  // "service/method"; fixed once serving
  uint32_t max_response = kMaxPayload;      // fixed once serving
  std::atomic<int> active{0};
};

struct Server::Connection {
  UniqueFd fd;
  uid_t peer_uid = 0;
  std::shared_ptr<std::atomic<bool>> closed = std::make_shared<std::atomic<bool>>(false);
  // One frame at a time on the socket. Held across a write that may block (a client that
  // reads slowly), so nothing else is ever taken while waiting for it but `mu`, briefly:
  // the order is write_mu, then mu.
  std::mutex write_mu;
  std::mutex mu;  // guards `pending` and `requests`; never held across a write
  // Streams whose answer is still owed, each with the number of the request it is owed to: a
  // client may send a new request on a stream id once its answer came, and nothing left of the
  // old request (its deadline, its handler's late answer or data) may answer the new one.
  std::map<uint32_t, uint64_t> pending;
  uint64_t requests = 0;  // requests admitted on this connection
  // Bytes read and not yet taken as frames: only the connection's one reader touches it,
  // and it goes with the reading from thread to thread (HandOnReading).
  FrameDecoder decoder;
};

// A request admitted on its stream, to be handled on the thread that read it.
struct Server::Call {
  std::shared_ptr<Connection> conn;
  Handler handler;
  CallContext ctx;
  std::string payload;
  uint32_t stream_id = 0;
  uint64_t request = 0;  // its number on the connection (Connection::pending)
};

struct Server::Deadline {
  std::weak_ptr<Connection> conn;
  uint32_t stream_id = 0;
  uint64_t request = 0;
};

namespace {

std::string ResponseFrame(uint32_t stream_id, const absl::Status& status,
                          const std::string& payload, uint32_t max_payload = kMaxPayload) {
  ::ttrpc::Response response;
  *response.mutable_status() = ToProto(status);
  if (status.ok()) response.set_payload(payload);
  absl::StatusOr<std::string> frame =
      EncodeFrame(stream_id, MessageType::kResponse, 0, response.SerializeAsString(), max_payload);
  if (frame.ok()) return *std::move(frame);
  // The answer is too large for a frame: say so instead, on the same stream.
  ::ttrpc::Response refused;
  *refused.mutable_status() = ToProto(absl::ResourceExhaustedError(frame.status().message()));
  return *EncodeFrame(stream_id, MessageType::kResponse, 0, refused.SerializeAsString());
}

void WriteFrame(Server::Connection& conn, const std::string& frame) {
  std::lock_guard lock(conn.write_mu);
  // A peer that went away gets nothing; its reader sees the close.
  (void)WriteAll(conn.fd.get(), frame);
}

// Whether stream `id`'s answer is still owed to request number `request`. Under conn.mu.
bool Owed(const Server::Connection& conn, uint32_t id, uint64_t request) {
  auto it = conn.pending.find(id);
  return it != conn.pending.end() && it->second == request;
}

// The answer to request number `request` on stream `id`, if it is still owed (a deadline may
// have answered it already, and a new request may have the stream since).
void Answer(Server::Connection& conn, uint32_t id, uint64_t request, const absl::Status& status,
            const std::string& payload, uint32_t max_payload = kMaxPayload) {
  {
    std::lock_guard lock(conn.mu);
    if (!Owed(conn, id, request)) return;
    conn.pending.erase(id);
  }
  // A data frame of this stream that got past its check is out before this takes write_mu;
  // one that did not will find the stream closed (send_data below).
  WriteFrame(conn, ResponseFrame(id, status, payload, max_payload));
}

}  // namespace

std::string CallContext::Metadata(std::string_view key) const {
  for (const auto& [k, v] : metadata) {
    if (k == key) return v;
  }
  return "";
}

Server::Server()
    : shared_(std::make_shared<Shared>()),
      threads_(std::make_unique<ThreadCache>(kIdleThreads, kIdleThreadTimeout)) {}

Server::~Server() { Shutdown(); }

void Server::SetPeerFilter(std::function<bool(const ucred&)> allow) {
  peer_filter_ = std::move(allow);
}

void Server::SetMaxResponsePayload(uint32_t bytes) { shared_->max_response = bytes; }

void Server::Register(const std::string& service, const std::string& method, Handler handler) {
  shared_->handlers[service + "/" + method] = std::move(handler);
}

void Server::Serve(UniqueFd listener) {
  listener_ = std::move(listener);
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  {
    std::lock_guard lock(mu_);
    live_roles_++;  // the accepting, handed from thread to thread (AcceptAndRead)
  }
  threads_->Run([this] { AcceptAndRead(); });
  timer_ = std::thread([this] { TimerLoop(); });
}

int Server::active_requests() const { return shared_->active.load(); }

size_t Server::connections() const {
  std::lock_guard lock(mu_);
  return conns_.size();
}

size_t Server::threads() const { return threads_->threads(); }

size_t Server::idle_threads() const { return threads_->idle(); }

void Server::Shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& conn : conns_) ::shutdown(conn->fd.get(), SHUT_RDWR);
  }
  timer_cv_.notify_all();
  if (wake_) {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
  }
  if (timer_.joinable()) timer_.join();
  std::unique_lock lock(mu_);
  // Readers end once their sockets are shut down (no connection is added after stopping_);
  // the accepting ends at the eventfd, which stays readable.
  for (auto& conn : conns_) ::shutdown(conn->fd.get(), SHUT_RDWR);
  roles_cv_.wait(lock, [this] { return live_roles_ == 0; });
  listener_.reset();
}

void Server::EndRole() {
  std::lock_guard lock(mu_);
  live_roles_--;
  roles_cv_.notify_all();
}

void Server::AcceptAndRead() {
  while (true) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) continue;
    auto conn = std::make_shared<Connection>();
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) continue;
    if (peer_filter_ && !peer_filter_(cred)) continue;  // closed unread
    conn->peer_uid = cred.uid;
    conn->fd = std::move(fd);
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      conns_.push_back(conn);
      live_roles_++;  // the connection's reading
    }
    // This thread reads the connection it took (its first request is on the way: a client
    // connects to send one) and another accepts meanwhile: the request waits for no wake-up
    // of a second thread. The accepting role goes on as soon as that thread runs.
    threads_->Run([this] { AcceptAndRead(); });
    ReadThenHandle(std::move(conn));
    return;
  }
  EndRole();
}

void Server::HandOnReading(std::shared_ptr<Connection> conn) {
  threads_->Run([this, conn = std::move(conn)]() mutable { ReadThenHandle(std::move(conn)); });
}

void Server::ReadThenHandle(std::shared_ptr<Connection> conn) {
  std::optional<Call> call = ReadUntilRequest(conn);
  if (!call) return;
  std::shared_ptr<Shared> shared = shared_;
  // Another thread reads on (the next request on this connection, its close) while this one
  // handles what it read: so each request has a thread of its own at once, as before, and the
  // first is handled where it was read. From here on the Server may be gone (Shutdown waits
  // for the reading, not for handlers).
  HandOnReading(std::move(conn));
  Handle(shared, std::move(*call));
}

std::optional<Server::Call> Server::ReadUntilRequest(const std::shared_ptr<Connection>& conn) {
  char buf[64 * 1024];
  while (true) {
    while (std::optional<Frame> frame = conn->decoder.Next()) {
      if (std::optional<Call> call = Admit(conn, *frame)) return call;
    }
    ssize_t n = ::recv(conn->fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    conn->decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
  conn->closed->store(true);
  std::lock_guard lock(mu_);
  std::erase(conns_, conn);
  live_roles_--;
  roles_cv_.notify_all();
  return std::nullopt;
}

std::optional<Server::Call> Server::Admit(const std::shared_ptr<Connection>& conn, Frame& frame) {
  auto refuse = [&](const absl::Status& status) {
    WriteFrame(*conn, ResponseFrame(frame.stream_id, status, ""));
    return std::nullopt;
  };
  if (frame.oversized) {
    return refuse(absl::ResourceExhaustedError(absl::StrCat("ttrpc message length ", frame.length,
                                                            " exceeds the maximum message size of ",
                                                            kMaxPayload)));
  }
  if (frame.type != static_cast<uint8_t>(MessageType::kRequest)) return std::nullopt;
  ::ttrpc::Request request;
  if (!request.ParseFromString(frame.payload)) {
    return refuse(absl::InvalidArgumentError("unmarshal request error: not a ttrpc Request"));
  }
  if (frame.stream_id % 2 != 1) {
    return refuse(absl::InvalidArgumentError("StreamID must be odd for client initiated streams"));
  }
  auto it = shared_->handlers.find(request.service() + "/" + request.method());
  if (it == shared_->handlers.end()) {
    return refuse(absl::UnimplementedError(absl::StrCat("service ", request.service(), " method ",
                                                        request.method(), ": not implemented")));
  }
  uint64_t number;
  {
    std::lock_guard lock(conn->mu);
    number = ++conn->requests;
    if (!conn->pending.emplace(frame.stream_id, number).second) {
      return refuse(absl::InvalidArgumentError(
          absl::StrCat("stream ", frame.stream_id, " already has a request in flight")));
    }
  }
  Call call;
  call.conn = conn;
  call.handler = it->second;
  call.stream_id = frame.stream_id;
  call.request = number;
  call.payload = std::move(*request.mutable_payload());
  CallContext& ctx = call.ctx;
  ctx.service = request.service();
  ctx.method = request.method();
  ctx.peer_uid = conn->peer_uid;
  ctx.connection_closed = conn->closed;
  ctx.send_data = [weak = std::weak_ptr<Connection>(conn), id = frame.stream_id,
                   number](std::string_view payload) {
    std::shared_ptr<Connection> c = weak.lock();
    if (!c || c->closed->load()) return false;
    absl::StatusOr<std::string> data = EncodeFrame(id, MessageType::kData, 0, payload);
    if (!data.ok()) return false;
    std::lock_guard write_lock(c->write_mu);
    {
      // Only while the answer is owed: after it (or the deadline's) the stream is over.
      std::lock_guard lock(c->mu);
      if (!Owed(*c, id, number)) return false;
    }
    return WriteAll(c->fd.get(), *data).ok();
  };
  ctx.send_metadata = [send = ctx.send_data](std::string_view key, std::string_view value) {
    ::ttrpc::KeyValue kv;
    kv.set_key(std::string(key));
    kv.set_value(std::string(value));
    (void)send(kv.SerializeAsString());
  };
  for (const auto& kv : request.metadata()) ctx.metadata.emplace_back(kv.key(), kv.value());
  if (request.timeout_nano() > 0) {
    ctx.deadline = absl::Now() + absl::Nanoseconds(request.timeout_nano());
  }
  if (ctx.deadline != absl::InfiniteFuture()) {
    std::lock_guard lock(mu_);
    deadlines_.emplace(ctx.deadline, Deadline{conn, frame.stream_id, number});
    timer_cv_.notify_all();
  }
  shared_->active++;
  return call;
}

// Static: the Server may be gone by the time a handler ends (Shutdown does not wait for them).
void Server::Handle(const std::shared_ptr<Shared>& shared, Call call) {
  absl::StatusOr<std::string> result = call.handler(call.ctx, call.payload);
  Answer(*call.conn, call.stream_id, call.request, result.status(), result.ok() ? *result : "",
         shared->max_response);
  shared->active--;
}

void Server::TimerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (deadlines_.empty()) {
      timer_cv_.wait(lock);
      continue;
    }
    absl::Time next = deadlines_.begin()->first;
    if (absl::Now() < next) {
      timer_cv_.wait_for(lock, absl::ToChronoNanoseconds(next - absl::Now()));
      continue;
    }
    Deadline deadline = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    std::shared_ptr<Connection> conn = deadline.conn.lock();
    if (!conn) continue;
    bool owed;
    lock.unlock();  // mu_ is never held while taking a connection's mu
    {
      std::lock_guard conn_lock(conn->mu);
      owed = Owed(*conn, deadline.stream_id, deadline.request);
    }
    lock.lock();
    // A request answered in time leaves its deadline here: no thread for it.
    if (!owed || stopping_) continue;
    // Answered on a thread of its own: the write may wait for a client that reads slowly,
    // and other deadlines (and accepting, which takes mu_) must not wait for it.
    threads_->Run([conn = std::move(conn), deadline] {
      Answer(*conn, deadline.stream_id, deadline.request,
             absl::DeadlineExceededError("ttrpc request timed out before an answer"), "");
    });
  }
}

}  // namespace rauha::ttrpc
