// rauha.secret.v1.SecretService: store, list and remove the secrets the egress proxy injects.
// Values come in and never go out; each change is an audit record with a digest prefix.
#pragma once

#include "rauha/v1/secret.grpc.pb.h"
#include "rauhad/audit/recorder.h"
#include "rauhad/egress/proxy.h"
#include "rauhad/secrets/secret_store.h"

namespace rauha {

class SecretServiceImpl final : public rauha::secret::v1::SecretService::Service {
 public:
  // A removed secret's grants end in `proxy` too (null: no proxy).
  SecretServiceImpl(secrets::SecretStore* store, audit::Recorder* recorder,
                    egress::EgressProxy* proxy = nullptr)
      : store_(store), recorder_(recorder), proxy_(proxy) {}

  grpc::Status SetSecret(grpc::ServerContext*, const rauha::secret::v1::SetSecretRequest*,
                         rauha::secret::v1::SetSecretResponse*) override;
  grpc::Status ListSecrets(grpc::ServerContext*, const rauha::secret::v1::ListSecretsRequest*,
                           rauha::secret::v1::ListSecretsResponse*) override;
  grpc::Status DeleteSecret(grpc::ServerContext*, const rauha::secret::v1::DeleteSecretRequest*,
                            rauha::secret::v1::DeleteSecretResponse*) override;

 private:
  secrets::SecretStore* store_;
  audit::Recorder* recorder_;
  egress::EgressProxy* proxy_;
};

}  // namespace rauha
