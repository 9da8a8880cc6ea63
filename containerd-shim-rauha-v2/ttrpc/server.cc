#include "containerd-shim-rauha-v2/ttrpc/server.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "containerd-shim-rauha-v2/ttrpc/frame.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "containerd-shim-rauha-v2/ttrpc/status.h"
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
  std::mutex mu;               // one frame at a time on the socket; guards `pending`
  std::set<uint32_t> pending;  // streams whose answer is still owed
};

namespace {

void SendResponse(int fd, uint32_t stream_id, const absl::Status& status,
                  const std::string& payload, uint32_t max_payload = kMaxPayload) {
  ::ttrpc::Response response;
  *response.mutable_status() = ToProto(status);
  if (status.ok()) response.set_payload(payload);
  std::string bytes = response.SerializeAsString();
  absl::StatusOr<std::string> frame =
      EncodeFrame(stream_id, MessageType::kResponse, 0, bytes, max_payload);
  if (!frame.ok()) {
    // The answer is too large for a frame: say so instead, on the same stream.
    ::ttrpc::Response refused;
    *refused.mutable_status() = ToProto(absl::ResourceExhaustedError(frame.status().message()));
    frame = EncodeFrame(stream_id, MessageType::kResponse, 0, refused.SerializeAsString());
  }
  // A peer that went away gets nothing; its reader sees the close.
  (void)WriteAll(fd, *frame);
}

}  // namespace

std::string CallContext::Metadata(std::string_view key) const {
  for (const auto& [k, v] : metadata) {
    if (k == key) return v;
  }
  return "";
}

Server::Server() : shared_(std::make_shared<Shared>()) {}

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
  acceptor_ = std::thread([this] { AcceptLoop(); });
  timer_ = std::thread([this] { TimerLoop(); });
}

int Server::active_requests() const { return shared_->active.load(); }

size_t Server::connections() const {
  std::lock_guard lock(mu_);
  return conns_.size();
}

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
  if (acceptor_.joinable()) acceptor_.join();
  if (timer_.joinable()) timer_.join();
  std::unique_lock lock(mu_);
  // Readers end once their sockets are shut down (AcceptLoop made none after stopping_).
  for (auto& conn : conns_) ::shutdown(conn->fd.get(), SHUT_RDWR);
  readers_cv_.wait(lock, [this] { return live_readers_ == 0; });
  listener_.reset();
}

void Server::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) continue;
    auto conn = std::make_shared<Connection>();
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) continue;
    if (peer_filter_ && !peer_filter_(cred)) continue;  // closed unread
    conn->peer_uid = cred.uid;
    conn->fd = std::move(fd);
    std::lock_guard lock(mu_);
    if (stopping_) return;
    conns_.push_back(conn);
    live_readers_++;
    std::thread([this, conn] { ReadLoop(conn); }).detach();
  }
}

void Server::ReadLoop(std::shared_ptr<Connection> conn) {
  FrameDecoder decoder;
  char buf[64 * 1024];
  while (true) {
    ssize_t n = ::recv(conn->fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
    while (std::optional<Frame> frame = decoder.Next()) {
      auto refuse = [&](const absl::Status& status) {
        std::lock_guard lock(conn->mu);
        SendResponse(conn->fd.get(), frame->stream_id, status, "");
      };
      if (frame->oversized) {
        refuse(absl::ResourceExhaustedError(absl::StrCat("ttrpc message length ", frame->length,
                                                         " exceeds the maximum message size of ",
                                                         kMaxPayload)));
        continue;
      }
      if (frame->type != static_cast<uint8_t>(MessageType::kRequest)) continue;
      ::ttrpc::Request request;
      if (!request.ParseFromString(frame->payload)) {
        refuse(absl::InvalidArgumentError("unmarshal request error: not a ttrpc Request"));
        continue;
      }
      if (frame->stream_id % 2 != 1) {
        refuse(absl::InvalidArgumentError("StreamID must be odd for client initiated streams"));
        continue;
      }
      auto it = shared_->handlers.find(request.service() + "/" + request.method());
      if (it == shared_->handlers.end()) {
        refuse(absl::UnimplementedError(absl::StrCat("service ", request.service(), " method ",
                                                     request.method(), ": not implemented")));
        continue;
      }
      CallContext ctx;
      ctx.service = request.service();
      ctx.method = request.method();
      ctx.peer_uid = conn->peer_uid;
      ctx.connection_closed = conn->closed;
      ctx.send_data = [weak = std::weak_ptr<Connection>(conn),
                       id = frame->stream_id](std::string_view payload) {
        std::shared_ptr<Connection> c = weak.lock();
        if (!c || c->closed->load()) return false;
        absl::StatusOr<std::string> data = EncodeFrame(id, MessageType::kData, 0, payload);
        if (!data.ok()) return false;
        std::lock_guard lock(c->mu);
        // Only while the answer is owed: after it (or the deadline's) the stream is over.
        if (c->pending.count(id) == 0) return false;
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
      {
        std::lock_guard lock(conn->mu);
        if (!conn->pending.insert(frame->stream_id).second) {
          SendResponse(conn->fd.get(), frame->stream_id,
                       absl::InvalidArgumentError(absl::StrCat("stream ", frame->stream_id,
                                                               " already has a request in flight")),
                       "");
          continue;
        }
      }
      if (ctx.deadline != absl::InfiniteFuture()) {
        std::lock_guard lock(mu_);
        deadlines_.emplace(ctx.deadline, std::make_pair(conn, frame->stream_id));
        timer_cv_.notify_all();
      }
      shared_->active++;
      std::thread([shared = shared_, conn, handler = it->second, ctx = std::move(ctx),
                   payload = std::move(*request.mutable_payload()), id = frame->stream_id] {
        absl::StatusOr<std::string> result = handler(ctx, payload);
        {
          std::lock_guard lock(conn->mu);
          if (conn->pending.erase(id) > 0) {
            SendResponse(conn->fd.get(), id, result.status(), result.ok() ? *result : "",
                         shared->max_response);
          }
        }
        shared->active--;
      }).detach();
    }
  }
  conn->closed->store(true);
  std::lock_guard lock(mu_);
  std::erase(conns_, conn);
  live_readers_--;
  readers_cv_.notify_all();
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
    auto [conn_weak, id] = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    if (std::shared_ptr<Connection> conn = conn_weak.lock()) {
      std::lock_guard conn_lock(conn->mu);
      if (conn->pending.erase(id) > 0) {
        SendResponse(conn->fd.get(), id,
                     absl::DeadlineExceededError("ttrpc request timed out before an answer"), "");
      }
    }
  }
}

}  // namespace rauha::ttrpc
