#include "rauha-common/audit/chain_verifier.h"

#include <algorithm>
#include <filesystem>

#include "rauha-common/audit/jcs.h"
#include "rauha-common/audit/record.h"
#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::audit {

void ChainVerifier::Fail(const std::string& file, size_t line, const std::string& message) {
  if (failed_) return;
  failed_ = true;
  report_.error = StrCat(file, ":", line, ": ", message);
  report_.error_file = file;
  report_.error_line = line;
}

void ChainVerifier::AddLine(const std::string& file, size_t line, const std::string& text) {
  auto record = ParseCanonical(text);
  if (!record.ok()) return Fail(file, line, ToStd(record.status().message()));
  if (auto st = CheckRecord(*record, text, key_); !st.ok()) {
    return Fail(file, line, ToStd(st.message()));
  }
  int64_t seq = (*record)["seq"].get<int64_t>();
  if (seq != next_seq_) {
    return Fail(file, line, StrCat("seq ", seq, " where ", next_seq_, " was expected"));
  }
  if ((*record)["prev"] != prev_) {
    return Fail(file, line, "prev is not the hash of the record before it");
  }
  const std::string& kind = (*record)["kind"].get_ref<const std::string&>();
  const nlohmann::json& body = (*record)["body"];
  if (pending_torn_) {
    auto [torn_file, torn_line, torn_hash] = *pending_torn_;
    if (kind != kKindLogTorn || body.value("segment", "") != torn_file ||
        body.value("line", uint64_t{0}) != torn_line || body.value("sha256", "") != torn_hash) {
      return Fail(torn_file, torn_line,
                  "torn line (a write cut short) that no record accounts for");
    }
    report_.notes.push_back(
        StrCat(torn_file, ":", torn_line, ": torn line, acknowledged by seq ", seq));
    pending_torn_.reset();
  } else if (kind == kKindLogTorn) {
    return Fail(file, line, "log.torn record without a torn line before it");
  }
  if (kind == kKindKeyRotate) {
    auto next = body.contains("public_key") && body["public_key"].is_string()
                    ? PublicKey::FromPem(body["public_key"].get<std::string>())
                    : absl::StatusOr<PublicKey>(absl::InvalidArgumentError("no public_key"));
    if (!next.ok()) {
      return Fail(file, line, StrCat("key.rotate: ", ToStd(next.status().message())));
    }
    report_.notes.push_back(StrCat("seq ", seq, ": key rotated to ", next->id()));
    key_ = *std::move(next);
    keys_seen_.push_back(key_);
  }
  prev_ = RecordHash(text);
  if (head_ && head_->value("seq", int64_t{-1}) == seq) {
    if (head_->value("hash", "") != prev_) {
      return Fail(file, line, "this record is not the one the log's head names: it was replaced");
    }
    head_matched_ = true;
  }
  report_.last_seq = seq;
  report_.last_hash = prev_;
  ++report_.records;
  ++next_seq_;
}

void ChainVerifier::AddSegment(const std::string& name, std::string_view bytes) {
  if (failed_) return;
  size_t line = 0;
  size_t pos = 0;
  while (pos < bytes.size() && !failed_) {
    ++line;
    size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos) {
      pending_torn_ = std::make_tuple(name, line, Sha256Hex(bytes.substr(pos)));
      return;
    }
    std::string text(bytes.substr(pos, end - pos));
    if (text.empty()) return Fail(name, line, "empty line");
    AddLine(name, line, text);
    pos = end + 1;
  }
}

ChainReport ChainVerifier::Finish() {
  if (!failed_ && pending_torn_) {
    auto [torn_file, torn_line, torn_hash] = *pending_torn_;
    Fail(torn_file, torn_line,
         "torn last line (a write cut short by a crash; rauhad acknowledges it when it starts)");
  }
  if (!failed_ && head_) {
    if (auto st = CheckHead(*head_, keys_seen_); !st.ok()) {
      Fail("head", 0, ToStd(st.message()));
    } else if (!head_matched_) {
      Fail("head", 0,
           StrCat("the log ends at seq ", report_.last_seq, " but its head names seq ",
                  head_->value("seq", int64_t{-1}), ": records were cut off the end"));
    }
  }
  report_.current_key_id = key_.id();
  report_.intact = !failed_;
  return report_;
}

absl::StatusOr<std::string> SignHead(int64_t seq, const std::string& hash, const SigningKey& key) {
  nlohmann::json head = {{"seq", seq}, {"hash", hash}, {"key_id", key.public_key().id()}};
  RAUHA_ASSIGN_OR_RETURN(std::string unsigned_form, Canonicalize(head));
  RAUHA_ASSIGN_OR_RETURN(std::string sig, key.Sign(unsigned_form));
  head["sig"] = Base64Encode(sig);
  return Canonicalize(head);
}

absl::Status CheckHead(const nlohmann::json& head, const std::vector<PublicKey>& keys) {
  if (!head.is_object() || !head.contains("seq") || !head["seq"].is_number_integer() ||
      !head.contains("hash") || !head["hash"].is_string() || !head.contains("key_id") ||
      !head["key_id"].is_string() || !head.contains("sig") || !head["sig"].is_string()) {
    return absl::InvalidArgumentError("head: not a head statement");
  }
  auto key = std::find_if(keys.begin(), keys.end(),
                          [&](const PublicKey& k) { return k.id() == head["key_id"]; });
  if (key == keys.end()) return absl::InvalidArgumentError("head: signed by an unknown key");
  auto sig = Base64Decode(head["sig"].get<std::string>());
  if (!sig.ok()) return absl::InvalidArgumentError("head: bad sig");
  nlohmann::json unsigned_head = head;
  unsigned_head.erase("sig");
  RAUHA_ASSIGN_OR_RETURN(std::string unsigned_form, Canonicalize(unsigned_head));
  if (!key->Verify(unsigned_form, *sig)) return absl::InvalidArgumentError("head: bad signature");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SegmentFiles(const std::string& audit_dir) {
  std::error_code ec;
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(audit_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() == 17 && name.rfind("log-", 0) == 0 && name.compare(10, 7, ".ndjson") == 0 &&
        std::all_of(name.begin() + 4, name.begin() + 10, ::isdigit)) {
      out.push_back(entry.path().string());
    }
  }
  if (ec) return ErrnoStatus(ec.value(), StrCat("read ", audit_dir));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace rauha::audit
