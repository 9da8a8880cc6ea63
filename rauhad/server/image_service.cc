#include "rauhad/server/image_service.h"

#include <atomic>

#include "rauhad/image/archive_export.h"
#include "rauhad/image/archive_import.h"
#include "rauhad/server/status.h"

namespace rauha {

namespace ipb = rauha::image::v1;

namespace {

void FillInfo(const store::ImageRecord& r, ipb::ImageInfo* info) {
  info->set_digest(r.manifest_digest);
  for (const auto& t : r.tags) info->add_tags(t);
  info->set_size(r.size);
  info->set_created_at(r.created_at);
}

}  // namespace

grpc::Status ImageServiceImpl::Pull(grpc::ServerContext* ctx, const ipb::PullRequest* req,
                                    grpc::ServerWriter<ipb::PullProgress>* writer) {
  if (req->reference().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "reference is empty");
  }
  // Set by whichever download thread reports progress, read by all of them.
  std::atomic<bool> client_gone{false};
  auto progress = [&](const image::PullEvent& e) {
    ipb::PullProgress p;
    p.set_status(e.status);
    p.set_layer(e.layer);
    p.set_current(e.current);
    p.set_total(e.total);
    if (!writer->Write(p)) client_gone = true;
  };
  auto record =
      puller_->Pull(req->reference(), progress, [&] { return client_gone || ctx->IsCancelled(); });
  if (!record.ok()) return ToGrpc(record.status());
  ipb::PullProgress done;
  done.set_status("pulled " + record->manifest_digest);
  done.set_current(record->size);
  done.set_total(record->size);
  done.set_done(true);
  writer->Write(done);
  return grpc::Status::OK;
}

grpc::Status ImageServiceImpl::List(grpc::ServerContext*, const ipb::ListRequest*,
                                    ipb::ListResponse* resp) {
  auto images = images_->List();
  if (!images.ok()) return ToGrpc(images.status());
  for (const auto& r : *images) FillInfo(r, resp->add_images());
  return grpc::Status::OK;
}

grpc::Status ImageServiceImpl::Remove(grpc::ServerContext*, const ipb::RemoveRequest* req,
                                      ipb::RemoveResponse*) {
  if (req->reference().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "reference is empty");
  }
  return ToGrpc(images_->Remove(req->reference()));
}

grpc::Status ImageServiceImpl::Inspect(grpc::ServerContext*, const ipb::InspectRequest* req,
                                       ipb::InspectResponse* resp) {
  if (req->reference().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "reference is empty");
  }
  auto r = images_->Find(req->reference());
  if (!r.ok()) return ToGrpc(r.status());
  auto layers = image::LayersOf(*r, images_->content());
  if (!layers.ok()) return ToGrpc(layers.status());
  resp->set_digest(r->manifest_digest);
  for (const auto& t : r->tags) resp->add_tags(t);
  resp->set_size(r->size);
  resp->set_config_json(r->config_json);
  for (const auto& l : *layers) resp->add_layers(l.digest);
  return grpc::Status::OK;
}

grpc::Status ImageServiceImpl::Import(grpc::ServerContext*,
                                      grpc::ServerReader<ipb::ImportChunk>* reader,
                                      ipb::ImportResponse* resp) {
  ipb::ImportChunk first;
  bool have_first = reader->Read(&first);
  std::string tag = have_first ? first.tag() : "";
  bool first_pending = have_first;
  auto source = [&](std::string* chunk) {
    if (first_pending) {
      first_pending = false;
      *chunk = std::move(*first.mutable_data());
      return true;
    }
    ipb::ImportChunk next;
    if (!reader->Read(&next)) return false;
    *chunk = std::move(*next.mutable_data());
    return true;
  };
  auto records = image::ImportArchive(images_, source, tag);
  if (!records.ok()) return ToGrpc(records.status());
  for (const auto& r : *records) FillInfo(r, resp->add_images());
  return grpc::Status::OK;
}

grpc::Status ImageServiceImpl::Export(grpc::ServerContext* ctx, const ipb::ExportRequest* req,
                                      grpc::ServerWriter<ipb::ExportChunk>* writer) {
  if (req->reference().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "reference is empty");
  }
  auto sink = [&](const char* data, size_t size) {
    ipb::ExportChunk chunk;
    chunk.set_data(data, size);
    return !ctx->IsCancelled() && writer->Write(chunk);
  };
  return ToGrpc(image::ExportArchive(*images_, req->reference(), sink));
}

}  // namespace rauha
