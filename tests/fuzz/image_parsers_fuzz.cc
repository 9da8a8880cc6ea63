// libFuzzer target for the image parsers that read registry and user input: references,
// manifests / indexes (with platform selection), WWW-Authenticate challenges and auths files.
// The first byte picks the parser. Invariants: no crash, no sanitizer report, a parsed
// reference's canonical form parses back to itself.
//   tests/rauha_image_parsers_fuzz -max_total_time=120 <corpus dir>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rauhad/image/auth.h"
#include "rauhad/image/manifest.h"
#include "rauhad/image/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto ref = rauha::image::ParseReference(input);
      if (ref.ok()) {
        auto again = rauha::image::ParseReference(ref->String());
        if (!again.ok() || again->String() != ref->String()) std::abort();
      }
      break;
    }
    case 1: {
      auto m = rauha::image::ParseManifest(input, "");
      if (m.ok() && m->is_index) {
        (void)rauha::image::SelectPlatform(*m, rauha::image::HostPlatform());
      }
      break;
    }
    case 2:
      (void)rauha::image::ParseChallenge(input);
      break;
    case 3:
      (void)rauha::image::FindCredentials(input, "127.0.0.1:5000");
      break;
  }
  return 0;
}
