#include "rauhad/process_spec.h"

#include <sys/resource.h>

#include <algorithm>
#include <string_view>

#include "rauha-common/errors.h"
#include "rauha-common/rlimit_names.h"
#include "rauha-common/strcat.h"
#include "rauhad/process_mounts.h"
#include "rauhad/task_runner.h"

namespace rauha {

absl::StatusOr<shim::TaskSpec> ProcessTaskSpec(const ZoneView& zone,
                                               const rauha::process::v1::StartProcessRequest& req,
                                               const HostPathRules& rules) {
  shim::TaskSpec spec = ZoneTaskSpec(zone, req.process_id());
  RAUHA_ASSIGN_OR_RETURN(std::vector<shim::Mount> mounts, ProcessMounts(zone, req, rules));
  for (auto& m : mounts) spec.mounts.push_back(std::move(m));
  // The OCI spec's environment is the whole environment; its root is writable as a whole.
  spec.env.assign(req.env().begin(), req.env().end());
  spec.writable_paths.clear();
  spec.argv.assign(req.args().begin(), req.args().end());
  spec.workdir = req.cwd().empty() ? "/" : req.cwd();
  spec.timeout_ms = 0;
  if (req.has_capabilities()) {
    // Never more than the zone allows any task.
    std::vector<std::string> kept;
    for (const auto& cap : req.capabilities().kept()) {
      if (std::find(spec.capabilities.begin(), spec.capabilities.end(), cap) !=
          spec.capabilities.end()) {
        kept.push_back(cap);
      }
    }
    spec.capabilities = std::move(kept);
  }
  for (const auto& r : req.rlimits()) {
    std::optional<int> resource = RlimitResource(r.type());
    if (!resource) {
      return absl::InvalidArgumentError(
          StrCat("rlimits: unknown type \"", r.type(), "\" (expected RLIMIT_NOFILE, ...)"));
    }
    // Raising a hard limit needs CAP_SYS_RESOURCE, which rauhad may lack: never ask for more
    // than rauhad has.
    rlimit own{};
    ::getrlimit(*resource, &own);
    uint64_t hard = std::min<uint64_t>(r.hard(), own.rlim_max);
    uint64_t soft = std::min<uint64_t>(r.soft(), hard);
    auto same = std::find_if(spec.rlimits.begin(), spec.rlimits.end(),
                             [&](const shim::Rlimit& l) { return l.resource == r.type(); });
    if (same != spec.rlimits.end()) {
      *same = {r.type(), soft, hard};
    } else {
      spec.rlimits.push_back({r.type(), soft, hard});
    }
  }
  spec.rootfs = req.rootfs();
  spec.join_task = req.join_process();
  spec.stdin_path = req.stdin_path();
  spec.stdout_path = req.stdout_path();
  spec.stderr_path = req.stderr_path();
  spec.stdin_is_terminal = req.terminal();
  if (req.has_uid()) {
    spec.uid = req.uid();
    spec.gid = req.has_gid() ? req.gid() : req.uid();
  }
  return spec;
}

}  // namespace rauha
