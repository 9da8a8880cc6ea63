// controls.cc: which layer enforces each control, and what admission refuses.
#include "rauhad/controls.h"

#include <gtest/gtest.h>

#include <map>

namespace rauha {
namespace {

std::map<std::string, ControlLayer> ByName(const std::vector<ControlLayer>& rows) {
  std::map<std::string, ControlLayer> out;
  for (const auto& r : rows) out[r.control] = r;
  return out;
}

HostLayers ThisKindOfHost() {
  HostLayers h;
  h.cgroup_bpf = true;
  h.landlock_abi = 7;
  h.lsm_detail = "BPF_PROG_LOAD lsm/file_open: Operation not permitted";
  return h;
}

TEST(Controls, FallbackLayersWhereLsmDoesNotLoad) {
  auto rows = ByName(MapControls(policy::DefaultPolicy(), ThisKindOfHost()));
  EXPECT_EQ(rows["mount"].layer, "seccomp");
  EXPECT_EQ(rows["filesystem.write"].layer, "landlock");
  EXPECT_EQ(rows["devices"].layer, "cgroup-bpf");
  EXPECT_EQ(rows["network.egress"].layer, "namespace") << "isolated: no interface but lo";
  EXPECT_EQ(rows["network.egress"].also, std::vector<std::string>{"cgroup-bpf"});
  EXPECT_EQ(rows["network.raw_sockets"].layer, "cgroup-bpf") << "standard drops CAP_NET_RAW";
  EXPECT_FALSE(rows.count("exec.denied")) << "not stated by the policy";
  EXPECT_TRUE(EnforcementGaps(policy::DefaultPolicy(), ThisKindOfHost()).empty());
}

TEST(Controls, LsmIsPrimaryWhereItLoads) {
  HostLayers h = ThisKindOfHost();
  h.lsm = true;
  auto rows = ByName(MapControls(policy::DefaultPolicy(), h));
  EXPECT_EQ(rows["mount"].layer, "lsm");
  EXPECT_EQ(rows["mount"].also, std::vector<std::string>{"seccomp"});
  EXPECT_EQ(rows["filesystem.write"].layer, "lsm");
}

TEST(Controls, ExecDeniedIsAGapWithoutLsmAndAllowedFallsBackToLandlock) {
  policy::Policy p = policy::DefaultPolicy();
  p.exec.denied = {"/usr/bin/curl"};
  p.exec.allowed = {"/usr/bin"};
  auto rows = ByName(MapControls(p, ThisKindOfHost()));
  EXPECT_EQ(rows["exec.denied"].layer, "");
  EXPECT_EQ(rows["exec.allowed"].layer, "landlock");
  auto gaps = EnforcementGaps(p, ThisKindOfHost());
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_NE(gaps[0].find("exec.denied: needs the eBPF LSM programs"), std::string::npos) << gaps[0];
  EXPECT_NE(gaps[0].find("Operation not permitted"), std::string::npos) << gaps[0];

  HostLayers no_landlock = ThisKindOfHost();
  no_landlock.landlock_abi = 0;
  EXPECT_EQ(EnforcementGaps(p, no_landlock).size(), 2u);
  HostLayers lsm = ThisKindOfHost();
  lsm.lsm = true;
  EXPECT_TRUE(EnforcementGaps(p, lsm).empty());
}

TEST(Controls, WithoutBpfTheNamespaceAndCapabilitiesStillHold) {
  HostLayers h;  // nothing but seccomp
  policy::Policy p = policy::DefaultPolicy();
  p.capabilities.allowed.clear();
  auto rows = ByName(MapControls(p, h));
  EXPECT_EQ(rows["devices"].layer, "namespace");
  EXPECT_EQ(rows["network.raw_sockets"].layer, "capabilities");
  EXPECT_EQ(rows["network.bind"].layer, "namespace");
  EXPECT_TRUE(EnforcementGaps(p, h).empty());
}

TEST(Controls, HostListsEveryControl) {
  auto rows = ByName(HostControls(ThisKindOfHost()));
  for (const char* c :
       {"filesystem.write", "exec.allowed", "exec.denied", "process.signal", "process.ptrace",
        "mount", "namespaces", "cgroup.escape", "bpf", "perf_event_open", "kernel_modules",
        "capabilities", "devices", "sysctl.write", "network.egress", "network.bind",
        "network.raw_sockets", "syscalls.deny"}) {
    EXPECT_TRUE(rows.count(c)) << c;
  }
}

}  // namespace
}  // namespace rauha
