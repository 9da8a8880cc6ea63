// One audit record: a JSON object, written as its RFC 8785 canonical form on one line.
//
//   {"body":{...},"key_id":"<hex>","kind":"zone.create","prev":"<hex>","seq":7,
//    "sig":"<base64>","time":"2026-11-30T10:00:00.000000000Z","v":1,"zone_id":"..."}
//
// `prev` is the SHA-256 of the previous record's line (its canonical form, `sig` included), 64
// zeros for seq 0; `sig` the Ed25519 signature of the canonical form without `sig`. See
// README "Audit log" for the contract an independent verifier is written from.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "rauha-common/audit/signing_key.h"

namespace rauha::audit {

inline constexpr char kGenesisPrev[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct RecordFields {
  int64_t seq = 0;
  std::string time;     // RFC 3339 UTC
  std::string kind;     // e.g. "zone.create", "task.finish", "key.rotate"
  std::string zone_id;  // "" = absent
  nlohmann::json body = nlohmann::json::object();
  std::string prev = kGenesisPrev;
};

// The signed record's line (canonical JSON, no newline). InvalidArgument if the body holds
// floats or out-of-range integers.
absl::StatusOr<std::string> SignRecord(const RecordFields& fields, const SigningKey& key);

// The SHA-256 (hex) that the next record's `prev` holds for this record line.
std::string RecordHash(const std::string& line);

// Checks a parsed record's shape (members, types) and its signature with `key` (whose id must
// be the record's key_id). `line` is the record's canonical text (ParseCanonical checked it):
// the signed form is that text without its top-level sig member. Does not check seq/prev
// continuity: the chain verifier does.
absl::Status CheckRecord(const nlohmann::json& record, const std::string& line,
                         const PublicKey& key);

}  // namespace rauha::audit
