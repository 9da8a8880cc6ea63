// One exec of a containerd task as the shim keeps it (private to task_service*.cc and
// exec_service.cc): a process that joins the task's container (rauhad's join_process).
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "containerd-shim-rauha-v2/bundle.h"
#include "containerd-shim-rauha-v2/process_io.h"
#include "containerd-shim-rauha-v2/task_service.h"
#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "github.com/containerd/containerd/api/types/task/task.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace rauha::cshim {

struct TaskService::Exec {
  std::string exec_id;
  std::string process_id;  // rauhad's (ExecProcessId)
  BundleProcess process;
  std::string stdin_path, stdout_path, stderr_path;  // containerd's FIFOs
  bool terminal = false;
  std::unique_ptr<ProcessIo> io;
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
