#include "rauhad/server/zone_service.h"

#include "rauha-common/names.h"
#include "rauha-common/strcat.h"
#include "rauha-common/userns.h"
#include "rauhad/isolation_checks.h"
#include "rauhad/server/admit.h"
#include "rauhad/server/event_watch.h"
#include "rauhad/server/status.h"

namespace rauha {

namespace zpb = rauha::zone::v1;

void FillControl(const ControlLayer& c, zpb::ControlStatus* out);

namespace {

// Every RPC that takes a zone name checks it the same way, before any lookup.
absl::Status CheckName(const std::string& name) { return ValidateZoneName(name); }

}  // namespace

void FillZoneInfo(const ZoneView& v, zpb::ZoneInfo* info) {
  info->set_id(v.id);
  info->set_name(v.name);
  info->set_zone_type(v.zone_type == policy::ZoneType::kPrivileged ? "Privileged" : "NonGlobal");
  info->set_state(std::string(ToString(v.state)));
  info->set_container_count(0);
  info->set_created_at(v.created_at);
  info->set_task_count(v.running_tasks);
  info->set_state_reason(v.state_reason);
  info->set_shim_pid(static_cast<uint32_t>(v.shim_pid));
  info->set_network_mode(std::string(policy::ToString(v.policy.network.mode)));
  info->set_address(v.address);
  info->set_network_rules(v.network_rules);
  for (const auto& l : v.layers) {
    auto* layer = info->add_layers();
    layer->set_name(l.name);
    layer->set_active(l.active);
    layer->set_detail(l.detail);
  }
  for (const auto& c : v.controls) FillControl(c, info->add_controls());
  for (const auto& c : v.counters) {
    auto* counter = info->add_enforcement_counters();
    counter->set_hook(c.hook);
    counter->set_layer(c.layer);
    counter->set_denied(c.denied);
  }
  info->set_enforcement_events_lost(v.events_lost);
  if (v.userns_first != 0) {
    info->set_userns_host_first(v.userns_first);
    info->set_userns_id_count(kZoneIdCount);
  }
  info->set_userns(v.userns);
  info->set_network_namespace(v.netns_path);
  info->set_hostname(v.hostname);
}

void FillControl(const ControlLayer& c, zpb::ControlStatus* out) {
  out->set_control(c.control);
  out->set_layer(c.layer);
  for (const auto& a : c.also) out->add_also(a);
  out->set_detail(c.detail);
}

grpc::Status ZoneServiceImpl::GetHostEnforcement(grpc::ServerContext*,
                                                 const zpb::GetHostEnforcementRequest*,
                                                 zpb::HostEnforcement* resp) {
  const HostLayers host = zones_->host_layers();
  auto add = [resp](std::string name, bool active, std::string detail) {
    auto* l = resp->add_layers();
    l->set_name(std::move(name));
    l->set_active(active);
    l->set_detail(std::move(detail));
  };
  add("lsm", host.lsm,
      host.lsm ? "eBPF LSM programs loaded" : StrCat("not loaded: ", host.lsm_detail));
  add("cgroup-bpf", host.cgroup_bpf,
      host.cgroup_bpf ? "connect4/6, sendmsg4/6, bind4/6, sock_create, dev, sysctl per zone"
                      : "the BPF object did not load");
  add("landlock", host.landlock_abi > 0,
      host.landlock_abi > 0
          ? StrCat("ABI ", host.landlock_abi, "; denials ",
                   host.landlock_events ? "reported (kprobe on landlock_log_denial)"
                                        : StrCat("not reported: ", host.landlock_events_detail))
          : "not available on this kernel");
  add("seccomp", host.seccomp, "the shim's deny list and [syscalls].deny, per task");
  add("nftables", host.nftables,
      host.nftables ? "bridged zones: one inet table, per-zone chains, default drop"
                    : "bridged networking not configured");
  add("namespace", true, "mount, pid per task; net, ipc, uts per zone");
  add("userns", host.userns, host.userns_detail);
  add("capabilities", true, "every capability outside [capabilities].allowed dropped");
  for (const auto& c : HostControls(host)) FillControl(c, resp->add_controls());
  return grpc::Status::OK;
}

grpc::Status ZoneServiceImpl::GetVersion(grpc::ServerContext*, const zpb::GetVersionRequest*,
                                         zpb::VersionInfo* resp) {
  resp->set_version(RAUHA_VERSION);
  return grpc::Status::OK;
}

grpc::Status ZoneServiceImpl::CreateZone(grpc::ServerContext* ctx,
                                         const zpb::CreateZoneRequest* req,
                                         zpb::CreateZoneResponse* resp) {
  return ToGrpc(CreateZone(ControlOf(ctx), *req, resp));
}

absl::Status ZoneServiceImpl::CreateZone(const CallControl& call, const zpb::CreateZoneRequest& req,
                                         zpb::CreateZoneResponse* resp) {
  auto slot = Admit(zone_ops_, call);
  if (!slot.ok()) return slot.status();
  std::vector<std::string> warnings;
  auto view = zones_->Create(req.name(), req.zone_type(), req.policy_toml(), false, &warnings,
                             req.network_namespace(), req.hostname());
  if (!view.ok()) return view.status();
  resp->set_zone_id(view->id);
  resp->set_name(view->name);
  resp->set_state(std::string(ToString(view->state)));
  for (auto& w : warnings) resp->add_policy_warnings(std::move(w));
  return absl::OkStatus();
}

grpc::Status ZoneServiceImpl::DeleteZone(grpc::ServerContext* ctx,
                                         const zpb::DeleteZoneRequest* req,
                                         zpb::DeleteZoneResponse*) {
  return ToGrpc(DeleteZone(ControlOf(ctx), *req));
}

absl::Status ZoneServiceImpl::DeleteZone(const CallControl& call,
                                         const zpb::DeleteZoneRequest& req) {
  if (auto st = CheckName(req.name()); !st.ok()) return st;
  auto slot = Admit(zone_ops_, call);
  if (!slot.ok()) return slot.status();
  std::string zone_id;
  uint32_t containers = 0;
  if (auto view = zones_->Get(req.name()); view.ok()) {
    zone_id = view->id;
    containers = ContainerCount(zone_id);
  }
  if (containers > 0 && !req.force()) {
    return absl::FailedPreconditionError(
        StrCat("zone \"", req.name(), "\" holds ", containers,
               " container(s): remove them (rauha rm) or delete the zone with "
               "force, which removes them too"));
  }
  absl::Status deleted = zones_->Delete(req.name(), req.force());
  if (deleted.ok() && containers > 0) {
    // Their processes died with the zone's shim; their records, upper layers and logs go now.
    for (const auto& id : containers_->IdsInZone(zone_id)) (void)containers_->Delete(id, true);
  }
  return deleted;
}

grpc::Status ZoneServiceImpl::GetZone(grpc::ServerContext*, const zpb::GetZoneRequest* req,
                                      zpb::GetZoneResponse* resp) {
  if (auto st = CheckName(req->name()); !st.ok()) return ToGrpc(st);
  auto view = zones_->Get(req->name());
  if (!view.ok()) return ToGrpc(view.status());
  FillZoneInfo(*view, resp->mutable_zone());
  resp->mutable_zone()->set_container_count(ContainerCount(view->id));
  return grpc::Status::OK;
}

grpc::Status ZoneServiceImpl::ListZones(grpc::ServerContext*, const zpb::ListZonesRequest*,
                                        zpb::ListZonesResponse* resp) {
  for (const auto& v : zones_->List()) {
    auto* info = resp->add_zones();
    FillZoneInfo(v, info);
    info->set_container_count(ContainerCount(v.id));
  }
  return grpc::Status::OK;
}

grpc::Status ZoneServiceImpl::ApplyPolicy(grpc::ServerContext* ctx,
                                          const zpb::ApplyPolicyRequest* req,
                                          zpb::ApplyPolicyResponse* resp) {
  return ToGrpc(ApplyPolicy(ControlOf(ctx), *req, resp));
}

absl::Status ZoneServiceImpl::ApplyPolicy(const CallControl& call,
                                          const zpb::ApplyPolicyRequest& req,
                                          zpb::ApplyPolicyResponse* resp) {
  if (auto st = CheckName(req.zone_name()); !st.ok()) return st;
  auto slot = Admit(zone_ops_, call);
  if (!slot.ok()) return slot.status();
  std::vector<std::string> warnings;
  if (auto st = zones_->ApplyPolicy(req.zone_name(), req.policy_toml(), &warnings); !st.ok()) {
    return st;
  }
  for (auto& w : warnings) resp->add_policy_warnings(std::move(w));
  return absl::OkStatus();
}

grpc::Status ZoneServiceImpl::GetPolicy(grpc::ServerContext*, const zpb::GetPolicyRequest* req,
                                        zpb::GetPolicyResponse* resp) {
  return ToGrpc(GetPolicy(*req, resp));
}

absl::Status ZoneServiceImpl::GetPolicy(const zpb::GetPolicyRequest& req,
                                        zpb::GetPolicyResponse* resp) {
  if (auto st = CheckName(req.zone_name()); !st.ok()) return st;
  auto toml = zones_->GetPolicy(req.zone_name());
  if (!toml.ok()) return toml.status();
  resp->set_policy_toml(*toml);
  return absl::OkStatus();
}

grpc::Status ZoneServiceImpl::ZoneStats(grpc::ServerContext*, const zpb::ZoneStatsRequest* req,
                                        zpb::ZoneStatsResponse* resp) {
  return ToGrpc(ZoneStats(*req, resp));
}

absl::Status ZoneServiceImpl::ZoneStats(const zpb::ZoneStatsRequest& req,
                                        zpb::ZoneStatsResponse* resp) {
  if (auto st = CheckName(req.zone_name()); !st.ok()) return st;
  auto s = zones_->Stats(req.zone_name());
  if (!s.ok()) return s.status();
  resp->set_zone_id(s->zone_id);
  resp->set_container_count(ContainerCount(s->zone_id));
  resp->set_cpu_usage_percent(s->cpu_usage_percent);
  resp->set_memory_usage_bytes(s->cgroup.memory_current);
  // The limit in force, never 0: the host's memory bounds an unbounded zone.
  resp->set_memory_limit_bytes(s->cgroup.memory_limit_in_force);
  resp->set_network_rx_bytes(s->network_rx_bytes);
  resp->set_network_tx_bytes(s->network_tx_bytes);
  resp->set_pids_current(s->cgroup.pids_current);
  resp->set_pids_max(s->cgroup.pids_max);
  resp->set_memory_peak_bytes(s->cgroup.memory_peak);
  resp->set_cpu_usage_ns(s->cgroup.cpu_usage_ns);
  resp->set_oom_kills(s->cgroup.oom_kills);
  zpb::EgressStats* egress = resp->mutable_egress();
  if (s->proxy) {
    const auto& p = *s->proxy;
    egress->set_proxy(true);
    egress->set_connections_open(p.open);
    egress->set_connections_total(p.connections);
    egress->set_connections_refused(p.refused);
    egress->set_bytes_up(p.bytes_out);
    egress->set_bytes_down(p.bytes_in);
    egress->set_bytes_max(p.bytes_max.value_or(0));
    egress->set_budget_closed(p.budget_closed);
    egress->set_secrets_injected(p.secrets_injected);
    egress->set_secret_misuses(p.secret_misuses);
  }
  if (s->drops) {
    egress->set_nftables(true);
    egress->set_dropped_egress(s->drops->egress);
    egress->set_dropped_zone(s->drops->zone);
    egress->set_dropped_ingress(s->drops->ingress);
  }
  return absl::OkStatus();
}

grpc::Status ZoneServiceImpl::VerifyIsolation(grpc::ServerContext* ctx,
                                              const zpb::VerifyIsolationRequest* req,
                                              zpb::VerifyIsolationResponse* resp) {
  if (auto st = CheckName(req->zone_name()); !st.ok()) return ToGrpc(st);
  auto slot = Admit(zone_ops_, ctx);
  if (!slot.ok()) return ToGrpc(slot.status());
  auto checks = zones_->Verify(req->zone_name());
  if (!checks.ok()) return ToGrpc(checks.status());
  // By trying: the reads above say what is configured, the probes whether it holds.
  if (runner_) {
    auto outcome = runner_->Probe(req->zone_name(), [ctx] { return ctx->IsCancelled(); });
    if (outcome.ok()) {
      auto view = zones_->Get(req->zone_name());
      policy::Policy pol = view.ok() ? view->policy : policy::DefaultPolicy();
      for (auto& c : ProbeChecks(*outcome, pol)) checks->push_back(std::move(c));
    } else {
      checks->push_back(
          {"try", false,
           StrCat("could not run the isolation probes: ", outcome.status().message())});
    }
  }
  bool all = !checks->empty();
  for (const auto& c : *checks) {
    auto* out = resp->add_checks();
    out->set_name(c.name);
    out->set_passed(c.passed);
    out->set_detail(c.detail);
    all = all && c.passed;
  }
  resp->set_is_isolated(all);
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<zpb::ZoneEvent>* ZoneServiceImpl::WatchEvents(
    grpc::CallbackServerContext*, const zpb::WatchEventsRequest* req) {
  if (!req->zone_name().empty()) {
    if (auto st = CheckName(req->zone_name()); !st.ok()) return new RefusedWatch(ToGrpc(st));
  }
  return new EventWatch(events_, req->zone_name());
}

grpc::Status ZoneServiceImpl::PauseZone(grpc::ServerContext*, const zpb::PauseZoneRequest* req,
                                        zpb::PauseZoneResponse*) {
  return ToGrpc(PauseZone(*req));
}

absl::Status ZoneServiceImpl::PauseZone(const zpb::PauseZoneRequest& req) {
  if (auto st = CheckName(req.name()); !st.ok()) return st;
  return zones_->Pause(req.name());
}

grpc::Status ZoneServiceImpl::ResumeZone(grpc::ServerContext*, const zpb::ResumeZoneRequest* req,
                                         zpb::ResumeZoneResponse*) {
  return ToGrpc(ResumeZone(*req));
}

absl::Status ZoneServiceImpl::ResumeZone(const zpb::ResumeZoneRequest& req) {
  if (auto st = CheckName(req.name()); !st.ok()) return st;
  return zones_->Resume(req.name());
}

}  // namespace rauha
