// A task's receipt: the signed `task.finish` record of the audit chain, carried in its
// SandboxResult. Its body holds SHA-256 digests of what the result shows (command, stdout and
// stderr as captured, the exit status) and of what it does not (the effective policy), so that
// anyone holding the result and the public key can check that rauhad recorded this result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "rauha-common/audit/signing_key.h"

namespace rauha::audit {

inline constexpr char kKindTaskFinish[] = "task.finish";

// What a receipt attests about one finished task.
struct TaskFacts {
  std::string task_id;
  std::string zone_id;
  std::vector<std::string> command;
  std::string status;  // "succeeded", "failed", ...
  std::optional<int64_t> exit_code;
  std::optional<int64_t> signal;
  std::string stdout_bytes;  // as captured (the bounded head the result carries)
  std::string stderr_bytes;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  std::string image_digest;  // "" without an image
};

// The digests of `facts` that a receipt holds and a result can be checked against.
nlohmann::json ResultDigests(const TaskFacts& facts);

// The body of a task.finish record: ResultDigests plus what only rauhad knows (the effective
// policy's digest, the enforcement layers applied, denial counts).
nlohmann::json ReceiptBody(const TaskFacts& facts, const std::string& policy_sha256,
                           const std::vector<std::string>& layers, uint64_t enforcement_denials,
                           uint64_t enforcement_events_lost);

// The facts a `rauha sandbox` JSON result shows (stdout/stderr as text, or as
// stdout_base64/stderr_base64 where they were not UTF-8).
absl::StatusOr<TaskFacts> FactsFromResultJson(const nlohmann::json& result);

// Checks `result` (the JSON object `rauha sandbox` printed) against its `receipt` member: the
// record's signature with `key`, its kind, and every digest against the result's own fields.
// InvalidArgument naming the first field that differs.
absl::Status CheckReceipt(const nlohmann::json& result, const PublicKey& key);

// The key_id a result's receipt names (to find its public key), or InvalidArgument.
absl::StatusOr<std::string> ReceiptKeyId(const nlohmann::json& result);

}  // namespace rauha::audit
