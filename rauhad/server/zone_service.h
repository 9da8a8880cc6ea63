// rauha.zone.v1.ZoneService: thin translation between the wire and ZoneManager.
#pragma once

#include "rauha/v1/zone.grpc.pb.h"
#include "rauhad/call_gate.h"
#include "rauhad/container/container_manager.h"
#include "rauhad/event_bus.h"
#include "rauhad/server/admit.h"
#include "rauhad/task_runner.h"
#include "rauhad/zone_manager.h"

namespace rauha {

// WatchEvents is a callback method (no thread per watcher); the rest are synchronous.
class ZoneServiceImpl final : public rauha::zone::v1::ZoneService::WithCallbackMethod_WatchEvents<
                                  rauha::zone::v1::ZoneService::Service> {
 public:
  // `runner` null: VerifyIsolation only reads the zone's state back (no probe task).
  // `zone_ops`: the gate CreateZone, DeleteZone, ApplyPolicy and VerifyIsolation pass (null:
  // none).
  ZoneServiceImpl(ZoneManager* zones, EventBus* events, TaskRunner* runner = nullptr,
                  CallGate* zone_ops = nullptr)
      : zones_(zones), events_(events), runner_(runner), zone_ops_(zone_ops) {}

  grpc::Status CreateZone(grpc::ServerContext*, const zone::v1::CreateZoneRequest*,
                          zone::v1::CreateZoneResponse*) override;
  grpc::Status DeleteZone(grpc::ServerContext*, const zone::v1::DeleteZoneRequest*,
                          zone::v1::DeleteZoneResponse*) override;
  grpc::Status GetZone(grpc::ServerContext*, const zone::v1::GetZoneRequest*,
                       zone::v1::GetZoneResponse*) override;
  grpc::Status ListZones(grpc::ServerContext*, const zone::v1::ListZonesRequest*,
                         zone::v1::ListZonesResponse*) override;
  grpc::Status ApplyPolicy(grpc::ServerContext*, const zone::v1::ApplyPolicyRequest*,
                           zone::v1::ApplyPolicyResponse*) override;
  grpc::Status GetPolicy(grpc::ServerContext*, const zone::v1::GetPolicyRequest*,
                         zone::v1::GetPolicyResponse*) override;
  grpc::Status ZoneStats(grpc::ServerContext*, const zone::v1::ZoneStatsRequest*,
                         zone::v1::ZoneStatsResponse*) override;
  grpc::Status VerifyIsolation(grpc::ServerContext*, const zone::v1::VerifyIsolationRequest*,
                               zone::v1::VerifyIsolationResponse*) override;
  grpc::ServerWriteReactor<zone::v1::ZoneEvent>* WatchEvents(
      grpc::CallbackServerContext*, const zone::v1::WatchEventsRequest*) override;
  grpc::Status PauseZone(grpc::ServerContext*, const zone::v1::PauseZoneRequest*,
                         zone::v1::PauseZoneResponse*) override;
  grpc::Status ResumeZone(grpc::ServerContext*, const zone::v1::ResumeZoneRequest*,
                          zone::v1::ResumeZoneResponse*) override;
  grpc::Status GetHostEnforcement(grpc::ServerContext*, const zone::v1::GetHostEnforcementRequest*,
                                  zone::v1::HostEnforcement*) override;
  grpc::Status GetVersion(grpc::ServerContext*, const zone::v1::GetVersionRequest*,
                          zone::v1::VersionInfo*) override;

  // What containerd-shim-rauha-v2 calls, transport-neutral: the gRPC methods above and the
  // shim's ttrpc endpoint (shim_endpoint.h) both run these.
  absl::Status CreateZone(const CallControl& call, const zone::v1::CreateZoneRequest& req,
                          zone::v1::CreateZoneResponse* resp);
  absl::Status DeleteZone(const CallControl& call, const zone::v1::DeleteZoneRequest& req);
  absl::Status ApplyPolicy(const CallControl& call, const zone::v1::ApplyPolicyRequest& req,
                           zone::v1::ApplyPolicyResponse* resp);
  absl::Status GetPolicy(const zone::v1::GetPolicyRequest& req, zone::v1::GetPolicyResponse* resp);
  absl::Status ZoneStats(const zone::v1::ZoneStatsRequest& req, zone::v1::ZoneStatsResponse* resp);
  absl::Status PauseZone(const zone::v1::PauseZoneRequest& req);
  absl::Status ResumeZone(const zone::v1::ResumeZoneRequest& req);

  // Zones then count their containers, refuse deletion without force while they hold any, and
  // a forced deletion removes them too (null: no containers).
  void set_containers(container::ContainerManager* containers) { containers_ = containers; }

 private:
  uint32_t ContainerCount(const std::string& zone_id) const {
    return containers_ ? containers_->CountInZone(zone_id) : 0;
  }
  container::ContainerManager* containers_ = nullptr;
  ZoneManager* zones_;
  EventBus* events_;
  TaskRunner* runner_;
  CallGate* zone_ops_;
};

void FillZoneInfo(const ZoneView& view, zone::v1::ZoneInfo* info);

}  // namespace rauha
