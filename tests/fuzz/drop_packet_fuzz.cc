// libFuzzer target: NFLOG prefix and payload (the payload is a packet a zone sent) into
// ParseDroppedPacket. Must not crash or read past the payload; what it accepts has dotted-quad
// addresses and a destination text that names them.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>

#include "rauhad/net/drop_packet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::string prefix =
      in.ConsumeBool() ? "rauha/egress/1a2b3c4d" : in.ConsumeRandomLengthString(40);
  std::string payload = in.ConsumeRemainingBytesAsString();
  auto p = rauha::net::ParseDroppedPacket(prefix, payload);
  if (!p) return 0;
  if (p->source.empty() || p->destination.empty() || p->protocol.empty()) std::abort();
  if (rauha::net::DestinationText(*p).find(p->destination) != 0) std::abort();
  return 0;
}
