#include "rauhad/image/puller.h"

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include "nlohmann/json.hpp"
#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauha-common/timeutil.h"
#include "rauhad/image/reference.h"

namespace rauha::image {
namespace {

constexpr int kAttempts = 4;  // per blob, each resuming where the last stopped

bool IsTransient(const absl::Status& st) {
  return absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st) || absl::IsAborted(st);
}

absl::Status StoreBytes(const ContentStore& content, const std::string& digest,
                        const std::string& bytes) {
  if (content.Has(digest)) return absl::OkStatus();
  RAUHA_ASSIGN_OR_RETURN(auto writer, content.Ingest(digest, bytes.size(), /*resume=*/false));
  RAUHA_RETURN_IF_ERROR(writer->Write(bytes.data(), bytes.size()));
  return writer->Commit().status();
}

}  // namespace

absl::StatusOr<std::string> VerifyManifest(const FetchedManifest& m, const std::string& expected,
                                           const std::string& what) {
  std::string got = Sha256Digest(m.body);
  if (!expected.empty() && got != expected) {
    return absl::DataLossError(StrCat("manifest ", what, " does not match its digest: expected ",
                                      expected, ", the registry sent bytes hashing to ", got));
  }
  if (!m.digest_header.empty() && m.digest_header != got) {
    return absl::DataLossError(StrCat("manifest ", what,
                                      " does not match its digest: the registry "
                                      "says ",
                                      m.digest_header, ", its bytes hash to ", got));
  }
  return got;
}

absl::Status Puller::Download(RegistryClient& client, const Descriptor& blob,
                              const PullProgressFn& progress,
                              const std::function<bool()>& cancelled) {
  const ContentStore& content = images_->content();
  absl::Status st;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
    RAUHA_ASSIGN_OR_RETURN(auto writer, content.Ingest(blob.digest, blob.size, /*resume=*/true));
    if (writer->offset() < blob.size || blob.size == 0) {
      auto last = std::chrono::steady_clock::now();
      progress({"downloading", blob.digest, writer->offset(), blob.size});
      st = client.GetBlob(blob.digest, writer.get(), [&](uint64_t bytes) {
        auto now = std::chrono::steady_clock::now();
        if (now - last > std::chrono::milliseconds(100)) {
          last = now;
          progress({"downloading", blob.digest, bytes, blob.size});
        }
        return !cancelled();
      });
      if (!st.ok()) {
        if (!IsTransient(st)) {
          if (!absl::IsCancelled(st)) writer->Discard();
          return st;
        }
        continue;  // the partial bytes stay: the next attempt asks for the rest
      }
    }
    auto committed = writer->Commit();
    if (!committed.ok()) return Annotate(committed.status(), StrCat("blob ", blob.digest));
    progress({"verified", blob.digest, blob.size, blob.size});
    return absl::OkStatus();
  }
  return Annotate(st, StrCat("blob ", blob.digest, " after ", kAttempts, " attempts"));
}

absl::Status Puller::FetchBlob(RegistryClient& client, const Descriptor& blob,
                               const PullProgressFn& progress,
                               const std::function<bool()>& cancelled) {
  while (true) {
    if (images_->content().Has(blob.digest)) {
      progress({"exists", blob.digest, blob.size, blob.size});
      return absl::OkStatus();
    }
    std::promise<absl::Status> promise;
    std::shared_future<absl::Status> shared;
    bool leader = false;
    {
      std::lock_guard lock(mu_);
      auto it = in_flight_.find(blob.digest);
      if (it == in_flight_.end()) {
        shared = promise.get_future().share();
        in_flight_.emplace(blob.digest, shared);
        leader = true;
      } else {
        shared = it->second;
      }
    }
    if (leader) {
      absl::Status st = Download(client, blob, progress, cancelled);
      {
        std::lock_guard lock(mu_);
        in_flight_.erase(blob.digest);
      }
      promise.set_value(st);
      return st;
    }
    progress({"waiting", blob.digest, 0, blob.size});
    while (shared.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      if (cancelled()) return absl::CancelledError("pull cancelled");
    }
    absl::Status st = shared.get();
    // The other pull gave up (cancelled, or its registry failed): try ourselves.
    if (!st.ok() && (absl::IsCancelled(st) || IsTransient(st))) continue;
    if (!st.ok()) return st;
  }
}

absl::StatusOr<store::ImageRecord> Puller::Pull(const std::string& reference,
                                                const PullProgressFn& progress,
                                                const std::function<bool()>& cancelled) {
  RAUHA_ASSIGN_OR_RETURN(Reference ref, ParseReference(reference));
  // A pinned image already held needs no registry.
  if (!ref.digest.empty()) {
    if (auto held = images_->Find(ref.String()); held.ok()) {
      if (!ref.tag.empty()) RAUHA_RETURN_IF_ERROR(images_->Record(*held, {ref.TagRef()}));
      progress({"exists", "", held->size, held->size});
      return *held;
    }
  }
  RAUHA_ASSIGN_OR_RETURN(auto client, RegistryClient::Create(options_, ref));
  RAUHA_ASSIGN_OR_RETURN(FetchedManifest top, client->GetManifest(ref.ManifestRef()));
  RAUHA_ASSIGN_OR_RETURN(std::string top_digest, VerifyManifest(top, ref.digest, ref.String()));
  RAUHA_ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(top.body, top.content_type));

  store::ImageRecord record;
  FetchedManifest chosen = std::move(top);
  record.manifest_digest = top_digest;
  if (manifest.is_index) {
    record.index_digest = top_digest;
    RAUHA_ASSIGN_OR_RETURN(Descriptor entry, SelectPlatform(manifest, HostPlatform()));
    RAUHA_ASSIGN_OR_RETURN(chosen, client->GetManifest(entry.digest));
    RAUHA_ASSIGN_OR_RETURN(record.manifest_digest,
                           VerifyManifest(chosen, entry.digest, ref.Name() + "@" + entry.digest));
    if (chosen.body.size() != entry.size) {
      return absl::DataLossError(StrCat("manifest ", entry.digest, " is ", chosen.body.size(),
                                        " bytes, the index says ", entry.size));
    }
    RAUHA_ASSIGN_OR_RETURN(manifest, ParseManifest(chosen.body, chosen.content_type));
    if (manifest.is_index) {
      return absl::FailedPreconditionError("an index entry names another index; not supported");
    }
  }
  record.media_type = manifest.media_type;
  record.config_digest = manifest.config.digest;
  progress({"resolved", record.manifest_digest, 0, 0});

  std::optional<ImageStore::Lease> lease;
  lease.emplace(images_, std::vector<std::string>{record.manifest_digest, manifest.config.digest});
  for (const auto& layer : manifest.layers) lease->Add(layer.digest);
  std::vector<std::string> written;  // what to collect if this pull fails for good
  auto fail = [&](const absl::Status& st) -> absl::Status {
    // A transient failure keeps what arrived (and partial files) for the next pull; anything
    // else (a digest mismatch) leaves nothing of this pull behind, except what another pull
    // or image holds.
    if (!IsTransient(st) && !absl::IsCancelled(st)) {
      lease.reset();
      (void)images_->Collect(written);
    }
    return st;
  };
  if (!images_->content().Has(record.manifest_digest)) written.push_back(record.manifest_digest);
  if (auto st = StoreBytes(images_->content(), record.manifest_digest, chosen.body); !st.ok()) {
    return fail(st);
  }

  // Config and layers, largest first, on up to max_concurrent_downloads threads.
  std::vector<Descriptor> blobs = manifest.layers;
  blobs.push_back(manifest.config);
  for (const auto& b : blobs) {
    if (!images_->content().Has(b.digest)) written.push_back(b.digest);
  }
  std::sort(blobs.begin(), blobs.end(),
            [](const Descriptor& a, const Descriptor& b) { return a.size > b.size; });
  std::mutex progress_mu;
  auto serial_progress = [&](const PullEvent& e) {
    std::lock_guard lock(progress_mu);
    progress(e);
  };
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  absl::Status first_error;
  std::mutex error_mu;
  auto stop = [&] { return failed.load() || cancelled(); };
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < blobs.size();) {
      if (stop()) break;
      absl::Status st = FetchBlob(*client, blobs[i], serial_progress, stop);
      if (!st.ok()) {
        std::lock_guard lock(error_mu);
        // The first real failure wins over the cancellations it causes in the other threads.
        if (first_error.ok() || (absl::IsCancelled(first_error) && !absl::IsCancelled(st))) {
          first_error = st;
        }
        failed = true;
      }
    }
  };
  size_t threads =
      std::min<size_t>(std::max<uint32_t>(1, options_.max_concurrent_downloads), blobs.size());
  std::vector<std::thread> pool;
  for (size_t i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (!first_error.ok()) return fail(first_error);
  if (cancelled()) return fail(absl::CancelledError("pull cancelled"));

  auto config = images_->content().ReadSmall(manifest.config.digest, kMaxConfigBytes);
  if (!config.ok()) return fail(config.status());
  record.config_json = *config;
  auto config_doc = nlohmann::json::parse(record.config_json, nullptr, false);
  if (!config_doc.is_object()) {
    return fail(absl::InvalidArgumentError(
        StrCat("image config ", manifest.config.digest, " is not a JSON object")));
  }
  nlohmann::json layers = nlohmann::json::array();
  record.size = chosen.body.size() + manifest.config.size;
  for (const auto& l : manifest.layers) {
    layers.push_back({{"digest", l.digest}, {"mediaType", l.media_type}, {"size", l.size}});
    record.size += l.size;
  }
  record.layers_json = layers.dump();
  record.created_at = config_doc.contains("created") && config_doc["created"].is_string()
                          ? config_doc["created"].get<std::string>()
                          : NowRfc3339();
  std::vector<std::string> tags;
  if (!ref.tag.empty()) tags.push_back(ref.TagRef());
  if (auto st = images_->Record(record, tags); !st.ok()) return fail(st);
  record.tags = tags;
  return record;
}

}  // namespace rauha::image
