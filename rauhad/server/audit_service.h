// rauha.audit.v1.AuditService: the audit log's public key, and key rotation.
#pragma once

#include "rauha/v1/audit.grpc.pb.h"
#include "rauhad/audit/audit_log.h"

namespace rauha {

class AuditServiceImpl final : public rauha::audit::v1::AuditService::Service {
 public:
  explicit AuditServiceImpl(audit::AuditLog* log) : log_(log) {}

  grpc::Status GetKey(grpc::ServerContext*, const rauha::audit::v1::GetKeyRequest*,
                      rauha::audit::v1::AuditKey*) override;
  grpc::Status Rotate(grpc::ServerContext*, const rauha::audit::v1::RotateRequest*,
                      rauha::audit::v1::AuditKey*) override;

 private:
  audit::AuditLog* log_;
};

}  // namespace rauha
