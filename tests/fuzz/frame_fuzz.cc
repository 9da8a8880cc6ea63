// libFuzzer target: a byte stream into frame::Decoder, fed in chunks whose sizes come from
// the input too. Must not crash; every decoded frame is a JSON object that re-encodes and
// decodes to the same value; after an error the stream is abandoned, as a reader would.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "rauha-common/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rauha::frame;
  FuzzedDataProvider in(data, size);
  // Small limits reach the "frame too large" path without megabytes of input.
  uint32_t max = in.ConsumeBool() ? kMaxFrameBytes : in.ConsumeIntegralInRange<uint32_t>(0, 64);
  Decoder decoder(max);
  while (in.remaining_bytes() > 0) {
    size_t chunk = in.ConsumeIntegralInRange<size_t>(1, 64);
    decoder.Feed(in.ConsumeBytesAsString(chunk));
    while (true) {
      auto next = decoder.Next();
      if (!next.ok()) return 0;
      if (!next->has_value()) break;
      const nlohmann::json& message = **next;
      if (!message.is_object()) std::abort();
      auto encoded = Encode(message);
      if (!encoded.ok()) std::abort();
      auto body = DecodeBody(std::string_view(*encoded).substr(4));
      if (!body.ok() || *body != message) std::abort();
    }
  }
  return 0;
}
