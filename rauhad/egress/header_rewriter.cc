#include "rauhad/egress/header_rewriter.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <optional>

#include "rauha-common/strcat.h"

namespace rauha::egress {
namespace {

constexpr size_t kMaxLineBytes = 4096;  // a chunk-size or trailer line

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

absl::Status Bad(std::string_view why) { return absl::InvalidArgumentError(std::string(why)); }

}  // namespace

SecretBinding::~SecretBinding() {
  if (!value.empty()) OPENSSL_cleanse(value.data(), value.size());
}

RequestRewriter::RequestRewriter(std::string host, uint16_t port, SecretBindings bindings)
    : host_(std::move(host)), port_(port), bindings_(std::move(bindings)) {}

absl::Status RequestRewriter::Feed(std::string_view in, std::string& out,
                                   std::vector<PlaceholderUse>& uses) {
  if (state_ == State::kFailed) return Bad("the request stream was refused before");
  if (state_ == State::kRaw) {
    out.append(in);
    return absl::OkStatus();
  }
  std::string data = std::move(pending_);
  pending_.clear();
  data.append(in);
  std::string_view rest = data;
  auto fail = [&](absl::Status st) {
    state_ = State::kFailed;
    return st;
  };
  while (!rest.empty()) {
    switch (state_) {
      case State::kHead: {
        // Empty lines before a request line are allowed (RFC 9112 2.2); passed on as they are.
        if (rest.starts_with("\r\n")) {
          out.append("\r\n");
          rest.remove_prefix(2);
          continue;
        }
        size_t end = rest.find("\r\n\r\n");
        if (end == std::string_view::npos) {
          if (rest.size() > kMaxRewrittenHeadBytes) {
            return fail(Bad(StrCat("request head over ", kMaxRewrittenHeadBytes, " bytes")));
          }
          pending_.assign(rest);
          return absl::OkStatus();
        }
        if (end + 4 > kMaxRewrittenHeadBytes) {
          return fail(Bad(StrCat("request head over ", kMaxRewrittenHeadBytes, " bytes")));
        }
        if (auto st = Head(rest.substr(0, end + 2), out, uses); !st.ok()) return fail(st);
        rest.remove_prefix(end + 4);
        ++requests_;
        break;
      }
      case State::kBody: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        out.append(rest.substr(0, n));
        rest.remove_prefix(n);
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kHead;
        break;
      }
      case State::kChunkSize:
      case State::kTrailer: {
        size_t eol = rest.find("\r\n");
        if (eol == std::string_view::npos) {
          if (rest.size() > kMaxLineBytes) return fail(Bad("chunk line too long"));
          pending_.assign(rest);
          return absl::OkStatus();
        }
        std::string_view line = rest.substr(0, eol);
        out.append(rest.substr(0, eol + 2));
        rest.remove_prefix(eol + 2);
        if (state_ == State::kTrailer) {
          if (line.empty()) state_ = State::kHead;
          break;
        }
        std::string_view size = Trim(line.substr(0, line.find(';')));
        if (size.empty() || size.size() > 15) return fail(Bad("bad chunk size"));
        uint64_t v = 0;
        for (char c : size) {
          int d = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
          if (d < 0) return fail(Bad("bad chunk size"));
          v = v * 16 + static_cast<uint64_t>(d);
        }
        remaining_ = v;
        state_ = v == 0 ? State::kTrailer : State::kChunkData;
        break;
      }
      case State::kChunkData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        out.append(rest.substr(0, n));
        rest.remove_prefix(n);
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kChunkEnd;
        break;
      }
      case State::kChunkEnd: {
        if (rest.size() < 2) {
          pending_.assign(rest);
          return absl::OkStatus();
        }
        if (!rest.starts_with("\r\n")) return fail(Bad("chunk data not followed by CRLF"));
        out.append("\r\n");
        rest.remove_prefix(2);
        state_ = State::kChunkSize;
        break;
      }
      case State::kRaw:
        out.append(rest);
        return absl::OkStatus();
      case State::kFailed:
        return Bad("the request stream was refused before");
    }
  }
  return absl::OkStatus();
}

absl::Status RequestRewriter::Head(std::string_view head, std::string& out,
                                   std::vector<PlaceholderUse>& uses) {
  // `head`: the request line and header lines, each ending in CRLF (the blank line excluded).
  size_t eol = head.find("\r\n");
  std::string_view request_line = head.substr(0, eol);
  size_t sp1 = request_line.find(' '), sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2 || sp1 == 0) {
    return Bad("malformed request line");
  }
  std::string_view method = request_line.substr(0, sp1);
  std::string_view version = request_line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return Bad("only HTTP/1.0 and HTTP/1.1 requests are passed on");
  }
  for (char c : method) {
    if (!IsTokenChar(c)) return Bad("malformed request method");
  }
  if (method == "CONNECT") return Bad("CONNECT inside a proxied connection");
  for (const auto& b : bindings_) {
    if (request_line.find(b->placeholder) != std::string_view::npos) {
      uses.push_back({b->name, "the request line", false});
    }
  }
  std::string rewritten;
  rewritten.reserve(head.size() + 64);
  rewritten.append(request_line);
  rewritten.append("\r\n");
  std::optional<uint64_t> content_length;
  bool chunked = false, has_te = false, upgrade = false;
  std::string_view lines = head.substr(eol + 2);
  while (!lines.empty()) {
    size_t e = lines.find("\r\n");
    std::string_view line = lines.substr(0, e);
    lines.remove_prefix(e + 2);
    if (line.empty() || line.front() == ' ' || line.front() == '\t') {
      return Bad("folded or empty header line");
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return Bad("header line without a name");
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!IsTokenChar(c)) return Bad("malformed header name");
    }
    std::string_view value = Trim(line.substr(colon + 1));
    if (value.find('\r') != std::string_view::npos || value.find('\n') != std::string_view::npos ||
        value.find('\0') != std::string_view::npos) {
      return Bad("control character in a header value");
    }
    if (EqualsNoCase(name, "Content-Length")) {
      if (value.empty() || value.size() > 18 ||
          value.find_first_not_of("0123456789") != std::string_view::npos) {
        return Bad("bad Content-Length");
      }
      uint64_t v = std::stoull(std::string(value));
      if (content_length && *content_length != v) return Bad("differing Content-Length headers");
      content_length = v;
    } else if (EqualsNoCase(name, "Transfer-Encoding")) {
      has_te = true;
      std::string_view last =
          Trim(value.substr(value.rfind(',') == std::string_view::npos ? 0 : value.rfind(',') + 1));
      chunked = EqualsNoCase(last, "chunked");
      if (!chunked) return Bad("a Transfer-Encoding other than chunked last");
    } else if (EqualsNoCase(name, "Upgrade")) {
      upgrade = true;
    }
    // The first binding whose placeholder is here and that may go here replaces it; any other
    // placeholder in the line stays and is reported.
    const SecretBinding* replace = nullptr;
    for (const auto& b : bindings_) {
      if (value.find(b->placeholder) == std::string_view::npos) continue;
      bool host_named = std::any_of(b->hosts.begin(), b->hosts.end(), [&](const auto& h) {
        return policy::HostRuleAllows(h, host_, port_);
      });
      if (replace == nullptr && host_named && EqualsNoCase(name, b->header)) {
        replace = b.get();
        uses.push_back({b->name, std::string(name), true});
      } else {
        uses.push_back({b->name, std::string(name), false});
      }
    }
    if (replace == nullptr) {
      rewritten.append(line);
    } else {
      size_t at = replace->format.find("{}");
      rewritten.append(name);
      rewritten.append(": ");
      rewritten.append(std::string_view(replace->format).substr(0, at));
      rewritten.append(replace->value);
      rewritten.append(std::string_view(replace->format).substr(at + 2));
    }
    rewritten.append("\r\n");
  }
  if (has_te && content_length) return Bad("both Content-Length and Transfer-Encoding");
  rewritten.append("\r\n");
  out.append(rewritten);
  OPENSSL_cleanse(rewritten.data(), rewritten.size());
  if (upgrade) {
    // After a 101 the connection carries another protocol: passed through unread.
    state_ = State::kRaw;
  } else if (chunked) {
    state_ = State::kChunkSize;
  } else if (content_length && *content_length > 0) {
    remaining_ = *content_length;
    state_ = State::kBody;
  } else {
    state_ = State::kHead;
  }
  return absl::OkStatus();
}

}  // namespace rauha::egress
