// The pieces of "secrets the zone never sees" that need no kernel: sealing and the key file,
// the secrets database, the [secrets] policy table, and the request rewriter.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rauha-common/names.h"
#include "rauha-common/policy/policy.h"
#include "rauhad/egress/header_rewriter.h"
#include "rauhad/egress/tls_endpoint.h"
#include "rauhad/egress/zone_ca.h"
#include "rauhad/secrets/secret_cipher.h"
#include "rauhad/secrets/secret_store.h"

namespace rauha {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/rauha-secrets-unit-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(SecretCipherTest, SealsWithFreshNoncesAndOpensOnlyUnderItsName) {
  TempDir d;
  auto c = secrets::SecretCipher::Load(d.path() + "/keys/k", true);
  ASSERT_TRUE(c.ok()) << c.status();
  struct stat st {};
  ASSERT_EQ(::stat((d.path() + "/keys/k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  auto a = c->Seal("TOKEN", "value-1");
  auto b = c->Seal("TOKEN", "value-1");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b) << "a fresh nonce per value";
  EXPECT_EQ(a->find("value-1"), std::string::npos);
  auto opened = c->Open("TOKEN", *a);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->view(), "value-1");
  EXPECT_TRUE(absl::IsDataLoss(c->Open("OTHER", *a).status())) << "bound to its name";
  std::string changed = *a;
  changed[14] ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(c->Open("TOKEN", changed).status()));
  // The same file loads the same key.
  auto again = secrets::SecretCipher::Load(d.path() + "/keys/k", false);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->Open("TOKEN", *a).ok());
}

TEST(SecretCipherTest, RefusesKeyFilesOthersMayReadOrThatAreNotKeys) {
  TempDir d;
  std::string k = d.path() + "/k";
  ASSERT_TRUE(secrets::SecretCipher::Load(k, true).ok());
  ::chmod(k.c_str(), 0640);
  auto loose = secrets::SecretCipher::Load(k, false);
  EXPECT_TRUE(absl::IsFailedPrecondition(loose.status())) << loose.status();
  EXPECT_NE(loose.status().message().find("chmod 600"), std::string::npos);
  std::ofstream(d.path() + "/short") << "abc";
  ::chmod((d.path() + "/short").c_str(), 0600);
  EXPECT_TRUE(
      absl::IsFailedPrecondition(secrets::SecretCipher::Load(d.path() + "/short", false).status()));
  EXPECT_TRUE(absl::IsNotFound(secrets::SecretCipher::Load(d.path() + "/none", false).status()));
}

TEST(SecretStoreTest, SetListGetRemoveAndTheFileHoldsNoValue) {
  TempDir d;
  auto store = secrets::SecretStore::Open(d.path() + "/secrets.db", d.path() + "/keys/secrets.key");
  ASSERT_TRUE(store.ok()) << store.status();
  struct stat st {};
  ASSERT_EQ(::stat((d.path() + "/secrets.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(::access((d.path() + "/keys/secrets.key").c_str(), F_OK), 0) << "made at first use";
  bool replaced = true;
  auto info = (*store)->Set("GH_TOKEN", "ghp_abcdefghijklmnop", &replaced);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(replaced);
  EXPECT_EQ(info->sha256, secrets::Sha256Hex("ghp_abcdefghijklmnop"));
  ASSERT_TRUE((*store)->Set("GH_TOKEN", "ghp_second_value_xyz", &replaced).ok());
  EXPECT_TRUE(replaced);
  auto list = (*store)->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "GH_TOKEN");
  auto value = (*store)->Get("GH_TOKEN");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value->view(), "ghp_second_value_xyz");
  std::string file = ReadAll(d.path() + "/secrets.db");
  EXPECT_EQ(file.find("ghp_second_value_xyz"), std::string::npos);
  EXPECT_EQ(file.find("ghp_abcdefghijklmnop"), std::string::npos) << "secure_delete";

  // Refusals change nothing.
  EXPECT_TRUE(absl::IsInvalidArgument((*store)->Set("bad-name", "v", &replaced).status()));
  EXPECT_TRUE(absl::IsInvalidArgument((*store)->Set("OK", "a\nb", &replaced).status()));
  EXPECT_TRUE(absl::IsInvalidArgument((*store)->Set("OK", "", &replaced).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      (*store)
          ->Set("OK", std::string(secrets::kMaxSecretValueBytes + 1, 'a'), &replaced)
          .status()));
  EXPECT_EQ((*store)->List()->size(), 1u);
  EXPECT_TRUE(absl::IsNotFound((*store)->Remove("NOPE").status()));
  EXPECT_TRUE((*store)->Remove("GH_TOKEN").ok());
  EXPECT_TRUE((*store)->List()->empty());
  EXPECT_TRUE(absl::IsNotFound((*store)->Get("GH_TOKEN").status()));
}

TEST(SecretStoreTest, WithoutItsKeyFileValuesDoNotOpen) {
  TempDir d;
  bool replaced = false;
  {
    auto store = secrets::SecretStore::Open(d.path() + "/s.db", d.path() + "/k");
    ASSERT_TRUE((*store)->Set("A", "value", &replaced).ok());
  }
  ::unlink((d.path() + "/k").c_str());
  auto store = secrets::SecretStore::Open(d.path() + "/s.db", d.path() + "/k");
  ASSERT_TRUE(store.ok());
  auto v = (*store)->Get("A");
  EXPECT_TRUE(absl::IsFailedPrecondition(v.status())) << v.status();
  EXPECT_NE(v.status().message().find("is missing"), std::string::npos);
}

// Grants: kept per owner with the placeholder sealed (the file holds no placeholder in clear),
// claimed back by a new store (another rauhad) only for the owner's zone, forgotten when the
// owner ends, dropped with the secret by Remove, and those no one claims after recovery go.
TEST(SecretStoreTest, GrantsAreSealedClaimedAndForgotten) {
  TempDir d;
  const std::string db = d.path() + "/secrets.db", key = d.path() + "/keys/k";
  const std::string ph1 = "rauha-placeholder-00112233445566778899aabbccddeeff";
  const std::string ph2 = "rauha-placeholder-ffeeddccbbaa99887766554433221100";
  {
    auto store = secrets::SecretStore::Open(db, key);
    ASSERT_TRUE(store.ok()) << store.status();
    bool replaced = false;
    ASSERT_TRUE((*store)->Set("API_TOKEN", "v1", &replaced).ok());
    ASSERT_TRUE((*store)->Set("OTHER", "v2", &replaced).ok());
    secrets::SecretGrant a{
        "API_TOKEN", ph1, {"api.example.com", "*.example.org:443"}, "Authorization", "Bearer {}"};
    secrets::SecretGrant b{"OTHER", ph2, {"other.example.com"}, "X-Key", "{}"};
    ASSERT_TRUE((*store)->PutGrants("task-1", "zone-a", {a, b}).ok());
    ASSERT_TRUE((*store)->PutGrants("task-2", "zone-a", {a}).ok());
    ASSERT_TRUE((*store)->PutGrants("task-3", "zone-b", {b}).ok());
    // Replacing: the owner's grants are exactly the new ones.
    ASSERT_TRUE((*store)->PutGrants("task-3", "zone-b", {b}).ok());
  }
  std::string file = ReadAll(db);
  EXPECT_EQ(file.find(ph1), std::string::npos);
  EXPECT_EQ(file.find(ph2), std::string::npos);

  // A new store: task-1 comes back whole; task-2 claimed under another zone gets nothing.
  auto store = secrets::SecretStore::Open(db, key);
  ASSERT_TRUE(store.ok()) << store.status();
  auto back = (*store)->ClaimGrants("task-1", "zone-a");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].name, "API_TOKEN");
  EXPECT_EQ((*back)[0].placeholder, ph1);
  EXPECT_EQ((*back)[0].hosts, (std::vector<std::string>{"api.example.com", "*.example.org:443"}));
  EXPECT_EQ((*back)[0].header, "Authorization");
  EXPECT_EQ((*back)[0].format, "Bearer {}");
  EXPECT_EQ((*back)[1].placeholder, ph2);
  EXPECT_EQ((*back)[1].header, "X-Key");
  auto elsewhere = (*store)->ClaimGrants("task-2", "zone-b");
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_TRUE(elsewhere->empty());

  // Remove takes the secret's grants with it.
  ASSERT_TRUE((*store)->Remove("API_TOKEN").ok());
  back = (*store)->ClaimGrants("task-1", "zone-a");
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].name, "OTHER");

  // After recovery: task-3 was not claimed (its task ended while no rauhad ran): it goes;
  // task-1 and task-2 were claimed and stay until forgotten.
  auto gone = (*store)->ForgetUnclaimedGrants();
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 1u);
  auto owners = (*store)->GrantOwners();
  ASSERT_TRUE(owners.ok());
  EXPECT_EQ(*owners, std::vector<std::string>{"task-1"}) << "task-2's only grant was API_TOKEN";
  ASSERT_TRUE((*store)->ForgetGrants("task-1").ok());
  owners = (*store)->GrantOwners();
  ASSERT_TRUE(owners.ok());
  EXPECT_TRUE(owners->empty());
}

TEST(SecretNameTest, EnvironmentVariableNamesOnly) {
  for (const char* ok : {"A", "GITHUB_TOKEN", "_x1", "api_key2"}) {
    EXPECT_TRUE(ValidateSecretName(ok).ok()) << ok;
  }
  for (const char* bad :
       {"", "1A", "A-B", "A B", "PATH", "HTTPS_PROXY", "RAUHA_TOKEN", "SSL_CERT_FILE", "Ä"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ValidateSecretName(bad))) << bad;
  }
  EXPECT_FALSE(ValidateSecretName(std::string(65, 'A')).ok());
}

constexpr char kNet[] =
    "[network]\nmode = \"isolated\"\nallowed_hosts = [\"api.example.com\", \"*.gh.example:443\"]\n";

TEST(SecretPolicyTest, ParsesDefaultsAndRoundTripsThroughCanonicalToml) {
  auto p = policy::ParsePolicy(std::string(kNet) +
                               "[secrets.GH]\nhosts = [\"*.gh.example:443\", \"API.example.com\"]\n"
                               "[secrets.API]\nhosts = [\"api.example.com:443\"]\n"
                               "header = \"X-Api-Key\"\nformat = \"{}\"\n");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->secrets.size(), 2u);
  EXPECT_EQ(p->secrets[0].name, "API");
  EXPECT_EQ(p->secrets[0].header, "X-Api-Key");
  EXPECT_EQ(p->secrets[0].format, "{}");
  EXPECT_EQ(p->secrets[1].name, "GH");
  EXPECT_EQ(p->secrets[1].header, "Authorization");
  EXPECT_EQ(p->secrets[1].format, "Bearer {}");
  EXPECT_EQ(p->secrets[1].hosts[1].text, "api.example.com");
  std::string canonical = policy::ToCanonicalToml(*p);
  auto again = policy::ParsePolicy(canonical);
  ASSERT_TRUE(again.ok()) << again.status() << canonical;
  EXPECT_EQ(policy::ToCanonicalToml(*again), canonical);
  EXPECT_NE(canonical.find("[secrets.GH]"), std::string::npos) << canonical;
}

TEST(SecretPolicyTest, RefusesWhatCannotWorkWithALocatedMessage) {
  struct Case {
    std::string body;
    std::string says;
  };
  for (const auto& c : std::vector<Case>{
           {"[secrets.GH]\nhosts = [\"other.example.com\"]\n", "add it to [network] allowed_hosts"},
           {"[secrets.GH]\nhosts = [\"api.example.com:8080\"]\n", "allowed_hosts"},
           {"[secrets.GH]\nhosts = [\"*.example.com\"]\n", "allowed_hosts"},
           {"[secrets.GH]\nhosts = []\n", "is empty"},
           {"[secrets.GH]\nheader = \"X\"\n", "has no hosts"},
           {"[secrets.GH]\nhosts = [\"api.example.com\"]\nhost = \"x\"\n",
            "unknown key secrets.GH.host"},
           {"[secrets.GH]\nhosts = [\"api.example.com\"]\nformat = \"{} {}\"\n", "exactly once"},
           {"[secrets.GH]\nhosts = [\"api.example.com\"]\nformat = \"Bearer\\n{}\"\n",
            "not allowed"},
           {"[secrets.GH]\nhosts = [\"api.example.com\"]\nheader = \"Bad Header\"\n",
            "header name"},
           {"[secrets.GH]\nhosts = [\"api.example.com\"]\nheader = \"content-length\"\n", "frames"},
           {"[secrets.9GH]\nhosts = [\"api.example.com\"]\n", "secret name"},
           {"[secrets]\nGH = 1\n", "must be a table"},
       }) {
    auto p = policy::ParsePolicy(std::string(kNet) + c.body, "p.toml");
    ASSERT_FALSE(p.ok()) << c.body;
    EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
    EXPECT_NE(p.status().message().find(c.says), std::string::npos) << p.status() << "\n" << c.body;
    EXPECT_EQ(p.status().message().rfind("p.toml:", 0), 0u) << p.status();
  }
  // Without allowed_hosts there is no proxy to inject anything.
  auto none = policy::ParsePolicy("[secrets.GH]\nhosts = [\"api.example.com\"]\n");
  EXPECT_FALSE(none.ok());
}

std::shared_ptr<egress::SecretBinding> Binding(const std::string& name, const std::string& ph,
                                               const std::string& value, const std::string& host,
                                               const std::string& header = "Authorization",
                                               const std::string& format = "Bearer {}") {
  auto b = std::make_shared<egress::SecretBinding>();
  b->name = name;
  b->placeholder = ph;
  b->value = value;
  b->hosts = {*policy::ParseHostRule(host)};
  b->header = header;
  b->format = format;
  return b;
}

egress::SecretBindings TwoSecrets() {
  return {Binding("API", "rauha-placeholder-aaaa", "VALUE-A", "api.example.com"),
          Binding("KEY", "rauha-placeholder-bbbb", "VALUE-B", "api.example.com", "X-Key", "{}")};
}

TEST(RequestRewriterTest, ReplacesInTheNamedHeaderForTheNamedHostOnly) {
  egress::RequestRewriter r("api.example.com", 443, TwoSecrets());
  std::string out;
  std::vector<egress::PlaceholderUse> uses;
  ASSERT_TRUE(r.Feed("GET /x HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer "
                     "rauha-placeholder-aaaa\r\nx-key:  rauha-placeholder-bbbb \r\n"
                     "X-Other: rauha-placeholder-aaaa\r\n\r\n",
                     out, uses)
                  .ok());
  EXPECT_EQ(out,
            "GET /x HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer VALUE-A\r\n"
            "x-key: VALUE-B\r\nX-Other: rauha-placeholder-aaaa\r\n\r\n");
  ASSERT_EQ(uses.size(), 3u);
  EXPECT_TRUE(uses[0].replaced);
  EXPECT_TRUE(uses[1].replaced);
  EXPECT_FALSE(uses[2].replaced);
  EXPECT_EQ(uses[2].where, "X-Other");

  egress::RequestRewriter other("evil.example.com", 443, TwoSecrets());
  out.clear();
  uses.clear();
  std::string req =
      "GET /?k=rauha-placeholder-bbbb HTTP/1.1\r\nAuthorization: Bearer "
      "rauha-placeholder-aaaa\r\n\r\n";
  ASSERT_TRUE(other.Feed(req, out, uses).ok());
  EXPECT_EQ(out, req);
  ASSERT_EQ(uses.size(), 2u);
  EXPECT_EQ(uses[0].where, "the request line");
  EXPECT_FALSE(uses[0].replaced);
  EXPECT_FALSE(uses[1].replaced);
  // Port 8443 is not what "api.example.com" (80 and 443) names.
  egress::RequestRewriter port("api.example.com", 8443, TwoSecrets());
  out.clear();
  uses.clear();
  ASSERT_TRUE(
      port.Feed("GET / HTTP/1.1\r\nAuthorization: Bearer rauha-placeholder-aaaa\r\n\r\n", out, uses)
          .ok());
  EXPECT_EQ(out.find("VALUE-A"), std::string::npos);
}

TEST(RequestRewriterTest, FramesBodiesSoEveryHeadOfAKeptAliveConnectionIsRead) {
  const std::string stream =
      "POST /a HTTP/1.1\r\nContent-Length: 41\r\nAuthorization: rauha-placeholder-aaaa\r\n\r\n"
      "Authorization: rauha-placeholder-aaaa\r\n\r\n"  // body: 41 bytes, passed as is
      "POST /b HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n"
      "\r\nGET /c HTTP/1.0\r\nAuthorization: Bearer rauha-placeholder-aaaa\r\n\r\n";
  ASSERT_EQ(std::string("Authorization: rauha-placeholder-aaaa\r\n\r\n").size(), 41u);
  const std::string want =
      "POST /a HTTP/1.1\r\nContent-Length: 41\r\nAuthorization: Bearer VALUE-A\r\n\r\n"
      "Authorization: rauha-placeholder-aaaa\r\n\r\n"
      "POST /b HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n"
      "\r\nGET /c HTTP/1.0\r\nAuthorization: Bearer VALUE-A\r\n\r\n";
  // All at once, and byte by byte: the same.
  for (size_t step : {stream.size(), size_t{1}, size_t{7}}) {
    egress::RequestRewriter r("api.example.com", 80, TwoSecrets());
    std::string out;
    std::vector<egress::PlaceholderUse> uses;
    for (size_t i = 0; i < stream.size(); i += step) {
      ASSERT_TRUE(r.Feed(std::string_view(stream).substr(i, step), out, uses).ok()) << step;
    }
    EXPECT_EQ(out, want) << step;
    EXPECT_EQ(r.requests(), 3u);
    EXPECT_EQ(uses.size(), 2u) << "bodies are not read";
  }
}

TEST(RequestRewriterTest, RefusesAmbiguousFramingAndMalformedHeads) {
  for (const std::string& bad : {
           std::string(
               "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
           std::string("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
           std::string("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
           std::string("GET / HTTP/2\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\n folded: x\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"),
           std::string("CONNECT a:443 HTTP/1.1\r\n\r\n"),
           std::string("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
       }) {
    egress::RequestRewriter r("api.example.com", 80, TwoSecrets());
    std::string out;
    std::vector<egress::PlaceholderUse> uses;
    EXPECT_TRUE(absl::IsInvalidArgument(r.Feed(bad, out, uses))) << bad;
    EXPECT_FALSE(r.Feed("GET / HTTP/1.1\r\n\r\n", out, uses).ok()) << "stays refused";
  }
  egress::RequestRewriter big("api.example.com", 80, TwoSecrets());
  std::string out;
  std::vector<egress::PlaceholderUse> uses;
  EXPECT_FALSE(big.Feed("GET / HTTP/1.1\r\nX: " + std::string(egress::kMaxRewrittenHeadBytes, 'a'),
                        out, uses)
                   .ok());
}

// The proxy's two TLS sessions through memory BIOs, against each other: a client trusting the
// zone's CA (from its bundle file) completes a handshake with a leaf for its name, and bytes
// pass both ways; a client asking for another name fails verification, and says so.
TEST(ZoneCaTlsTest, LeafVerifiesForItsNameThroughMemoryBios) {
  TempDir d;
  auto ca = egress::ZoneCa::Create("agent");
  ASSERT_TRUE(ca.ok()) << ca.status();
  ASSERT_TRUE(egress::WriteTrustBundle(d.path() + "/bundle.pem", "", (*ca)->cert_pem()).ok());
  auto leaf = (*ca)->LeafFor("api.example.com");
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(*(*ca)->LeafFor("api.example.com"), *leaf) << "cached";
  auto server_ctx = egress::NewServerContext();
  auto client_ctx = egress::NewClientContext(d.path() + "/bundle.pem");
  ASSERT_TRUE(server_ctx.ok() && client_ctx.ok());
  for (const char* name : {"api.example.com", "other.example.com"}) {
    auto server = egress::TlsEndpoint::Server(server_ctx->get(), *leaf, (*ca)->leaf_key());
    auto client = egress::TlsEndpoint::Client(client_ctx->get(), name);
    ASSERT_TRUE(server.ok() && client.ok());
    std::string c_in, c_out = "GET / HTTP/1.1\r\n\r\n", s_in, s_out = "HTTP/1.1 200 OK\r\n\r\n";
    absl::Status failed;
    for (int i = 0; i < 10 && failed.ok(); ++i) {
      std::string to_server, to_client;
      failed = (*client)->Pump(c_in, SIZE_MAX, c_out, to_server);
      if (!to_server.empty()) (*server)->Feed(to_server.data(), to_server.size());
      if (failed.ok()) failed = (*server)->Pump(s_in, SIZE_MAX, s_out, to_client);
      if (!to_client.empty()) (*client)->Feed(to_client.data(), to_client.size());
    }
    if (std::string(name) == "api.example.com") {
      EXPECT_TRUE(failed.ok()) << failed;
      EXPECT_EQ(s_in, "GET / HTTP/1.1\r\n\r\n");
      EXPECT_EQ(c_in, "HTTP/1.1 200 OK\r\n\r\n");
    } else {
      EXPECT_FALSE(failed.ok());
      EXPECT_NE(failed.message().find("did not verify"), std::string::npos) << failed;
    }
  }
  EXPECT_TRUE(absl::IsInvalidArgument(egress::NewClientContext(d.path() + "/none.pem").status()));
}

}  // namespace
}  // namespace rauha
