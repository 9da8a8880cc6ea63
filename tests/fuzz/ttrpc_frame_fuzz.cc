// libFuzzer target: a byte stream into ttrpc::FrameDecoder in chunks whose sizes come from the
// input, each complete request payload parsed as a ttrpc Request. Must not crash; a decoded
// frame's payload never exceeds the limit; an oversized frame carries no payload; every
// frame re-encodes to the bytes it came from.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>

#include "containerd-shim-rauha-v2/ttrpc/frame.h"
#include "ttrpc.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rauha::ttrpc;
  FuzzedDataProvider in(data, size);
  // Small limits reach the oversized path without megabytes of input.
  uint32_t max = in.ConsumeBool() ? kMaxPayload : in.ConsumeIntegralInRange<uint32_t>(0, 64);
  FrameDecoder decoder(max);
  while (in.remaining_bytes() > 0) {
    size_t chunk = in.ConsumeIntegralInRange<size_t>(1, 64);
    decoder.Feed(in.ConsumeBytesAsString(chunk));
    if (decoder.buffered() > kHeaderBytes + max + 64) std::abort();
    while (auto frame = decoder.Next()) {
      if (frame->oversized) {
        if (!frame->payload.empty() || frame->length <= max) std::abort();
        continue;
      }
      if (frame->payload.size() > max || frame->payload.size() != frame->length) std::abort();
      auto encoded = EncodeFrame(frame->stream_id, static_cast<MessageType>(frame->type),
                                 frame->flags, frame->payload);
      if (!encoded.ok()) std::abort();
      FrameDecoder again;
      again.Feed(*encoded);
      auto back = again.Next();
      if (!back || back->payload != frame->payload || back->stream_id != frame->stream_id ||
          back->type != frame->type || back->flags != frame->flags) {
        std::abort();
      }
      ::ttrpc::Request request;
      (void)request.ParseFromString(frame->payload);
    }
  }
  return 0;
}
