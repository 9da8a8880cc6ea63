// rauha.secret.v1.SecretService: store, list and remove the secrets the egress proxy injects.
// Values come in and never go out; each change is an audit record with a digest prefix.
#pragma once

#include "rauha/v1/secret.grpc.pb.h"
#include "rauhad/audit/recorder.h"
#include "rauhad/secrets/secret_store.h"

namespace rauha {

class SecretServiceImpl final : public rauha::secret::v1::SecretService::Service {
 public:
  SecretServiceImpl(secrets::SecretStore* store, audit::Recorder* recorder)
      : store_(store), recorder_(recorder) {}

  grpc::Status SetSecret(grpc::ServerContext*, const rauha::secret::v1::SetSecretRequest*,
                         rauha::secret::v1::SetSecretResponse*) override;
  grpc::Status ListSecrets(grpc::ServerContext*, const rauha::secret::v1::ListSecretsRequest*,
                           rauha::secret::v1::ListSecretsResponse*) override;
  grpc::Status DeleteSecret(grpc::ServerContext*, const rauha::secret::v1::DeleteSecretRequest*,
                            rauha::secret::v1::DeleteSecretResponse*) override;

 private:
  secrets::SecretStore* store_;
  audit::Recorder* recorder_;
};

}  // namespace rauha
