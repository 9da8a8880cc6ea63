// rauha.image.v1.ImageService: thin translation between the wire and rauhad/image.
#pragma once

#include "rauha/v1/image.grpc.pb.h"
#include "rauhad/image/image_store.h"
#include "rauhad/image/puller.h"

namespace rauha {

class ImageServiceImpl final : public rauha::image::v1::ImageService::Service {
 public:
  ImageServiceImpl(image::ImageStore* images, image::Puller* puller)
      : images_(images), puller_(puller) {}

  grpc::Status Pull(grpc::ServerContext*, const image::v1::PullRequest*,
                    grpc::ServerWriter<image::v1::PullProgress>*) override;
  grpc::Status List(grpc::ServerContext*, const image::v1::ListRequest*,
                    image::v1::ListResponse*) override;
  grpc::Status Remove(grpc::ServerContext*, const image::v1::RemoveRequest*,
                      image::v1::RemoveResponse*) override;
  grpc::Status Inspect(grpc::ServerContext*, const image::v1::InspectRequest*,
                       image::v1::InspectResponse*) override;
  grpc::Status Import(grpc::ServerContext*, grpc::ServerReader<image::v1::ImportChunk>*,
                      image::v1::ImportResponse*) override;
  grpc::Status Export(grpc::ServerContext*, const image::v1::ExportRequest*,
                      grpc::ServerWriter<image::v1::ExportChunk>*) override;

 private:
  image::ImageStore* images_;
  image::Puller* puller_;
};

}  // namespace rauha
