#include "rauhad/userns_ranges.h"

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauha-common/userns.h"

namespace rauha {

absl::StatusOr<UsernsPool> ParseUsernsRange(const std::string& text) {
  if (text == "off") return UsernsPool{};
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        StrCat("--userns-range \"", text, "\": ", why,
               "; write FIRST:COUNT (host ids FIRST .. FIRST+COUNT-1, COUNT a multiple of 65536, "
               "e.g. 100000000:268435456) or \"off\""));
  };
  auto colon = text.find(':');
  if (colon == std::string::npos) return bad("no ':'");
  auto number = [](std::string_view s, uint64_t* out) {
    if (s.empty() || s.size() > 10) return false;
    uint64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    *out = v;
    return true;
  };
  uint64_t first = 0, count = 0;
  if (!number(std::string_view(text).substr(0, colon), &first)) return bad("FIRST is not a number");
  if (!number(std::string_view(text).substr(colon + 1), &count))
    return bad("COUNT is not a number");
  if (first < kZoneIdCount) return bad("FIRST must be at least 65536 (ids below are the host's)");
  if (count == 0 || count % kZoneIdCount != 0) return bad("COUNT must be a multiple of 65536");
  // (uid_t)-1 is "no id" to the kernel.
  if (first + count > 0xFFFFFFFFull) return bad("the range must end below 4294967295");
  return UsernsPool{static_cast<uint32_t>(first), static_cast<uint32_t>(count)};
}

absl::StatusOr<uint32_t> UsernsRanges::Allocate(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  if (pool_.count == 0) return absl::FailedPreconditionError("user namespaces are off");
  RAUHA_ASSIGN_OR_RETURN(auto held, store_->ListUsernsRanges());
  std::set<uint32_t> taken;
  for (const auto& r : held) {
    if (r.zone_id == zone_id) return r.first;
    taken.insert(r.first);
  }
  for (uint64_t first = pool_.first; first + kZoneIdCount <= uint64_t{pool_.first} + pool_.count;
       first += kZoneIdCount) {
    if (taken.count(static_cast<uint32_t>(first))) continue;
    RAUHA_RETURN_IF_ERROR(store_->PutUsernsRange({static_cast<uint32_t>(first), zone_id}));
    return static_cast<uint32_t>(first);
  }
  return absl::ResourceExhaustedError(StrCat(
      "no free block of 65536 host ids left in --userns-range ", pool_.first, ":", pool_.count,
      " (", taken.size(), " zones hold one); delete zones or start rauhad with a larger range"));
}

std::optional<uint32_t> UsernsRanges::Lookup(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  auto held = store_->ListUsernsRanges();
  if (!held.ok()) return std::nullopt;
  for (const auto& r : *held) {
    if (r.zone_id == zone_id) return r.first;
  }
  return std::nullopt;
}

absl::Status UsernsRanges::Release(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  return store_->ReleaseUsernsRange(zone_id);
}

absl::Status UsernsRanges::ReleaseAllBut(const std::set<std::string>& zone_ids) {
  std::lock_guard lock(mu_);
  RAUHA_ASSIGN_OR_RETURN(auto held, store_->ListUsernsRanges());
  for (const auto& r : held) {
    if (!zone_ids.count(r.zone_id)) RAUHA_RETURN_IF_ERROR(store_->ReleaseUsernsRange(r.zone_id));
  }
  return absl::OkStatus();
}

}  // namespace rauha
