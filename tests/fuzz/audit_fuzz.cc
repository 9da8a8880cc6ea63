// libFuzzer target: arbitrary bytes as audit log segments and as a task result, through the
// offline verifier. Must not crash; a chain the verifier calls intact must re-verify from its
// canonical lines; ParseCanonical's output must canonicalize back to its input.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rauha-common/audit/chain_verifier.h"
#include "rauha-common/audit/jcs.h"
#include "rauha-common/audit/receipt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rauha::audit;
  static const SigningKey key = *SigningKey::Generate();
  std::string bytes(reinterpret_cast<const char*>(data), size);

  auto parsed = ParseCanonical(bytes);
  if (parsed.ok()) {
    auto again = Canonicalize(*parsed);
    if (!again.ok() || *again != bytes) std::abort();
  }

  // Split into two segments at the first byte's value, so torn lines and segment boundaries
  // are reached.
  size_t cut = size > 0 ? data[0] % (size + 1) : 0;
  ChainVerifier verifier(key.public_key());
  verifier.AddSegment("log-000000.ndjson", bytes.substr(0, cut));
  verifier.AddSegment("log-000001.ndjson", bytes.substr(cut));
  (void)verifier.Finish();

  auto result = nlohmann::json::parse(bytes, nullptr, false);
  if (!result.is_discarded()) (void)CheckReceipt(result, key.public_key());
  return 0;
}
