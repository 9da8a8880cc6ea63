// The server name (SNI) a TLS ClientHello asks for: the name the proxy checks against the
// CONNECT line before any byte goes upstream. Pure.
#pragma once

#include <string>
#include <string_view>

namespace rauha::egress {

enum class SniStatus { kNeedMore, kNotTls, kNoName, kFound };

struct SniResult {
  SniStatus status = SniStatus::kNeedMore;
  std::string name;  // kFound: lower case
};

// `buffer`: the first bytes the client sent in the tunnel. The ClientHello must fit in the
// first TLS record (16 KiB; every client's does).
SniResult ParseClientHelloSni(std::string_view buffer);

}  // namespace rauha::egress
