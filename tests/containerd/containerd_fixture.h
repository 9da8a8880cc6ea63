// A private containerd for one test (label containerd): its own root, state, sockets and
// config, started with RAUHA_SOCKET pointing at the test's private rauhad so that the shim it
// starts (containerd-shim-rauha-v2, named by absolute path as the runtime) uses that rauhad.
// Stopping it checks that no shim of it is left and removes what containerd 1.6 leaves
// outside its private dirs.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace rauha::testing {

// What a containerd with its CRI plugin enabled needs (Containerd::EnableCri).
struct CriSetup {
  std::string sandbox_image;  // the pause image, imported beforehand (no pulls)
  std::string cni_conf_dir;   // holds the test's conflist
  std::string cni_bin_dir = "/usr/lib/cni";
  std::string shim_dir;     // put first on containerd's PATH: io.containerd.rauha.v2 is found there
  std::string policy_dir;   // RAUHA_POLICY_DIR for the shim (rauha.io/policy presets)
  std::string config_path;  // the rauha handler's runtime options ConfigPath ("": none)
  int netns_fd = -1;        // containerd joins this network namespace (setns) before exec
};

class Containerd {
 public:
  Containerd(std::string dir, std::string rauhad_socket);
  ~Containerd();  // Stop()

  // Before Start: enable the CRI plugin with runtime handlers `rauha` (our shim) and `runc`,
  // restrict_oom_score_adj and netns mounts under the private state dir.
  void EnableCri(CriSetup setup);
  // The CRI socket (the gRPC address).
  std::string cri_address() const { return "unix://" + socket_; }

  // Starts containerd and waits (20 s at most) until `ctr version` answers.
  bool Start(std::string* error);
  void Stop();
  // Stops containerd (SIGTERM to the pid this fixture started; its shims live on) and starts
  // it again with the same config, as a node's containerd restarts.
  bool Restart(std::string* error);

  // Runs `ctr -a <socket> <args>` (args as one shell string); returns its exit status and
  // its stdout and stderr (interleaved) in *output.
  int Ctr(const std::string& args, std::string* output) const;
  // Imports the OCI layout in `layout_dir` (tagged `tag`) as localhost/busybox:<tag>.
  bool ImportLayout(const std::string& layout_dir, std::string* output) const;
  // The same into containerd namespace `ns` as `name` (e.g. k8s.io, where CRI looks).
  bool ImportLayoutAs(const std::string& layout_dir, const std::string& ns, const std::string& name,
                      std::string* output) const;

  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }
  std::string log() const;
  // Shared directories (/run/containerd...) this test created that are still there after Stop.
  std::vector<std::string> LeftoverSharedDirs() const;
  // Pids of live shim processes started by this containerd (their -address is our socket).
  std::vector<pid_t> ShimPids() const;

 private:
  std::string dir_;
  std::string rauhad_socket_;
  std::string socket_;
  pid_t pid_ = -1;
  std::vector<std::string> created_;          // shared directories this test created
  std::vector<std::string> created_cgroups_;  // containerd's namespace cgroups we caused
  bool cri_ = false;
  CriSetup cri_setup_;
};

// Runs `command` with /bin/sh; returns its exit status, stdout+stderr in *output.
int RunShell(const std::string& command, std::string* output);

}  // namespace rauha::testing
