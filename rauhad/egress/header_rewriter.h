// The request stream of a zone's client, HTTP/1.x, as the egress proxy passes it on: each
// request head is parsed and every secret placeholder in it found (secrets the zone never
// sees: the task holds NAME=<placeholder>, rauhad the value). A placeholder in the header its
// [secrets.NAME] names, on a request to a host it names, becomes that header's format with the
// value; anywhere else it is left as it is and reported (the proxy makes that an event).
// Bodies are framed (Content-Length, chunked) and passed through unread, so every request of a
// kept-alive connection gets its head looked at. Pure (no I/O): fuzzed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "rauha-common/policy/policy.h"

namespace rauha::egress {

// One secret as one task sees it: the placeholder in its environment and what replaces it.
struct SecretBinding {
  std::string name;
  std::string placeholder;
  std::string value;  // wiped when the binding goes
  std::vector<policy::HostRule> hosts;
  std::string header;  // where it may go
  std::string format;  // "Bearer {}"
  SecretBinding() = default;
  SecretBinding(const SecretBinding&) = delete;
  SecretBinding& operator=(const SecretBinding&) = delete;
  ~SecretBinding();
};
using SecretBindings = std::vector<std::shared_ptr<const SecretBinding>>;

struct PlaceholderUse {
  std::string secret;  // its name
  std::string where;   // the header's name as sent, or "the request line"
  bool replaced = false;
};

inline constexpr size_t kMaxRewrittenHeadBytes = 64 * 1024;

class RequestRewriter {
 public:
  // Requests on this connection go to `host`:`port` (the CONNECT line's, or the plain
  // request's).
  RequestRewriter(std::string host, uint16_t port, SecretBindings bindings);

  // Appends to `out` what `in` becomes, and to `uses` each placeholder found in a head.
  // InvalidArgument (the message is for a 400 answer) for what the proxy will not pass on: a
  // malformed head, one over kMaxRewrittenHeadBytes, framing that is ambiguous (both
  // Content-Length and Transfer-Encoding, differing lengths, a coding other than chunked last).
  // After an error the rewriter passes nothing more.
  absl::Status Feed(std::string_view in, std::string& out, std::vector<PlaceholderUse>& uses);

  uint64_t requests() const { return requests_; }

 private:
  enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkEnd, kTrailer, kRaw, kFailed };
  absl::Status Head(std::string_view head, std::string& out, std::vector<PlaceholderUse>& uses);

  std::string host_;
  uint16_t port_;
  SecretBindings bindings_;
  State state_ = State::kHead;
  std::string pending_;  // bytes of a head or line not complete yet
  uint64_t remaining_ = 0;
  uint64_t requests_ = 0;
};

}  // namespace rauha::egress
