#include "rauha-common/audit/receipt.h"

#include "rauha-common/audit/jcs.h"
#include "rauha-common/audit/record.h"
#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::audit {
namespace {

absl::StatusOr<std::string> StreamBytes(const nlohmann::json& result, const std::string& name) {
  std::string b64 = name + "_base64";
  if (result.contains(b64) && result[b64].is_string()) {
    auto bytes = Base64Decode(result[b64].get<std::string>());
    if (!bytes.ok()) return absl::InvalidArgumentError(StrCat(b64, ": not base64"));
    return bytes;
  }
  if (result.contains(name) && result[name].is_string()) return result[name].get<std::string>();
  if (!result.contains(name)) return std::string();
  return absl::InvalidArgumentError(StrCat(name, " is not a string"));
}

absl::StatusOr<nlohmann::json> ReceiptRecord(const nlohmann::json& result) {
  if (!result.is_object() || !result.contains("receipt") || !result["receipt"].is_string() ||
      result["receipt"].get_ref<const std::string&>().empty()) {
    return absl::InvalidArgumentError("the result has no receipt");
  }
  auto record = ParseCanonical(result["receipt"].get<std::string>());
  if (!record.ok()) return Annotate(record.status(), "receipt");
  return record;
}

}  // namespace

nlohmann::json ResultDigests(const TaskFacts& f) {
  nlohmann::json command = f.command;
  nlohmann::json out = {
      {"task_id", f.task_id},
      {"zone_id", f.zone_id},
      // The command as a canonical JSON array of strings.
      {"command_sha256", Sha256Hex(Canonicalize(command).value_or(""))},
      {"status", f.status},
      {"stdout_sha256", Sha256Hex(f.stdout_bytes)},
      {"stderr_sha256", Sha256Hex(f.stderr_bytes)},
      {"stdout_truncated", f.stdout_truncated},
      {"stderr_truncated", f.stderr_truncated},
  };
  if (f.exit_code) out["exit_code"] = *f.exit_code;
  if (f.signal) out["signal"] = *f.signal;
  if (!f.image_digest.empty()) out["image_digest"] = f.image_digest;
  return out;
}

nlohmann::json ReceiptBody(const TaskFacts& facts, const std::string& policy_sha256,
                           const std::vector<std::string>& layers, uint64_t enforcement_denials,
                           uint64_t enforcement_events_lost) {
  nlohmann::json body = ResultDigests(facts);
  body["policy_sha256"] = policy_sha256;
  body["layers"] = layers;
  body["enforcement_denials"] = enforcement_denials;
  body["enforcement_events_lost"] = enforcement_events_lost;
  return body;
}

absl::StatusOr<TaskFacts> FactsFromResultJson(const nlohmann::json& r) {
  if (!r.is_object()) return absl::InvalidArgumentError("a result is a JSON object");
  TaskFacts f;
  f.task_id = r.value("task_id", "");
  f.zone_id = r.value("zone_id", "");
  if (r.contains("command") && r["command"].is_array()) {
    for (const auto& word : r["command"]) {
      if (!word.is_string()) return absl::InvalidArgumentError("command holds a non-string");
      f.command.push_back(word.get<std::string>());
    }
  }
  f.status = r.value("status", "");
  if (r.contains("exit_code") && r["exit_code"].is_number_integer()) {
    f.exit_code = r["exit_code"].get<int64_t>();
  }
  if (r.contains("signal") && r["signal"].is_number_integer()) {
    f.signal = r["signal"].get<int64_t>();
  }
  RAUHA_ASSIGN_OR_RETURN(f.stdout_bytes, StreamBytes(r, "stdout"));
  RAUHA_ASSIGN_OR_RETURN(f.stderr_bytes, StreamBytes(r, "stderr"));
  f.stdout_truncated = r.value("stdout_truncated", false);
  f.stderr_truncated = r.value("stderr_truncated", false);
  f.image_digest = r.value("image_digest", "");
  return f;
}

absl::StatusOr<std::string> ReceiptKeyId(const nlohmann::json& result) {
  RAUHA_ASSIGN_OR_RETURN(nlohmann::json record, ReceiptRecord(result));
  if (!record.contains("key_id") || !record["key_id"].is_string()) {
    return absl::InvalidArgumentError("receipt: no key_id");
  }
  return record["key_id"].get<std::string>();
}

absl::Status CheckReceipt(const nlohmann::json& result, const PublicKey& key) {
  RAUHA_ASSIGN_OR_RETURN(nlohmann::json record, ReceiptRecord(result));
  if (auto st = CheckRecord(record, result["receipt"].get<std::string>(), key); !st.ok()) {
    return Annotate(st, "receipt");
  }
  if (record["kind"] != kKindTaskFinish) {
    return absl::InvalidArgumentError("receipt: not a task.finish record");
  }
  RAUHA_ASSIGN_OR_RETURN(TaskFacts facts, FactsFromResultJson(result));
  nlohmann::json expected = ResultDigests(facts);
  const nlohmann::json& body = record["body"];
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    if (!body.contains(it.key()) || body[it.key()] != it.value()) {
      return absl::InvalidArgumentError(
          StrCat("receipt: ", it.key(), " differs from the result's (the result was changed)"));
    }
  }
  // Members the result lacks but the receipt names (e.g. an exit code removed from the result).
  for (const char* optional : {"exit_code", "signal", "image_digest"}) {
    if (body.contains(optional) && !expected.contains(optional)) {
      return absl::InvalidArgumentError(
          StrCat("receipt: ", optional, " is missing from the result (the result was changed)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace rauha::audit
