// Kernel events -> EnforcementEvent text: what `rauha events` and task results show.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>

#include "rauhad/linux/bpf/event_format.h"

namespace rauha::bpf {
namespace {

rauha_event Base(uint16_t hook, uint16_t reason) {
  rauha_event e;
  std::memset(&e, 0, sizeof(e));
  e.ktime_ns = 1000;
  e.cgroup_id = 42;
  e.pidns_ino = 4026531836u;
  e.pid = 1234;
  e.hook = hook;
  e.reason = reason;
  e.ret = -1;
  std::strcpy(e.comm, "curl");
  return e;
}

TEST(BpfEventFormatTest, ConnectNamesAddressPortProtocolAndThePolicyKey) {
  rauha_event e = Base(RAUHA_HOOK_CG_CONNECT4, RAUHA_REASON_NOT_EGRESS);
  e.family = AF_INET;
  inet_pton(AF_INET, "192.0.2.1", &e.addr[0]);
  e.port = 9;
  e.proto = IPPROTO_TCP;
  EnforcementEvent ev = FormatEvent(e, "web", "", 5000);
  EXPECT_EQ(ev.time_ns, 6000);
  EXPECT_EQ(ev.zone_id, "web");
  EXPECT_EQ(ev.cgroup_id, 42u);
  EXPECT_EQ(ev.pid, 1234u);
  EXPECT_EQ(ev.comm, "curl");
  EXPECT_EQ(ev.layer, "cgroup-bpf");
  EXPECT_EQ(ev.hook, "cgroup/connect4");
  EXPECT_EQ(ev.action, "connect");
  EXPECT_EQ(ev.decision, "deny");
  EXPECT_EQ(ev.object, "192.0.2.1:9/tcp");
  EXPECT_EQ(ev.message, "connect to 192.0.2.1:9/tcp refused: not in [network].allowed_egress");
}

TEST(BpfEventFormatTest, Ipv6AddressesAreBracketed) {
  rauha_event e = Base(RAUHA_HOOK_CG_SENDMSG6, RAUHA_REASON_NOT_EGRESS);
  e.family = AF_INET6;
  inet_pton(AF_INET6, "2001:db8::1", e.addr);
  e.port = 53;
  e.proto = IPPROTO_UDP;
  EnforcementEvent ev = FormatEvent(e, "z", "", 0);
  EXPECT_EQ(ev.object, "[2001:db8::1]:53/udp");
  EXPECT_EQ(ev.action, "sendmsg");
}

TEST(BpfEventFormatTest, FileOpenCgroupfsAndSysctl) {
  rauha_event e = Base(RAUHA_HOOK_LSM_FILE_OPEN, RAUHA_REASON_NOT_WRITABLE);
  std::strcpy(e.path, "/etc/passwd");
  EnforcementEvent ev = FormatEvent(e, "z", "", 0);
  EXPECT_EQ(ev.layer, "lsm");
  EXPECT_EQ(ev.hook, "lsm/file_open");
  EXPECT_EQ(ev.object, "/etc/passwd (write)");
  EXPECT_NE(ev.message.find("writable_paths"), std::string::npos);

  e.reason = RAUHA_REASON_CGROUPFS_WRITE;
  std::strcpy(e.path, "/sys/fs/cgroup/cgroup.procs");
  ev = FormatEvent(e, "z", "", 0);
  EXPECT_EQ(ev.object, "/sys/fs/cgroup/cgroup.procs (write)");
  EXPECT_NE(ev.message.find("cgroups"), std::string::npos);

  rauha_event s = Base(RAUHA_HOOK_CG_SYSCTL, RAUHA_REASON_SYSCTL_WRITE);
  std::strcpy(s.path, "kernel/hostname");
  EXPECT_EQ(FormatEvent(s, "z", "", 0).object, "/proc/sys/kernel/hostname (write)");
}

TEST(BpfEventFormatTest, SignalsNameTheTargetAndItsZone) {
  rauha_event e = Base(RAUHA_HOOK_LSM_TASK_KILL, RAUHA_REASON_OTHER_ZONE);
  e.target_pid = 77;
  e.target_cgroup_id = 43;
  e.detail = 9;
  EnforcementEvent ev = FormatEvent(e, "a", "b", 0);
  EXPECT_EQ(ev.action, "signal");
  EXPECT_EQ(ev.target_zone, "b");
  EXPECT_EQ(ev.object, "signal 9 to pid 77 (zone b)");
  e.reason = RAUHA_REASON_OUTSIDE_ZONE;
  EXPECT_EQ(FormatEvent(e, "a", "", 0).object, "signal 9 to pid 77 (outside any zone)");
}

TEST(BpfEventFormatTest, DevicesCapabilitiesAndSockets) {
  rauha_event d = Base(RAUHA_HOOK_CG_DEV, RAUHA_REASON_DEVICE);
  d.dev_type = 'c';
  d.dev_major = 1;
  d.dev_minor = 7;
  d.detail = 2 | 4;
  EXPECT_EQ(FormatEvent(d, "z", "", 0).object, "c 1:7 rw");

  rauha_event c = Base(RAUHA_HOOK_LSM_CAPABLE, RAUHA_REASON_CAPABILITY);
  c.detail = 21;
  EnforcementEvent ev = FormatEvent(c, "z", "", 0);
  EXPECT_EQ(ev.object, "CAP_SYS_ADMIN");
  EXPECT_EQ(ev.message, "use of CAP_SYS_ADMIN refused: not in [capabilities].allowed");

  rauha_event s = Base(RAUHA_HOOK_CG_SOCK_CREATE, RAUHA_REASON_RAW_SOCKET);
  s.family = AF_INET;
  s.detail2 = SOCK_RAW;
  s.proto = IPPROTO_ICMP;
  EXPECT_EQ(FormatEvent(s, "z", "", 0).object, "AF_INET SOCK_RAW protocol 1");
}

TEST(BpfEventFormatTest, LandlockSlottedPathsAreReassembledRootFirst) {
  rauha_event e = Base(RAUHA_HOOK_LANDLOCK, RAUHA_REASON_LANDLOCK);
  e.ret = 0;
  e.detail2 = 3;      // LANDLOCK_REQUEST_FS_ACCESS
  e.detail = 1 << 2;  // read_file
  std::strcpy(e.path + 0 * RAUHA_PATH_SLOT, "shadow");
  std::strcpy(e.path + 1 * RAUHA_PATH_SLOT, "etc");
  e.path_parts = 2 | RAUHA_PATH_PARTS_SLOTTED;
  EnforcementEvent ev = FormatEvent(e, "z", "", 0);
  EXPECT_EQ(ev.layer, "landlock");
  EXPECT_EQ(ev.hook, "landlock");
  EXPECT_EQ(ev.decision, "deny");
  EXPECT_EQ(ev.action, "filesystem");
  EXPECT_EQ(ev.object, "/etc/shadow (read_file)");

  e.path_parts = 1 | RAUHA_PATH_PARTS_SLOTTED | RAUHA_PATH_PARTS_TRUNCATED;
  EXPECT_EQ(FormatEvent(e, "z", "", 0).object, ".../shadow (read_file)");
  e.path_parts = RAUHA_PATH_PARTS_SLOTTED;
  EXPECT_EQ(FormatEvent(e, "z", "", 0).object, "/ (read_file)");

  rauha_event n = Base(RAUHA_HOOK_LANDLOCK, RAUHA_REASON_LANDLOCK);
  n.detail2 = 4;  // LANDLOCK_REQUEST_NET_ACCESS
  n.detail = 2;   // connect_tcp
  n.port = 443;
  ev = FormatEvent(n, "z", "", 0);
  EXPECT_EQ(ev.action, "connect");
  EXPECT_EQ(ev.object, "port 443/tcp");
}

TEST(BpfEventFormatTest, EveryHookHasANameAndLayer) {
  for (uint16_t h = 0; h < RAUHA_HOOK_COUNT; ++h) {
    EXPECT_NE(HookName(h), "unknown") << h;
    EXPECT_TRUE(HookLayer(h) == "lsm" || HookLayer(h) == "cgroup-bpf" || HookLayer(h) == "landlock")
        << h;
  }
  EXPECT_EQ(HookName(RAUHA_HOOK_COUNT), "unknown");
}

}  // namespace
}  // namespace rauha::bpf
