// What the kernel holds for a zone's cgroup-bpf enforcement, read without rauhad (its links,
// the pins of its rauhad), and a witness task that keeps probing a denied connect from inside
// a zone so a test can tell whether enforcement held at every moment, rauhad up or down.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {

// BPF links attached to the cgroup with this id, across the whole kernel (what `bpftool cgroup
// show` lists).
int CgroupLinkCount(uint64_t cgroup_id);

// The zone's cgroup v2 id, from its "cgroup" layer ("cgroup id 1234; limits: ...").
uint64_t ZoneCgroupId(const rauha::zone::v1::ZoneInfo& zone);

// Cgroup ids with pinned links in the daemon's pin directory (zones/<id>), and how many pins
// one of them has.
std::set<uint64_t> PinnedZoneIds(const Daemon& daemon);
size_t PinnedLinkCount(const Daemon& daemon, uint64_t cgroup_id);

// Ids of the programs pinned in the daemon's pin directory (progs/).
std::set<uint32_t> PinnedProgramIds(const Daemon& daemon);
bool ProgramExists(uint32_t id);

// A task in zone `zone` that connects to 192.0.2.1:9 (TEST-NET-1) every ~50 ms and logs each
// outcome with its start and end time (CLOCK_REALTIME ns) to a file in its /workspace, a
// directory of the test's. The zone's network is loopback only: refused by cgroup/connect4 the
// outcome is DENIED (EPERM); without it, OTHER (ENETUNREACH); no packet ever leaves.
class ConnectProbe {
 public:
  struct Line {
    int64_t start_ns = 0, end_ns = 0;
    std::string outcome;  // "DENIED", "OPEN", "OTHER:<message>"
  };
  // Starts the task and waits until it runs and logged a first line.
  ConnectProbe(Daemon* daemon, const std::string& zone);
  ~ConnectProbe();
  // Asks the task to end, collects it through `daemon` (WaitTask) and returns its lines.
  std::vector<Line> Finish(Daemon* daemon);
  std::vector<Line> Lines() const;
  const std::string& task_id() const { return task_id_; }

 private:
  std::string repo_;
  std::string task_id_;
  std::thread client_;
};

int64_t RealtimeNs();

}  // namespace rauha::testing
