// VerifyIsolation by trying: turns a probe task's outcome (TaskRunner::Probe) into checks
// named "try.<probe>", each saying which layer refused the attempt. The layer comes from the
// enforcement event the attempt caused when there is one (seccomp, cgroup-bpf, lsm, landlock
// report theirs); otherwise from the errno (EROFS: a read-only mount, ENOENT: the object is not
// in the task's root, ...), marked "no event".
#pragma once

#include <vector>

#include "rauhad/task_runner.h"
#include "rauhad/zone_manager.h"

namespace rauha {

// A probe whose action `policy` allows (CAP_NET_RAW kept, host network, "/" writable) passes
// and says so: succeeding is then what the policy asked for.
std::vector<IsolationCheckView> ProbeChecks(const ProbeOutcome& outcome,
                                            const policy::Policy& policy);

// Probes not to attempt in a zone with `policy` (TaskSpec.probe_skip): those the policy allows
// whose attempt would send a packet off the machine. The egress probe's SYN to
// 192.0.2.1:9/tcp from a host-network zone, or from a bridged zone whose allowed_egress covers
// it, would be routed out by the host; the check then passes as allowed, with nothing sent.
std::vector<std::string> ProbesToSkip(const policy::Policy& policy);

}  // namespace rauha
