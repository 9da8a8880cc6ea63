// libFuzzer target: what a zone's client sends the egress proxy (the request head, then the
// TLS ClientHello) and the allowed_hosts entries of a policy. Must not crash; an accepted
// request has a normalised host (an IPv6 literal canonical, without brackets) and a port; a
// found SNI is lower case; an accepted host rule reads back as itself.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>

#include "rauha-common/policy/policy.h"
#include "rauhad/egress/proxy_request.h"
#include "rauhad/egress/tls_sni.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  int which = in.ConsumeIntegralInRange(0, 2);
  std::string bytes = in.ConsumeRemainingBytesAsString();
  if (which == 0) {
    auto r = rauha::egress::ParseProxyRequest(bytes);
    if (r.ok() && r->has_value()) {
      const auto& req = **r;
      if (req.port == 0 || rauha::egress::NormaliseHost(req.host) != req.host) std::abort();
      if (req.head_bytes > bytes.size()) std::abort();
      // An IPv6 host is canonical and unbracketed; HostPort brackets it again.
      if (req.host.find(':') != std::string::npos) {
        if (rauha::egress::CanonicalIpv6(req.host) != req.host) std::abort();
        if (rauha::egress::HostPort(req.host, req.port).front() != '[') std::abort();
      }
    }
  } else if (which == 1) {
    auto s = rauha::egress::ParseClientHelloSni(bytes);
    for (char c : s.name) {
      if (c >= 'A' && c <= 'Z') std::abort();
    }
  } else {
    auto rule = rauha::policy::ParseHostRule(bytes);
    if (rule.ok()) {
      auto again = rauha::policy::ParseHostRule(rule->text);
      if (!again.ok() || again->text != rule->text) std::abort();
      (void)rauha::policy::HostRuleAllows(*rule, rule->host, 443);
    }
  }
  return 0;
}
