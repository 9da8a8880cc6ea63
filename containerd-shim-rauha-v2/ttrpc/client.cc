#include "containerd-shim-rauha-v2/ttrpc/client.h"

#include <errno.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "containerd-shim-rauha-v2/ttrpc/frame.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "containerd-shim-rauha-v2/ttrpc/status.h"
#include "ttrpc.pb.h"

namespace rauha::ttrpc {

void CallCanceller::Cancel() {
  cancelled_.store(true);
  std::lock_guard lock(mu_);
  if (wake_) wake_();
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(std::string_view address,
                                                        uint32_t max_response) {
  absl::StatusOr<UniqueFd> fd = ConnectUnix(address);
  if (!fd.ok()) return fd.status();
  return std::make_unique<Client>(std::move(*fd), max_response);
}

Client::Client(UniqueFd fd, uint32_t max_response)
    : fd_(std::move(fd)), max_response_(max_response) {
  reader_ = std::thread([this] { ReadLoop(); });
}

Client::~Client() {
  ::shutdown(fd_.get(), SHUT_RDWR);
  if (reader_.joinable()) reader_.join();
}

bool Client::connected() const {
  std::lock_guard lock(mu_);
  return !closed_;
}

absl::StatusOr<std::string> Client::Call(
    const std::string& service, const std::string& method, const std::string& payload,
    absl::Duration timeout, const std::vector<std::pair<std::string, std::string>>& metadata,
    CallCanceller* canceller, InitialMetadata* initial_metadata) {
  ::ttrpc::Request request;
  request.set_service(service);
  request.set_method(method);
  request.set_payload(payload);
  if (timeout != absl::InfiniteDuration()) {
    request.set_timeout_nano(absl::ToInt64Nanoseconds(timeout));
  }
  for (const auto& [k, v] : metadata) {
    auto* kv = request.add_metadata();
    kv->set_key(k);
    kv->set_value(v);
  }
  auto pending = std::make_shared<Pending>();
  // Registered before the first check of the flag below, so a Cancel() either is seen there
  // or wakes the wait (it takes mu_, which the waiting call releases only inside wait()).
  if (canceller) {
    std::lock_guard lock(canceller->mu_);
    canceller->wake_ = [this] {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    };
  }
  struct Unregister {
    CallCanceller* c;
    ~Unregister() {
      if (!c) return;
      std::lock_guard lock(c->mu_);
      c->wake_ = nullptr;
    }
  } unregister{canceller};
  auto cancelled = [&] { return canceller && canceller->cancelled(); };
  if (cancelled()) return absl::CancelledError(absl::StrCat(service, "/", method, ": cancelled"));
  uint32_t id;
  {
    std::lock_guard lock(mu_);
    if (closed_) return absl::UnavailableError("ttrpc connection closed");
    id = next_stream_;
    next_stream_ += 2;
    pending_[id] = pending;
  }
  absl::StatusOr<std::string> frame =
      EncodeFrame(id, MessageType::kRequest, 0, request.SerializeAsString());
  absl::Status sent = frame.status();
  if (sent.ok()) {
    std::lock_guard lock(write_mu_);
    sent = WriteAll(fd_.get(), *frame);
  }
  std::unique_lock lock(mu_);
  if (!sent.ok()) {
    pending_.erase(id);
    return sent;
  }
  // Whatever ends the call below, what the server sent ahead of its answer is the caller's.
  struct HandOver {
    Pending& p;
    InitialMetadata* out;
    ~HandOver() {
      if (out) *out = std::move(p.initial_metadata);
    }
  } hand_over{*pending, initial_metadata};
  absl::Time deadline = absl::Now() + timeout;
  while (!pending->done) {
    if (cancelled()) {
      pending_.erase(id);
      return absl::CancelledError(absl::StrCat(service, "/", method, ": cancelled"));
    }
    if (timeout == absl::InfiniteDuration()) {
      cv_.wait(lock);
    } else if (cv_.wait_for(lock, absl::ToChronoNanoseconds(deadline - absl::Now())) ==
                   std::cv_status::timeout &&
               !pending->done) {
      pending_.erase(id);
      return absl::DeadlineExceededError(
          absl::StrCat(service, "/", method, ": no answer within ", absl::FormatDuration(timeout)));
    }
  }
  if (!pending->status.ok()) return pending->status;
  return std::move(pending->payload);
}

void Client::ReadLoop() {
  FrameDecoder decoder(max_response_);
  char buf[64 * 1024];
  while (true) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
    while (std::optional<Frame> frame = decoder.Next()) {
      const bool data = frame->type == static_cast<uint8_t>(MessageType::kData);
      if (frame->type != static_cast<uint8_t>(MessageType::kResponse) && !data) continue;
      std::lock_guard lock(mu_);
      auto it = pending_.find(frame->stream_id);
      if (it == pending_.end()) continue;  // its caller gave up (timeout)
      Pending& p = *it->second;
      if (data) {
        // Metadata ahead of the answer (Server's send_metadata); other data frames are not
        // ours to read (a unary call has no stream).
        ::ttrpc::KeyValue kv;
        if (!frame->oversized && kv.ParseFromString(frame->payload)) {
          p.initial_metadata.emplace_back(kv.key(), kv.value());
        }
        continue;
      }
      if (frame->oversized) {
        p.status = absl::ResourceExhaustedError(absl::StrCat(
            "ttrpc response of ", frame->length, " bytes exceeds the limit of ", max_response_));
      } else {
        ::ttrpc::Response response;
        if (!response.ParseFromString(frame->payload)) {
          p.status = absl::InternalError("cannot decode a ttrpc Response");
        } else {
          p.status = FromProto(response.status());
          p.payload = std::move(*response.mutable_payload());
        }
      }
      p.done = true;
      pending_.erase(it);
      cv_.notify_all();
    }
  }
  std::lock_guard lock(mu_);
  closed_ = true;
  for (auto& [id, p] : pending_) {
    p->done = true;
    p->status = absl::UnavailableError("ttrpc connection closed before an answer");
  }
  pending_.clear();
  cv_.notify_all();
}

namespace {

// One request on stream 1 of a connection of its own, read until its answer: each data frame
// ahead of it goes to on_data (an oversized one has no payload), the Response comes back
// decoded. The status inside it is the caller's to read.
absl::StatusOr<::ttrpc::Response> ExchangeOnConnection(
    int fd, const std::string& service, const std::string& method, const std::string& payload,
    uint32_t max_frame, const std::function<absl::Status(const Frame&)>& on_data) {
  ::ttrpc::Request request;
  request.set_service(service);
  request.set_method(method);
  request.set_payload(payload);
  constexpr uint32_t kStream = 1;
  absl::StatusOr<std::string> frame =
      EncodeFrame(kStream, MessageType::kRequest, 0, request.SerializeAsString());
  if (!frame.ok()) return frame.status();
  if (absl::Status sent = WriteAll(fd, *frame); !sent.ok()) return sent;
  FrameDecoder decoder(max_frame);
  char buf[64 * 1024];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("ttrpc connection closed before an answer");
    decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
    while (std::optional<Frame> got = decoder.Next()) {
      if (got->stream_id != kStream) continue;
      if (got->type == static_cast<uint8_t>(MessageType::kData)) {
        if (absl::Status handled = on_data(*got); !handled.ok()) return handled;
        continue;
      }
      if (got->type != static_cast<uint8_t>(MessageType::kResponse)) continue;
      if (got->oversized) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "ttrpc response frame of ", got->length, " bytes exceeds the limit of ", max_frame));
      }
      ::ttrpc::Response response;
      if (!response.ParseFromString(got->payload)) {
        return absl::InternalError("cannot decode a ttrpc Response");
      }
      return response;
    }
  }
}

}  // namespace

absl::StatusOr<std::string> CallOnConnection(int fd, const std::string& service,
                                             const std::string& method, const std::string& payload,
                                             uint32_t max_response,
                                             InitialMetadata* initial_metadata) {
  absl::StatusOr<::ttrpc::Response> response =
      ExchangeOnConnection(fd, service, method, payload, max_response, [&](const Frame& data) {
        ::ttrpc::KeyValue kv;
        if (initial_metadata && !data.oversized && kv.ParseFromString(data.payload)) {
          initial_metadata->emplace_back(kv.key(), kv.value());
        }
        return absl::OkStatus();
      });
  if (!response.ok()) return response.status();
  if (absl::Status status = FromProto(response->status()); !status.ok()) return status;
  return std::move(*response->mutable_payload());
}

absl::Status StreamingCallOnConnection(int fd, const std::string& service,
                                       const std::string& method, const std::string& payload,
                                       const std::function<absl::Status(std::string_view)>& on_data,
                                       uint32_t max_data) {
  absl::StatusOr<::ttrpc::Response> response =
      ExchangeOnConnection(fd, service, method, payload, max_data, [&](const Frame& data) {
        if (data.oversized) {
          return absl::ResourceExhaustedError(absl::StrCat(
              "ttrpc data frame of ", data.length, " bytes exceeds the limit of ", max_data));
        }
        return on_data(data.payload);
      });
  if (!response.ok()) return response.status();
  return FromProto(response->status());
}

}  // namespace rauha::ttrpc
