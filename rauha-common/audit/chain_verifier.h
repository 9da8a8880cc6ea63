// Verifies an audit chain offline: every record's shape and signature, `seq` without gaps from
// 0, each `prev` the hash of the record before it, across segment files, following key
// rotations from the key the verifier trusts. Stops at the first bad record and names it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "rauha-common/audit/signing_key.h"

namespace rauha::audit {

// Record kinds the chain itself gives meaning to.
inline constexpr char kKindKeyRotate[] = "key.rotate";  // body.public_key: the next key's PEM
// Written by rauhad after it found a torn last line (a write cut short by a crash): body names
// the segment, the line number and the SHA-256 of the torn bytes. The chain runs on from the
// last whole record in a new segment.
inline constexpr char kKindLogTorn[] = "log.torn";

struct ChainReport {
  bool intact = false;
  uint64_t records = 0;
  int64_t last_seq = -1;
  std::string last_hash;       // of the last whole record
  std::string current_key_id;  // after any rotations
  // The first problem, with where it is ("log-000000.ndjson:12: bad signature"); "" if intact.
  std::string error;
  std::string error_file;
  size_t error_line = 0;
  std::vector<std::string> notes;  // rotations, acknowledged torn lines
};

class ChainVerifier {
 public:
  explicit ChainVerifier(PublicKey trusted) : key_(std::move(trusted)) {}

  // A signed head statement (seq, hash) the chain must reach and agree with; set before the
  // segments. Its signature is checked against the keys of the chain in Finish.
  void SetHead(nlohmann::json head) { head_ = std::move(head); }
  // Feeds one segment (its file name for messages, and its bytes). Segments in order; a torn
  // (unterminated) last line is allowed only if the next record acknowledges it (log.torn).
  void AddSegment(const std::string& name, std::string_view bytes);
  // Ends the chain and returns the report.
  ChainReport Finish();

 private:
  void Fail(const std::string& file, size_t line, const std::string& message);
  void AddLine(const std::string& file, size_t line, const std::string& text);

  PublicKey key_;
  std::vector<PublicKey> keys_seen_{key_};
  std::optional<nlohmann::json> head_;
  bool head_matched_ = false;
  ChainReport report_;
  bool failed_ = false;
  std::string prev_ = std::string(64, '0');
  int64_t next_seq_ = 0;
  // A torn tail awaiting its acknowledgement: file, line, sha256 of its bytes.
  std::optional<std::tuple<std::string, size_t, std::string>> pending_torn_;
};

// A head statement: the last record's seq and hash, signed, so that cutting whole records off
// the end of the log is detected. Its canonical form without sig is what is signed.
absl::StatusOr<std::string> SignHead(int64_t seq, const std::string& hash, const SigningKey& key);
// Checks a head's signature against the chain's keys (ids to keys seen in the chain).
absl::Status CheckHead(const nlohmann::json& head, const std::vector<PublicKey>& keys);

// Segment files of an audit directory in chain order (log-000000.ndjson, ...).
absl::StatusOr<std::vector<std::string>> SegmentFiles(const std::string& audit_dir);

}  // namespace rauha::audit
