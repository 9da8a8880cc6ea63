// Zone CAs kept across rauhad restarts. A zone's tasks trust its egress CA (zone_ca.h) through
// the bundle rauhad writes for them; a CA made afresh by every rauhad start would leave a task
// that outlives a restart trusting a CA the proxy no longer signs with. So each zone's CA is
// stored: its certificate (PEM, <dir>/<zone id>.pem) and its private key sealed with
// SecretCipher (AES-256-GCM, the zone id as additional data) in <dir>/<zone id>.key.sealed,
// both 0600, under the same key file as stored secrets (outside this directory, 0600): the
// files alone do not give the key. Only the CA is kept; leaves are made again on first use.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauhad/egress/zone_ca.h"

namespace rauha::egress {

class ZoneCaStore {
 public:
  // `dir` is made (0700) on the first store; `key_path` is the sealing key (made, 0600, when
  // missing, as by the first `rauha secret set`).
  ZoneCaStore(std::string dir, std::string key_path)
      : dir_(std::move(dir)), key_path_(std::move(key_path)) {}

  // The zone's stored CA; a new one (stored before it is returned) when there is none. A
  // stored CA that does not open (another key, changed files) is replaced by a new one, and
  // `replaced_why` says why (tasks that trusted the old one do not trust the new one).
  absl::StatusOr<std::unique_ptr<ZoneCa>> LoadOrCreate(const std::string& zone_id,
                                                       const std::string& zone_name,
                                                       std::string* replaced_why = nullptr);
  // Forgets the zone's CA (its files); no error when there is none.
  void Remove(const std::string& zone_id);
  // The zones that have a stored CA (or a part of one).
  std::vector<std::string> ListZoneIds() const;

  std::string CertPath(const std::string& zone_id) const;
  std::string SealedKeyPath(const std::string& zone_id) const;

 private:
  absl::StatusOr<std::unique_ptr<ZoneCa>> Load(const std::string& zone_id);
  absl::Status Store(const std::string& zone_id, const ZoneCa& ca);

  std::string dir_, key_path_;
};

}  // namespace rauha::egress
