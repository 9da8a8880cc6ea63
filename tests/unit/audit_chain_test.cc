// The audit chain's pure parts: RFC 8785 canonical form, Ed25519 signing, records, and the
// offline chain verifier against every kind of tampering the README says it detects.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rauha-common/audit/chain_verifier.h"
#include "rauha-common/audit/jcs.h"
#include "rauha-common/audit/receipt.h"
#include "rauha-common/audit/record.h"
#include "rauha-common/audit/signing_key.h"

namespace rauha::audit {
namespace {

using nlohmann::json;

std::string Canon(const json& v) {
  auto out = Canonicalize(v);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

// RFC 8785 section 3.2.3: members sorted by UTF-16 code units (U+1F600 as a surrogate pair
// sorts before U+FB33, unlike by code point).
TEST(Jcs, SortsMembersByUtf16CodeUnits) {
  json v = json::parse(
      R"({"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"})");
  EXPECT_EQ(Canon(v),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":"
            "\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":"
            "\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}");
}

// RFC 8785 section 3.2.2.2: string escaping as ECMAScript's JSON.stringify.
TEST(Jcs, EscapesStringsAsJsonStringify) {
  json v = json::parse(R"({"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"})");
  EXPECT_EQ(Canon(v), "{\"string\":\"\u20ac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

// RFC 8785 appendix-style literals and nesting, integers only.
TEST(Jcs, LiteralsArraysAndIntegers) {
  json v = json::parse(R"({"literals":[null,true,false],"numbers":[0,-1,9007199254740991],
                           "nested":{"b":[],"a":{}}})");
  EXPECT_EQ(
      Canon(v),
      R"({"literals":[null,true,false],"nested":{"a":{},"b":[]},"numbers":[0,-1,9007199254740991]})");
}

TEST(Jcs, RefusesFloatsAndUnsafeIntegers) {
  EXPECT_FALSE(Canonicalize(json::parse("[1.5]")).ok());
  EXPECT_FALSE(Canonicalize(json::parse("[9007199254740992]")).ok());
  EXPECT_FALSE(Canonicalize(json::parse("[-9007199254740992]")).ok());
}

TEST(Jcs, ParseCanonicalRefusesOtherForms) {
  EXPECT_TRUE(ParseCanonical(R"({"a":1,"b":2})").ok());
  EXPECT_FALSE(ParseCanonical(R"({"b":2,"a":1})").ok());   // order
  EXPECT_FALSE(ParseCanonical(R"({"a": 1})").ok());        // whitespace
  EXPECT_FALSE(ParseCanonical(R"({"a":1,"a":1})").ok());   // duplicate member
  EXPECT_FALSE(ParseCanonical(R"({"a":"\u0041"})").ok());  // escape JCS would not write
  EXPECT_FALSE(ParseCanonical("{\"a\":\"\xff\"}").ok());   // not UTF-8
  EXPECT_FALSE(ParseCanonical(R"({"a":1.0})").ok());       // float
}

TEST(SigningKey, SignsAndVerifiesAndRoundTripsPem) {
  auto key = SigningKey::Generate();
  ASSERT_TRUE(key.ok()) << key.status();
  auto sig = key->Sign("message");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(key->public_key().Verify("message", *sig));
  EXPECT_FALSE(key->public_key().Verify("messagf", *sig));
  auto again = PublicKey::FromPem(key->public_key().pem());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id(), key->public_key().id());
  EXPECT_EQ(again->id().size(), 64u);
  EXPECT_FALSE(PublicKey::FromPem("not pem").ok());
}

TEST(Base64, StandardWithPaddingOnly) {
  EXPECT_EQ(Base64Encode("ab"), "YWI=");
  EXPECT_EQ(*Base64Decode("YWI="), "ab");
  EXPECT_EQ(*Base64Decode(""), "");
  EXPECT_FALSE(Base64Decode("YWI").ok());
  EXPECT_FALSE(Base64Decode("YW-=").ok());
  EXPECT_FALSE(Base64Decode("YWJ=").ok());  // stray bits: not the canonical encoding of "ab"
}

// A chain of `n` records signed by `key`, one line each.
struct Chain {
  std::vector<std::string> lines;
  std::string Text() const {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

Chain Build(const SigningKey& key, int n, const SigningKey* rotate_to = nullptr,
            int rotate_at = -1) {
  Chain chain;
  std::string prev = kGenesisPrev;
  const SigningKey* current = &key;
  for (int i = 0; i < n; ++i) {
    RecordFields f;
    f.seq = i;
    f.time = "2026-11-30T10:00:00.000000000Z";
    f.kind = "zone.create";
    f.zone_id = "z" + std::to_string(i);
    f.body = {{"name", "zone-" + std::to_string(i)}};
    if (i == rotate_at && rotate_to != nullptr) {
      f.kind = kKindKeyRotate;
      f.body = {{"public_key", rotate_to->public_key().pem()}};
    }
    f.prev = prev;
    auto line = SignRecord(f, *current);
    EXPECT_TRUE(line.ok()) << line.status();
    chain.lines.push_back(*line);
    prev = RecordHash(*line);
    if (i == rotate_at && rotate_to != nullptr) current = rotate_to;
  }
  return chain;
}

ChainReport Verify(const PublicKey& key, const std::vector<std::string>& segments) {
  ChainVerifier v(key);
  for (size_t i = 0; i < segments.size(); ++i) {
    v.AddSegment("log-00000" + std::to_string(i) + ".ndjson", segments[i]);
  }
  return v.Finish();
}

TEST(ChainVerifier, IntactChainAcrossSegmentsAndRotation) {
  auto k1 = *SigningKey::Generate();
  auto k2 = *SigningKey::Generate();
  Chain c = Build(k1, 10, &k2, 4);
  std::string a, b;
  for (int i = 0; i < 6; ++i) a += c.lines[i] + "\n";
  for (int i = 6; i < 10; ++i) b += c.lines[i] + "\n";
  ChainReport r = Verify(k1.public_key(), {a, b});
  EXPECT_TRUE(r.intact) << r.error;
  EXPECT_EQ(r.records, 10u);
  EXPECT_EQ(r.last_seq, 9);
  EXPECT_EQ(r.current_key_id, k2.public_key().id());
}

TEST(ChainVerifier, EachTamperingIsFoundAndNamed) {
  auto key = *SigningKey::Generate();
  auto other = *SigningKey::Generate();
  Chain c = Build(key, 6);
  const PublicKey& pub = key.public_key();

  // One byte flipped inside a record.
  Chain flipped = c;
  flipped.lines[3][flipped.lines[3].find("zone-3") + 5] = '9';
  ChainReport r = Verify(pub, {flipped.Text()});
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.error_line, 4u) << r.error;

  // A line deleted.
  Chain deleted = c;
  deleted.lines.erase(deleted.lines.begin() + 2);
  r = Verify(pub, {deleted.Text()});
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.error_line, 3u) << r.error;
  EXPECT_NE(r.error.find("seq 3"), std::string::npos) << r.error;

  // Two lines swapped.
  Chain swapped = c;
  std::swap(swapped.lines[1], swapped.lines[2]);
  r = Verify(pub, {swapped.Text()});
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.error_line, 2u) << r.error;

  // Truncated mid-line: a torn last line.
  std::string text = c.Text();
  r = Verify(pub, {text.substr(0, text.size() - 10)});
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.error_line, 6u) << r.error;
  EXPECT_NE(r.error.find("torn"), std::string::npos) << r.error;

  // A record re-signed by another key (chain links intact).
  Chain forged = c;
  {
    auto parsed = json::parse(c.lines[4]);
    RecordFields f;
    f.seq = 4;
    f.time = parsed["time"];
    f.kind = parsed["kind"];
    f.zone_id = parsed["zone_id"];
    f.body = parsed["body"];
    f.prev = parsed["prev"];
    forged.lines[4] = *SignRecord(f, other);
  }
  r = Verify(pub, {forged.Text()});
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.error_line, 5u) << r.error;

  // The first record removed: the chain must start at seq 0.
  Chain headless = c;
  headless.lines.erase(headless.lines.begin());
  r = Verify(pub, {headless.Text()});
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.error_line, 1u) << r.error;
}

TEST(ChainVerifier, WholeRecordsCutOffTheEndAreFoundThroughTheHead) {
  auto key = *SigningKey::Generate();
  Chain c = Build(key, 5);
  auto head = json::parse(*SignHead(4, RecordHash(c.lines[4]), key));
  ChainVerifier ok(key.public_key());
  ok.SetHead(head);
  ok.AddSegment("log-000000.ndjson", c.Text());
  EXPECT_TRUE(ok.Finish().intact);

  Chain cut = c;
  cut.lines.pop_back();
  ChainVerifier v(key.public_key());
  v.SetHead(head);
  v.AddSegment("log-000000.ndjson", cut.Text());
  ChainReport r = v.Finish();
  EXPECT_FALSE(r.intact);
  EXPECT_NE(r.error.find("cut off"), std::string::npos) << r.error;
}

TEST(ChainVerifier, TornLineAcknowledgedByTheNextSegmentVerifies) {
  auto key = *SigningKey::Generate();
  Chain c = Build(key, 3);
  std::string torn = "{\"body\":{\"na";
  std::string seg0 = c.Text() + torn;
  RecordFields f;
  f.seq = 3;
  f.time = "2026-11-30T10:00:01.000000000Z";
  f.kind = kKindLogTorn;
  f.body = {{"segment", "log-000000.ndjson"}, {"line", 4}, {"sha256", Sha256Hex(torn)}};
  f.prev = RecordHash(c.lines[2]);
  std::string seg1 = *SignRecord(f, key) + "\n";
  ChainReport r = Verify(key.public_key(), {seg0, seg1});
  EXPECT_TRUE(r.intact) << r.error;
  EXPECT_EQ(r.records, 4u);
  ASSERT_EQ(r.notes.size(), 1u);

  // The same torn line without the acknowledgement fails, naming it.
  r = Verify(key.public_key(), {seg0});
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.error_line, 4u);
}

}  // namespace
}  // namespace rauha::audit

namespace rauha::audit {
namespace {

// A result as `rauha sandbox` prints it, with a receipt made the way rauhad makes it.
nlohmann::json SignedResult(const SigningKey& key) {
  TaskFacts f;
  f.task_id = "t1";
  f.zone_id = "z1";
  f.command = {"sh", "-c", "echo hi"};
  f.status = "succeeded";
  f.exit_code = 0;
  f.stdout_bytes = "hi\n";
  RecordFields fields;
  fields.time = "2026-11-30T10:00:00.000000000Z";
  fields.kind = kKindTaskFinish;
  fields.zone_id = "z1";
  fields.body = ReceiptBody(f, std::string(64, 'a'), {"seccomp", "landlock"}, 0, 0);
  nlohmann::json result = {{"task_id", "t1"},
                           {"zone_id", "z1"},
                           {"command", f.command},
                           {"status", "succeeded"},
                           {"exit_code", 0},
                           {"stdout", "hi\n"},
                           {"stderr", ""},
                           {"stdout_truncated", false},
                           {"stderr_truncated", false}};
  result["receipt"] = *SignRecord(fields, key);
  return result;
}

TEST(Receipt, VerifiesTheResultItWasMadeFor) {
  auto key = *SigningKey::Generate();
  nlohmann::json result = SignedResult(key);
  EXPECT_TRUE(CheckReceipt(result, key.public_key()).ok())
      << CheckReceipt(result, key.public_key());
  EXPECT_EQ(*ReceiptKeyId(result), key.public_key().id());
}

TEST(Receipt, AnyChangeToTheResultIsNamed) {
  auto key = *SigningKey::Generate();
  auto changed = [&](auto edit) {
    nlohmann::json r = SignedResult(key);
    edit(r);
    return std::string(CheckReceipt(r, key.public_key()).message());
  };
  EXPECT_NE(changed([](auto& r) { r["stdout"] = "ho\n"; }).find("stdout_sha256"),
            std::string::npos);
  EXPECT_NE(changed([](auto& r) { r["exit_code"] = 1; }).find("exit_code"), std::string::npos);
  EXPECT_NE(changed([](auto& r) { r.erase("exit_code"); }).find("exit_code"), std::string::npos);
  EXPECT_NE(changed([](auto& r) { r["command"][2] = "rm -rf /"; }).find("command_sha256"),
            std::string::npos);
  EXPECT_NE(changed([](auto& r) { r["status"] = "failed"; }).find("status"), std::string::npos);
  // Output given as base64 (not UTF-8) is compared as the bytes it stands for.
  EXPECT_EQ(changed([](auto& r) {
              r.erase("stdout");
              r["stdout_base64"] = "aGkK";
            }),
            "");
  // Another key's signature.
  auto other = *SigningKey::Generate();
  EXPECT_FALSE(CheckReceipt(SignedResult(other), key.public_key()).ok());
  // No receipt at all.
  nlohmann::json bare = SignedResult(key);
  bare.erase("receipt");
  EXPECT_FALSE(CheckReceipt(bare, key.public_key()).ok());
}

}  // namespace
}  // namespace rauha::audit

namespace rauha::audit {
namespace {

TEST(Jcs, RecordsAreUtf8Only) {
  nlohmann::json v = {{"comm", std::string("a\xff" "b")}};
  EXPECT_FALSE(Canonicalize(v).ok());
  EXPECT_EQ(ToValidUtf8("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(ToValidUtf8("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(ToValidUtf8("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
  v = {{"comm", ToValidUtf8("a\xff" "b")}};
  EXPECT_TRUE(Canonicalize(v).ok());
}

}  // namespace
}  // namespace rauha::audit

namespace rauha::audit {
namespace {

// The signed form is the line without its top-level sig: a body member named "sig" (or a
// string holding `,"sig":"`) must not confuse it.
TEST(ChainVerifier, BodyMembersNamedSigDoNotConfuseTheSignedForm) {
  auto key = *SigningKey::Generate();
  RecordFields f;
  f.time = "2026-11-30T10:00:00.000000000Z";
  f.kind = "zone.create";
  f.body = {{"a", 1}, {"sig", "nested"}, {"text", ",\"sig\":\"x"}};
  std::string line = *SignRecord(f, key);
  ChainVerifier v(key.public_key());
  v.AddSegment("log-000000.ndjson", line + "\n");
  ChainReport r = v.Finish();
  EXPECT_TRUE(r.intact) << r.error;
}

}  // namespace
}  // namespace rauha::audit
