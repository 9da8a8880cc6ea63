// ZoneCaStore: a zone's CA stored sealed and loaded back the same; a store whose key changed
// gives a new CA and says why; Remove and ListZoneIds. Files in a temporary directory.
#include "rauhad/egress/zone_ca_store.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace rauha::egress {
namespace {

constexpr char kZone[] = "0b7e2c4a-5d1f-4e8b-9a6c-3f2e1d0c9b8a";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class ZoneCaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-zone-ca-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ZoneCaStoreTest, StoredSealedAndLoadedBackTheSame) {
  ZoneCaStore store(dir_ + "/ca", dir_ + "/keys/secrets.key");
  std::string why;
  auto first = store.LoadOrCreate(kZone, "agent", &why);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(why, "");
  auto again = ZoneCaStore(dir_ + "/ca", dir_ + "/keys/secrets.key").LoadOrCreate(kZone, "agent");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->cert_pem(), (*first)->cert_pem());
  // Leaves of the loaded CA verify against the first one's certificate: same key.
  auto leaf = (*again)->LeafFor("api.example.test");
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  BIO* bio =
      BIO_new_mem_buf((*first)->cert_pem().data(), static_cast<int>((*first)->cert_pem().size()));
  X509Ptr first_ca(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  ASSERT_TRUE(first_ca);
  EXPECT_EQ(X509_verify(*leaf, X509_get0_pubkey(first_ca.get())), 1);
  // On disk: 0600 files, the key never in clear.
  struct stat st {};
  ASSERT_EQ(::stat(store.SealedKeyPath(kZone).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(store.CertPath(kZone).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(Slurp(store.SealedKeyPath(kZone)).find("PRIVATE KEY"), std::string::npos);
  auto key_pem = (*first)->KeyPem();
  ASSERT_TRUE(key_pem.ok());
  EXPECT_NE(key_pem->view().find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(Slurp(store.SealedKeyPath(kZone)).find(key_pem->view().substr(40, 40)),
            std::string::npos);
  EXPECT_EQ(store.ListZoneIds(), std::vector<std::string>{kZone});
  store.Remove(kZone);
  EXPECT_NE(::stat(store.SealedKeyPath(kZone).c_str(), &st), 0);
  EXPECT_TRUE(store.ListZoneIds().empty());
}

TEST_F(ZoneCaStoreTest, AnotherKeyGivesANewCaAndSaysWhy) {
  auto first = ZoneCaStore(dir_ + "/ca", dir_ + "/k1").LoadOrCreate(kZone, "agent");
  ASSERT_TRUE(first.ok()) << first.status();
  std::filesystem::copy_file(dir_ + "/k1", dir_ + "/k2");
  {
    // Another key of the right shape: the sealed key does not open with it.
    std::ofstream(dir_ + "/k2", std::ios::binary | std::ios::trunc) << std::string(32, 'k');
  }
  std::string why;
  auto second = ZoneCaStore(dir_ + "/ca", dir_ + "/k2").LoadOrCreate(kZone, "agent", &why);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE((*second)->cert_pem(), (*first)->cert_pem());
  EXPECT_NE(why.find("does not open"), std::string::npos) << why;
  // Ids that are not zone ids never become paths.
  EXPECT_EQ(ZoneCaStore(dir_ + "/ca", dir_ + "/k2").LoadOrCreate("../x", "z").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rauha::egress
