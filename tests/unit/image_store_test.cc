// The content store and image records on a temporary state dir: blobs become visible only
// verified, a partial download resumes with its hash state, and removal collects exactly the
// blobs no other image uses.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "nlohmann/json.hpp"
#include "rauhad/image/content_store.h"
#include "rauhad/image/digest.h"
#include "rauhad/image/image_store.h"

namespace rauha::image {
namespace {

class TempDir {
 public:
  TempDir() {
    char templ[] = "/tmp/rauha-image-unit-XXXXXX";
    path_ = ::mkdtemp(templ);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ContentStore, BlobVisibleOnlyAfterItsDigestMatches) {
  TempDir dir;
  ContentStore cs(dir.path() + "/blobs");
  ASSERT_TRUE(cs.Init().ok());
  const std::string data = "layer bytes";
  const std::string digest = Sha256Digest(data);
  auto w = cs.Ingest(digest, data.size(), false);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Write(data.data(), 5).ok());
  EXPECT_FALSE(cs.Has(digest));  // partial bytes are not a blob
  ASSERT_TRUE((*w)->Write(data.data() + 5, data.size() - 5).ok());
  auto committed = (*w)->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, digest);
  EXPECT_EQ(*cs.ReadSmall(digest, 1024), data);
  EXPECT_EQ(cs.List(), std::vector<std::string>{digest});
}

TEST(ContentStore, TamperedBytesRefusedAndNothingLeft) {
  TempDir dir;
  ContentStore cs(dir.path() + "/blobs");
  ASSERT_TRUE(cs.Init().ok());
  const std::string digest = Sha256Digest("the real content");
  auto w = cs.Ingest(digest, 16, false);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("the fake content", 16).ok());
  auto committed = (*w)->Commit();
  ASSERT_FALSE(committed.ok());
  EXPECT_EQ(committed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(committed.status().message()).find(digest), std::string::npos);
  EXPECT_FALSE(cs.Has(digest));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/blobs/ingest"));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/blobs/sha256"));
  // More bytes than the descriptor states are refused as they arrive.
  auto w2 = cs.Ingest(digest, 4, false);
  ASSERT_TRUE(w2.ok());
  EXPECT_EQ((*w2)->Write("12345", 5).code(), absl::StatusCode::kResourceExhausted);
}

TEST(ContentStore, ResumeContinuesTheHashOfThePartialFile) {
  TempDir dir;
  ContentStore cs(dir.path() + "/blobs");
  ASSERT_TRUE(cs.Init().ok());
  const std::string data(300000, 'x');
  const std::string digest = Sha256Digest(data);
  {
    auto w = cs.Ingest(digest, data.size(), /*resume=*/true);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(data.data(), 123457).ok());
    // Destroyed uncommitted: an interrupted download, kept for resume.
  }
  auto w = cs.Ingest(digest, data.size(), /*resume=*/true);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->offset(), 123457u);
  ASSERT_TRUE((*w)->Write(data.data() + 123457, data.size() - 123457).ok());
  auto committed = (*w)->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*cs.Size(digest), data.size());
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/blobs/ingest"));
  // A writer that does not resume keeps nothing when abandoned.
  {
    auto w2 = cs.Ingest(Sha256Digest("other"), 5, /*resume=*/false);
    ASSERT_TRUE(w2.ok());
    ASSERT_TRUE((*w2)->Write("oth", 3).ok());
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/blobs/ingest"));
}

TEST(ContentStore, UnknownDigestLearntFromBytes) {
  TempDir dir;
  ContentStore cs(dir.path() + "/blobs");
  ASSERT_TRUE(cs.Init().ok());
  {
    auto w = cs.IngestUnknown();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("abandoned", 9).ok());
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/blobs/ingest"));
  auto w = cs.IngestUnknown();
  ASSERT_TRUE((*w)->Write("abc", 3).ok());
  EXPECT_EQ(*(*w)->Commit(), Sha256Digest("abc"));
}

// Puts a blob and returns its digest.
std::string PutBlob(const ContentStore& cs, const std::string& data) {
  auto w = cs.IngestUnknown();
  EXPECT_TRUE((*w)->Write(data.data(), data.size()).ok());
  return *(*w)->Commit();
}

store::ImageRecord MakeImage(const ContentStore& cs, const std::string& name,
                             const std::vector<std::string>& layer_data) {
  store::ImageRecord r;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& d : layer_data) {
    layers.push_back({{"digest", PutBlob(cs, d)},
                      {"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                      {"size", d.size()}});
  }
  r.config_json = nlohmann::json{{"config", {{"Cmd", {name}}}}}.dump();
  r.config_digest = PutBlob(cs, r.config_json);
  r.manifest_digest = PutBlob(cs, "manifest of " + name);
  r.media_type = "application/vnd.oci.image.manifest.v1+json";
  r.layers_json = layers.dump();
  r.created_at = "2026-01-01T00:00:00Z";
  return r;
}

TEST(ImageStore, ResolveRemoveAndCollectSharedLayers) {
  TempDir dir;
  auto db = store::Store::Open(dir.path() + "/rauha.db");
  ASSERT_TRUE(db.ok());
  ImageStore images(dir.path(), db->get());
  ASSERT_TRUE(images.Init().ok());
  auto a = MakeImage(images.content(), "a", {"shared base", "only a"});
  auto b = MakeImage(images.content(), "b", {"shared base", "only b"});
  ASSERT_TRUE(images.Record(a, {"docker.io/library/a:latest", "docker.io/library/a:1"}).ok());
  ASSERT_TRUE(images.Record(b, {"127.0.0.1:5000/b:latest"}).ok());
  std::string shared = Sha256Digest("shared base");
  std::string only_a = Sha256Digest("only a");
  std::filesystem::create_directories(images.LayerDir(only_a) + "/bin");
  std::filesystem::create_directories(images.LayerDir(shared));

  auto resolved = images.Resolve("a");
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->manifest_digest, a.manifest_digest);
  ASSERT_EQ(resolved->layers.size(), 2u);
  EXPECT_EQ(resolved->layers[0].digest, shared);  // bottom first
  EXPECT_EQ(resolved->layers[0].path, images.content().BlobPath(shared));
  EXPECT_EQ(resolved->layers[1].size, 6u);
  EXPECT_TRUE(images.Resolve("a@" + a.manifest_digest).ok());
  EXPECT_TRUE(images.Resolve(b.manifest_digest).ok());
  EXPECT_TRUE(images.Resolve("127.0.0.1:5000/b").ok());
  EXPECT_EQ(images.Resolve("b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(images.Resolve("Bad Ref").status().code(), absl::StatusCode::kInvalidArgument);

  // Untagging keeps the image while another tag names it.
  ASSERT_TRUE(images.Remove("a:1").ok());
  EXPECT_TRUE(images.content().Has(only_a));
  EXPECT_EQ(images.Resolve("a:1").status().code(), absl::StatusCode::kNotFound);
  // The last tag removes the image and what only it used; the shared layer stays.
  ASSERT_TRUE(images.Remove("a").ok());
  EXPECT_FALSE(images.content().Has(only_a));
  EXPECT_FALSE(images.content().Has(a.manifest_digest));
  EXPECT_FALSE(std::filesystem::exists(images.LayerDir(only_a)));
  EXPECT_TRUE(images.content().Has(shared));
  EXPECT_TRUE(std::filesystem::exists(images.LayerDir(shared)));
  EXPECT_EQ(images.Remove("a").code(), absl::StatusCode::kNotFound);

  // A lease (a pull in progress) keeps a blob no image references.
  {
    ImageStore::Lease lease(&images, {shared});
    ASSERT_TRUE(images.Remove(b.manifest_digest).ok());
    EXPECT_TRUE(images.content().Has(shared));
  }
  EXPECT_EQ(images.List()->size(), 0u);
}

}  // namespace
}  // namespace rauha::image
