// libFuzzer target: the request stream a zone's client sends through a connection whose heads
// the egress proxy rewrites (secrets). Must not crash; fed in arbitrary pieces it gives what it
// gives fed at once; a host no secret names never receives a secret's value.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>

#include "rauha-common/policy/policy.h"
#include "rauhad/egress/header_rewriter.h"

namespace {

rauha::egress::SecretBindings Bindings() {
  auto b = std::make_shared<rauha::egress::SecretBinding>();
  b->name = "API";
  b->placeholder = "PH1";
  b->value = "SECRETVALUE";
  b->hosts = {*rauha::policy::ParseHostRule("api.example.com")};
  b->header = "Authorization";
  b->format = "Bearer {}";
  return {b};
}

std::string Run(const std::string& host, const std::string& data, FuzzedDataProvider* cuts,
                bool* ok) {
  rauha::egress::RequestRewriter r(host, 443, Bindings());
  std::string out;
  std::vector<rauha::egress::PlaceholderUse> uses;
  *ok = true;
  size_t at = 0;
  while (at < data.size()) {
    size_t n = cuts ? cuts->ConsumeIntegralInRange<size_t>(1, data.size() - at) : data.size();
    if (!r.Feed(std::string_view(data).substr(at, n), out, uses).ok()) {
      *ok = false;
      break;
    }
    at += n;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  FuzzedDataProvider in(data, size);
  std::string stream = in.ConsumeRandomLengthString(8192);
  bool ok_whole = false, ok_cut = false;
  std::string whole = Run("api.example.com", stream, nullptr, &ok_whole);
  std::string cut = Run("api.example.com", stream, &in, &ok_cut);
  if (ok_whole && ok_cut && whole != cut) std::abort();
  bool ok_other = false;
  std::string other = Run("other.example.com", stream, nullptr, &ok_other);
  if (other.find("SECRETVALUE") != std::string::npos &&
      stream.find("SECRETVALUE") == std::string::npos) {
    std::abort();
  }
  return 0;
}
