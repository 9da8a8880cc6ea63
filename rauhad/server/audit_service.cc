#include "rauhad/server/audit_service.h"

#include "rauhad/server/status.h"

namespace rauha {
namespace {

void Fill(const audit::PublicKey& key, const std::string& dir, rauha::audit::v1::AuditKey* out) {
  out->set_key_id(key.id());
  out->set_public_key_pem(key.pem());
  out->set_audit_dir(dir);
}

}  // namespace

grpc::Status AuditServiceImpl::GetKey(grpc::ServerContext*, const rauha::audit::v1::GetKeyRequest*,
                                      rauha::audit::v1::AuditKey* out) {
  Fill(log_->current_key(), log_->dir(), out);
  return grpc::Status::OK;
}

grpc::Status AuditServiceImpl::Rotate(grpc::ServerContext*, const rauha::audit::v1::RotateRequest*,
                                      rauha::audit::v1::AuditKey* out) {
  auto key = log_->Rotate();
  if (!key.ok()) return ToGrpc(key.status());
  Fill(*key, log_->dir(), out);
  return grpc::Status::OK;
}

}  // namespace rauha
