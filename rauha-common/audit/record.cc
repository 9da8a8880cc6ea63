#include "rauha-common/audit/record.h"

#include <set>

#include "rauha-common/audit/jcs.h"
#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::audit {
namespace {

bool IsLowerHex64(const nlohmann::json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> SignRecord(const RecordFields& fields, const SigningKey& key) {
  nlohmann::json record = {{"v", 1},
                           {"seq", fields.seq},
                           {"time", fields.time},
                           {"kind", fields.kind},
                           {"body", fields.body},
                           {"key_id", key.public_key().id()},
                           {"prev", fields.prev}};
  if (!fields.zone_id.empty()) record["zone_id"] = fields.zone_id;
  RAUHA_ASSIGN_OR_RETURN(std::string unsigned_form, Canonicalize(record));
  RAUHA_ASSIGN_OR_RETURN(std::string sig, key.Sign(unsigned_form));
  record["sig"] = Base64Encode(sig);
  return Canonicalize(record);
}

std::string RecordHash(const std::string& line) { return Sha256Hex(line); }

absl::Status CheckRecord(const nlohmann::json& record, const std::string& line,
                         const PublicKey& key) {
  if (!record.is_object()) return absl::InvalidArgumentError("a record is a JSON object");
  static const std::set<std::string> kAllowed = {"v",    "seq",    "time", "kind", "zone_id",
                                                 "body", "key_id", "prev", "sig"};
  for (auto it = record.begin(); it != record.end(); ++it) {
    if (!kAllowed.count(it.key())) {
      return absl::InvalidArgumentError(StrCat("unknown member \"", it.key(), "\""));
    }
  }
  if (!record.contains("v") || record["v"] != 1) return absl::InvalidArgumentError("v is not 1");
  if (!record.contains("seq") || !record["seq"].is_number_integer() || record["seq"] < 0) {
    return absl::InvalidArgumentError("seq is not a non-negative integer");
  }
  for (const char* member : {"time", "kind", "sig"}) {
    if (!record.contains(member) || !record[member].is_string()) {
      return absl::InvalidArgumentError(StrCat(member, " is not a string"));
    }
  }
  if (record.contains("zone_id") && !record["zone_id"].is_string()) {
    return absl::InvalidArgumentError("zone_id is not a string");
  }
  if (!record.contains("body") || !record["body"].is_object()) {
    return absl::InvalidArgumentError("body is not an object");
  }
  if (!record.contains("key_id") || !IsLowerHex64(record["key_id"])) {
    return absl::InvalidArgumentError("key_id is not 64 lowercase hex digits");
  }
  if (!record.contains("prev") || !IsLowerHex64(record["prev"])) {
    return absl::InvalidArgumentError("prev is not 64 lowercase hex digits");
  }
  if (record["key_id"] != key.id()) {
    return absl::InvalidArgumentError(
        StrCat("signed by key ", record["key_id"].get<std::string>(), ", expected key ", key.id()));
  }
  auto sig = Base64Decode(record["sig"].get<std::string>());
  if (!sig.ok()) return absl::InvalidArgumentError(StrCat("sig: ", sig.status().message()));
  // Canonical members are sorted (body, key_id, kind, prev, seq, sig, time, v, zone_id) and
  // only strings and integers follow sig, so its member is the last `,"sig":"` of the line and
  // removing it leaves the canonical form of the record without it.
  size_t at = line.rfind(",\"sig\":\"");
  if (at == std::string::npos) return absl::InvalidArgumentError("no sig member");
  size_t end = line.find('"', at + 8);
  if (end == std::string::npos) return absl::InvalidArgumentError("no sig member");
  std::string unsigned_form = line.substr(0, at) + line.substr(end + 1);
  if (!key.Verify(unsigned_form, *sig)) return absl::InvalidArgumentError("bad signature");
  return absl::OkStatus();
}

}  // namespace rauha::audit
