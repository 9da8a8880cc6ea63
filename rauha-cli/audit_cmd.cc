// `rauha audit`: verify the audit chain and task receipts offline (no daemon: the files and a
// public key are enough), read the log as a person, and ask rauhad for its key or a rotation.
#include <sys/stat.h>
#include <fstream>
#include <iostream>
#include <sstream>

#include "rauha-cli/commands.h"
#include "rauha-common/audit/chain_verifier.h"
#include "rauha-common/audit/jcs.h"
#include "rauha-common/audit/receipt.h"
#include "rauha/v1/audit.grpc.pb.h"

namespace rauha::cli {
namespace {

constexpr char kDefaultAuditDir[] = "/var/lib/rauha/audit";
constexpr int kExitTampered = 1;

namespace av1 = rauha::audit::v1;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The trusted key: --key FILE, else the key the chain names, from the audit dir's keys/.
absl::StatusOr<audit::PublicKey> TrustedKey(const std::string& key_file, const std::string& dir,
                                            const std::string& key_id, std::string* note) {
  if (!key_file.empty()) return audit::PublicKey::FromPemFile(key_file);
  if (key_id.empty()) return absl::InvalidArgumentError("no key: pass --key FILE");
  std::string path = StrCat(dir, "/keys/", key_id, ".pub");
  auto key = audit::PublicKey::FromPemFile(path);
  if (!key.ok()) {
    return absl::NotFoundError(StrCat("no public key for ", key_id, " in ", dir,
                                      "/keys: pass --key FILE (the key you trust)"));
  }
  *note = StrCat("trusting key ", key_id, " from ", path, " (pass --key to pin the key you trust)");
  return key;
}

std::string FirstKeyId(const std::string& first_segment) {
  auto bytes = ReadFile(first_segment);
  if (!bytes.ok()) return "";
  std::string line = bytes->substr(0, bytes->find('\n'));
  auto record = nlohmann::json::parse(line, nullptr, false);
  return record.is_object() ? record.value("key_id", "") : "";
}

int VerifyChain(const std::vector<std::string>& paths_in, const std::string& key_file, bool json) {
  std::vector<std::string> paths = paths_in;
  if (paths.empty()) paths.push_back(kDefaultAuditDir);
  std::vector<std::string> segments;
  std::string dir;
  std::optional<nlohmann::json> head;
  for (const auto& p : paths) {
    if (IsDir(p)) {
      auto files = audit::SegmentFiles(p);
      if (!files.ok()) return Fail(files.status(), kExitUsage);
      segments.insert(segments.end(), files->begin(), files->end());
      dir = p;
      auto head_text = ReadFile(p + "/head.json");
      if (head_text.ok()) head = nlohmann::json::parse(*head_text, nullptr, false);
    } else {
      segments.push_back(p);
      if (dir.empty()) {
        size_t slash = p.rfind('/');
        dir = slash == std::string::npos ? "." : p.substr(0, slash);
      }
    }
  }
  if (segments.empty()) return Fail(StrCat("no audit log segments in ", paths[0]), kExitUsage);
  std::string note;
  auto key = TrustedKey(key_file, dir, FirstKeyId(segments.front()), &note);
  if (!key.ok()) return Fail(key.status(), kExitUsage);

  audit::ChainVerifier verifier(*key);
  if (head) verifier.SetHead(*head);
  for (const auto& seg : segments) {
    auto bytes = ReadFile(seg);
    if (!bytes.ok()) return Fail(bytes.status(), kExitUsage);
    verifier.AddSegment(Basename(seg), *bytes);
  }
  audit::ChainReport report = verifier.Finish();
  if (json) {
    PrintJson({{"intact", report.intact},
               {"records", report.records},
               {"last_seq", report.last_seq},
               {"last_hash", report.last_hash},
               {"key_id", report.current_key_id},
               {"segments", segments.size()},
               {"error", report.error},
               {"notes", report.notes}});
  } else {
    if (!note.empty()) std::cerr << "rauha: " << note << "\n";
    for (const auto& n : report.notes) std::cout << "note: " << n << "\n";
    if (report.intact) {
      std::cout << "intact: " << report.records << " records in " << segments.size()
                << " segment(s), seq 0.." << report.last_seq << ", key " << report.current_key_id
                << "\n";
    } else {
      std::cout << "TAMPERED or broken: " << report.error << "\n";
    }
  }
  return report.intact ? 0 : kExitTampered;
}

int VerifyReceipt(const std::string& result_file, const std::string& key_file,
                  const std::string& dir, bool json) {
  auto text = ReadFile(result_file);
  if (!text.ok()) return Fail(text.status(), kExitUsage);
  auto result = nlohmann::json::parse(*text, nullptr, false);
  if (!result.is_object()) return Fail(StrCat(result_file, ": not a JSON object"), kExitUsage);
  auto key_id = audit::ReceiptKeyId(result);
  if (!key_id.ok()) return Fail(key_id.status(), kExitTampered);
  std::string note;
  auto key = TrustedKey(key_file, dir, *key_id, &note);
  if (!key.ok()) return Fail(key.status(), kExitUsage);
  absl::Status st = audit::CheckReceipt(result, *key);
  if (json) {
    PrintJson({{"valid", st.ok()}, {"key_id", key->id()}, {"error", ToStd(st.message())}});
  } else {
    if (!note.empty()) std::cerr << "rauha: " << note << "\n";
    if (st.ok()) {
      std::cout << "valid: task " << result.value("task_id", "") << " is what rauhad recorded"
                << " (key " << key->id() << ")\n";
    } else {
      std::cout << "INVALID: " << ToStd(st.message()) << "\n";
    }
  }
  return st.ok() ? 0 : kExitTampered;
}

// Every record of the log in `dir`, oldest first (records that do not parse are shown raw).
std::vector<std::string> Lines(const std::string& dir) {
  std::vector<std::string> out;
  auto files = audit::SegmentFiles(dir);
  if (!files.ok()) return out;
  for (const auto& f : *files) {
    auto bytes = ReadFile(f);
    if (!bytes.ok()) continue;
    std::istringstream in(*bytes);
    for (std::string line; std::getline(in, line);) out.push_back(line);
  }
  return out;
}

std::string Summary(const std::string& line) {
  auto r = nlohmann::json::parse(line, nullptr, false);
  if (!r.is_object()) return "(not a record) " + line.substr(0, 80);
  std::string body = r.contains("body")
                         ? r["body"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                         : "{}";
  if (body.size() > 120) body = body.substr(0, 117) + "...";
  return StrCat(r.value("seq", int64_t{-1}), "  ", r.value("time", ""), "  ", r.value("kind", ""),
                "  ", r.value("zone_id", "-"), "  ", body);
}

// One AuditService call: connects, calls `method`, prints the answer with `print`; the exit code.
template <typename Request, typename Print>
int CallAuditService(const Cli& cli,
                     grpc::Status (av1::AuditService::Stub::*method)(grpc::ClientContext*,
                                                                     const Request&,
                                                                     av1::AuditKey*),
                     const Request& request, Print print) {
  auto stub = MakeStub<av1::AuditService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  av1::AuditKey out;
  grpc::ClientContext ctx;
  grpc::Status st = ((**stub).*method)(&ctx, request, &out);
  if (!st.ok()) return Fail(DescribeRpcError(st));
  print(out);
  return 0;
}

}  // namespace

void AddAuditCommands(CLI::App& app, Cli& cli) {
  CLI::App* audit = app.add_subcommand("audit", "The signed audit log: verify, read, keys");
  audit->require_subcommand(1);

  struct VerifyArgs {
    std::vector<std::string> paths;
    std::string key;
    std::string receipt;
    std::string dir = kDefaultAuditDir;
    bool json = false;
  };
  auto v = std::make_shared<VerifyArgs>();
  CLI::App* verify = audit->add_subcommand(
      "verify",
      "Verify the chain offline (signatures, prev links, seq, across segments, key rotations; "
      "no daemon needed). Exit 0 intact, 1 tampered or broken (the first bad line named), 2 "
      "usage");
  verify->add_option("paths", v->paths,
                     "audit directories or segment files, in order (default: "
                     "/var/lib/rauha/audit)");
  verify->add_option("--key", v->key,
                     "the public key you trust (PEM); default: the key the "
                     "log names, from its keys/ directory");
  verify->add_option("--receipt", v->receipt,
                     "check one `rauha sandbox` JSON result against its receipt instead");
  verify->add_option("--audit-dir", v->dir, "where --receipt finds keys without --key")
      ->capture_default_str();
  verify->add_flag("--json", v->json, "Print the report as JSON");
  verify->callback([&cli, v] {
    cli.exit_code = v->receipt.empty() ? VerifyChain(v->paths, v->key, v->json)
                                       : VerifyReceipt(v->receipt, v->key, v->dir, v->json);
  });

  struct ReadArgs {
    std::string dir = kDefaultAuditDir;
    size_t count = 20;
    int64_t seq = -1;
    bool json = false;
  };
  auto t = std::make_shared<ReadArgs>();
  CLI::App* tail = audit->add_subcommand("tail", "Print the last records, one line each");
  tail->add_option("-n,--lines", t->count, "how many")->capture_default_str();
  tail->add_option("--audit-dir", t->dir, "the log's directory")->capture_default_str();
  tail->add_flag("--json", t->json, "Print the records as they are (JSON lines)");
  tail->callback([&cli, t] {
    std::vector<std::string> lines = Lines(t->dir);
    size_t from = lines.size() > t->count ? lines.size() - t->count : 0;
    for (size_t i = from; i < lines.size(); ++i) {
      std::cout << (t->json ? lines[i] : Summary(lines[i])) << "\n";
    }
    cli.exit_code = 0;
  });
  auto s = std::make_shared<ReadArgs>();
  CLI::App* show = audit->add_subcommand("show", "Print one record (by seq) in full");
  show->add_option("seq", s->seq, "the record's seq")->required();
  show->add_option("--audit-dir", s->dir, "the log's directory")->capture_default_str();
  show->callback([&cli, s] {
    for (const auto& line : Lines(s->dir)) {
      auto r = nlohmann::json::parse(line, nullptr, false);
      if (r.is_object() && r.value("seq", int64_t{-1}) == s->seq) {
        std::cout << r.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        cli.exit_code = 0;
        return;
      }
    }
    cli.exit_code = Fail(StrCat("no record with seq ", s->seq, " in ", s->dir));
  });

  auto key_json = std::make_shared<bool>(false);
  CLI::App* key = audit->add_subcommand("key", "Print rauhad's current public key (PEM)");
  key->add_flag("--json", *key_json, "Print {key_id, public_key_pem, audit_dir}");
  key->callback([&cli, key_json] {
    cli.exit_code = CallAuditService(cli, &av1::AuditService::Stub::GetKey, av1::GetKeyRequest{},
                                     [&](const av1::AuditKey& out) {
                                       if (*key_json) {
                                         PrintJson({{"key_id", out.key_id()},
                                                    {"public_key_pem", out.public_key_pem()},
                                                    {"audit_dir", out.audit_dir()}});
                                       } else {
                                         std::cout << out.public_key_pem();
                                       }
                                     });
  });
  CLI::App* rotate = audit->add_subcommand(
      "rotate", "New signing key: a key.rotate record signed by the old key names it");
  rotate->callback([&cli] {
    cli.exit_code = CallAuditService(
        cli, &av1::AuditService::Stub::Rotate, av1::RotateRequest{},
        [](const av1::AuditKey& out) { std::cout << "rotated: key " << out.key_id() << "\n"; });
  });
}

}  // namespace rauha::cli
