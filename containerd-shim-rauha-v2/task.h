// One containerd task as the shim keeps it (private to task_service*.cc).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "containerd-shim-rauha-v2/bundle.h"
#include "containerd-shim-rauha-v2/exec.h"
#include "containerd-shim-rauha-v2/oom_watch.h"
#include "containerd-shim-rauha-v2/process_io.h"
#include "containerd-shim-rauha-v2/spec_mounts.h"
#include "containerd-shim-rauha-v2/task_service.h"
#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "github.com/containerd/containerd/api/types/task/task.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace rauha::cshim {

struct TaskService::Task {
  std::string id;
  std::string bundle;
  std::string zone;
  bool owns_zone = false;  // the pod's sandbox (or a lone container): removes the zone
  BundleProcess process;
  std::vector<SpecMount> mounts;  // the spec's binds it gets (spec_mounts.h)
  std::string stdin_path, stdout_path, stderr_path;
  // Opened at Create, as runc's shim does: containerd's side of a FIFO finishes opening only
  // once a writer appears, and a client that cancels a FIFO still opening loses its output.
  std::unique_ptr<ProcessIo> io;
  bool terminal = false;
  std::map<std::string, std::shared_ptr<Exec>> execs;  // by exec id
  std::unique_ptr<OomWatcher> oom;  // while it runs: /tasks/oom for its zone's memory cgroup
  bool rootfs_mounted = false;
  bool starting = false;  // StartProcess in flight
  bool started = false;   // rauhad knows the process (DeleteProcess at Delete)
  uint32_t pid = 0;
  containerd::v1::types::Status status = containerd::v1::types::CREATED;
  uint32_t exit_status = 0;
  google::protobuf::Timestamp exited_at;
  std::unique_ptr<ttrpc::CallCanceller> call;  // ends the WaitProcess call (shim leaving)
  std::thread runner;
};

}  // namespace rauha::cshim
