#include "tests/integration/bpf_probe.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "rauha-common/fd.h"
#include "rauhad/linux/bpf/pin_dir.h"

namespace rauha::testing {

namespace spb = rauha::sandbox::v1;

int64_t RealtimeNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int CgroupLinkCount(uint64_t cgroup_id) {
  int count = 0;
  __u32 id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    UniqueFd fd(bpf_link_get_fd_by_id(id));
    if (!fd) continue;
    bpf_link_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    if (info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroup_id) ++count;
  }
  return count;
}

uint64_t ZoneCgroupId(const rauha::zone::v1::ZoneInfo& zone) {
  for (const auto& l : zone.layers()) {
    if (l.name() != "cgroup") continue;
    const std::string prefix = "cgroup id ";
    if (l.detail().rfind(prefix, 0) != 0) return 0;
    return std::strtoull(l.detail().c_str() + prefix.size(), nullptr, 10);
  }
  return 0;
}

std::set<uint64_t> PinnedZoneIds(const Daemon& daemon) {
  std::set<uint64_t> out;
  for (const std::string& name : bpf::ListPins(daemon.pin_dir() + "/zones"))
    out.insert(std::strtoull(name.c_str(), nullptr, 10));
  return out;
}

size_t PinnedLinkCount(const Daemon& daemon, uint64_t cgroup_id) {
  return bpf::ListPins(daemon.pin_dir() + "/zones/" + std::to_string(cgroup_id)).size();
}

std::set<uint32_t> PinnedProgramIds(const Daemon& daemon) {
  std::set<uint32_t> out;
  for (const std::string& name : bpf::ListPins(daemon.pin_dir() + "/progs")) {
    UniqueFd fd(bpf_obj_get((daemon.pin_dir() + "/progs/" + name).c_str()));
    if (!fd) continue;
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0) out.insert(info.id);
  }
  return out;
}

bool ProgramExists(uint32_t id) {
  UniqueFd fd(bpf_prog_get_fd_by_id(id));
  return static_cast<bool>(fd);
}

ConnectProbe::ConnectProbe(Daemon* daemon, const std::string& zone) {
  repo_ = daemon->dir() + "/probe-" + zone;
  ::mkdir(repo_.c_str(), 0755);
  const std::string script =
      "while [ ! -e /workspace/stop ]; do t0=$(date +%s%N); "
      "if out=$( { exec 3<>/dev/tcp/192.0.2.1/9; } 2>&1 ); then r=OPEN; "
      "else case \"$out\" in *'not permitted'*) r=DENIED;; *) r=\"OTHER:$out\";; esac; fi; "
      "echo \"$t0 $(date +%s%N) $r\" >> /workspace/probe.log; sleep 0.05; done";
  std::string socket = daemon->socket();
  client_ = std::thread([socket, zone, script, repo = repo_] {
    spb::RunSandboxRequest req;
    req.set_name(zone);
    req.set_repo_path(repo);
    for (const char* a : {"/bin/bash", "-c"}) req.add_command(a);
    req.add_command(script);
    spb::SandboxResult result;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(300));
    auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
    // Ends when the task does or when rauhad dies under it (the task goes on in its shim).
    (void)spb::SandboxService::NewStub(channel)->RunSandbox(&ctx, req, &result);
  });
  for (int i = 0; i < 500 && (task_id_.empty() || Lines().empty()); ++i) {
    if (task_id_.empty()) {
      spb::ListTasksRequest lreq;
      lreq.set_zone_name(zone);
      spb::ListTasksResponse tasks;
      grpc::ClientContext ctx;
      if (daemon->Sandbox()->ListTasks(&ctx, lreq, &tasks).ok()) {
        for (const auto& t : tasks.tasks())
          if (t.pid() != 0 && t.state() == "running") task_id_ = t.task_id();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(task_id_.empty()) << "the probe task did not start";
  EXPECT_FALSE(Lines().empty()) << "the probe task logged nothing";
}

ConnectProbe::~ConnectProbe() {
  std::ofstream(repo_ + "/stop") << "";
  if (client_.joinable()) client_.join();
}

std::vector<ConnectProbe::Line> ConnectProbe::Lines() const {
  std::vector<Line> out;
  std::ifstream in(repo_ + "/probe.log");
  std::string text;
  while (std::getline(in, text)) {
    std::istringstream fields(text);
    Line l;
    if (!(fields >> l.start_ns >> l.end_ns)) continue;
    std::getline(fields >> std::ws, l.outcome);
    out.push_back(l);
  }
  return out;
}

std::vector<ConnectProbe::Line> ConnectProbe::Finish(Daemon* daemon) {
  std::ofstream(repo_ + "/stop") << "";
  spb::WaitTaskRequest req;
  req.set_task_id(task_id_);
  spb::SandboxResult result;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status st = daemon->Sandbox()->WaitTask(&ctx, req, &result);
  // The first client may still hold the task (no restart happened): then it collects it.
  if (!st.ok())
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  else
    EXPECT_EQ(result.status(), "succeeded") << result.stderr();
  if (client_.joinable()) client_.join();
  return Lines();
}

}  // namespace rauha::testing
