// Host ids for zones' user namespaces, persistent in the metadata database like IPAM: each
// non-privileged zone holds one block of 65536 host ids (its uid/gid 0..65535) from creation
// until it is deleted, across daemon restarts and crashes; no two zones ever hold the same.
//
// The pool is rauhad's --userns-range FIRST:COUNT, default 100000000:268435456 (4096 zones of
// 65536 ids: host ids 100000000 to 368435455). Ids from 100 million up are owned by no user of
// a normal host (useradd stops at 60000, systemd's dynamic users at 65519, and nothing here
// writes /etc/subuid), and the range stays below 2^31 so no tool that reads ids as a signed
// int misreads them. `--userns-range off` gives every zone the host's ids.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "rauhad/store/store.h"

namespace rauha {

struct UsernsPool {
  uint32_t first = 0;
  uint32_t count = 0;  // a multiple of 65536; 0: off
};

// "FIRST:COUNT" (COUNT a positive multiple of 65536, FIRST >= 65536, the range below
// 2^32 - 1) or "off". InvalidArgument saying what to write otherwise.
absl::StatusOr<UsernsPool> ParseUsernsRange(const std::string& text);

class UsernsRanges {
 public:
  UsernsRanges(UsernsPool pool, store::Store* store) : pool_(pool), store_(store) {}

  // The first host id of the zone's block: the one it holds, or the lowest free one.
  // ResourceExhausted when every block is held.
  absl::StatusOr<uint32_t> Allocate(const std::string& zone_id);
  // The zone's block, or nullopt when it holds none.
  std::optional<uint32_t> Lookup(const std::string& zone_id);
  absl::Status Release(const std::string& zone_id);
  // Frees the blocks of zones not in `zone_ids` (leftovers of an interrupted delete).
  absl::Status ReleaseAllBut(const std::set<std::string>& zone_ids);

  const UsernsPool& pool() const { return pool_; }

 private:
  UsernsPool pool_;
  store::Store* store_;
  std::mutex mu_;
};

}  // namespace rauha
