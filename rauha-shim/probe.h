// Probe mode (TaskSpec.probe): VerifyIsolation checks a zone by trying. The workload's
// process, confined exactly as a real workload at the point where it would exec (root,
// capabilities, no_new_privs, Landlock, seccomp), runs each probe below and writes one JSON
// array of ProbeResult (shim_protocol.h) to stdout, then exits 0.
//
// Each probe attempts one action a confined workload must not be able to do. Each runs in
// its own forked process, so a probe that unexpectedly succeeds (a new namespace, a ptrace
// attachment) cannot change what the next one sees; and each undoes what it did (unmount,
// unlink, close) before it reports. Nothing leaves the machine: the only packet a probe could
// send is a SYN to 192.0.2.1 (TEST-NET-1, documentation only), port 9, with a TTL of 1, so
// that the host's forwarding drops it should a bridged zone's rules fail; rauhad skips that
// probe where the policy allows the connection (a host-network zone, or a rule covering it),
// since there nothing would stop it at the machine's edge.
//
//   mount               mount tmpfs on a scratch directory under /tmp
//   namespace           unshare(CLONE_NEWUSER | CLONE_NEWNS)
//   setns               setns(/proc/self/ns/net, CLONE_NEWNET): joining any namespace
//   bpf                 BPF_MAP_CREATE (a one-entry array)
//   perf_event_open     a software CPU-clock counter on itself
//   kernel_module       finit_module on /dev/null
//   keyring             add_key("user") to the process keyring
//   filesystem.write    create /etc/.rauha-probe and /usr/.rauha-probe
//   signal.init         kill(1, SIGCONT): the task's init is outside the workload's domain
//   ptrace.init         PTRACE_SEIZE pid 1 (ATTACH's permission check, without stopping it)
//   network.egress      non-blocking TCP connect to 192.0.2.1:9 (1 s)
//   network.raw_socket  socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
//   sysctl.write        open /proc/sys/kernel/domainname for writing (nothing is written)
//   device.mknod        mknod a char device 1:1 in /tmp
//   cgroup.escape       open a cgroup root's cgroup.procs for writing (nothing is written);
//                       ENOENT everywhere (no cgroupfs in the task's root) counts as refused
//
// "refused" means the attempt failed with an errno that is a refusal for that action (EPERM,
// EACCES, EROFS, ENOSYS for a denied syscall whose seccomp listener is gone, and per probe
// ENETUNREACH/EHOSTUNREACH, ENOENT); any other outcome is reported as not refused, with the
// reason in "detail".
#pragma once

#include <string>
#include <vector>

namespace rauha::shim {

// The probes' names, in the order they run and are listed.
const std::vector<std::string>& ProbeNames();

// In the workload's process, in place of exec. Probes named in `skip` are reported as not
// attempted (skipped, not refused). Never returns.
[[noreturn]] void RunProbes(const std::vector<std::string>& skip);

}  // namespace rauha::shim
