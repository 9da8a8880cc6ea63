#include "rauhad/server/secret_service.h"

#include "rauhad/server/status.h"

namespace rauha {
namespace {

namespace pb = rauha::secret::v1;

void Fill(const secrets::SecretInfo& info, pb::SecretInfo* out) {
  out->set_name(info.name);
  out->set_created_at(info.created_at);
  out->set_sha256(info.sha256);
}

}  // namespace

grpc::Status SecretServiceImpl::SetSecret(grpc::ServerContext*, const pb::SetSecretRequest* req,
                                          pb::SetSecretResponse* resp) {
  bool replaced = false;
  auto info = store_->Set(req->name(), req->value(), &replaced);
  if (!info.ok()) return ToGrpc(info.status());
  if (recorder_) {
    recorder_->SecretSet(info->name, info->sha256, replaced);
    recorder_->Flush();
  }
  Fill(*info, resp->mutable_secret());
  resp->set_replaced(replaced);
  return grpc::Status::OK;
}

grpc::Status SecretServiceImpl::ListSecrets(grpc::ServerContext*, const pb::ListSecretsRequest*,
                                            pb::ListSecretsResponse* resp) {
  auto list = store_->List();
  if (!list.ok()) return ToGrpc(list.status());
  for (const auto& info : *list) Fill(info, resp->add_secrets());
  return grpc::Status::OK;
}

grpc::Status SecretServiceImpl::DeleteSecret(grpc::ServerContext*,
                                             const pb::DeleteSecretRequest* req,
                                             pb::DeleteSecretResponse* resp) {
  auto info = store_->Remove(req->name());
  if (!info.ok()) return ToGrpc(info.status());
  // Running tasks that hold its placeholder: not replaced from now on (the store dropped their
  // grants of it, so a restarted rauhad does not bring it back either).
  if (proxy_) proxy_->RevokeSecret(info->name);
  if (recorder_) {
    recorder_->SecretRemoved(info->name, info->sha256);
    recorder_->Flush();
  }
  Fill(*info, resp->mutable_secret());
  return grpc::Status::OK;
}

}  // namespace rauha
