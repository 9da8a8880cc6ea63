#include "rauhad/linux/bpf/event_format.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::bpf {
namespace {

struct HookInfo {
  std::string_view name;
  std::string_view layer;
};

constexpr std::array<HookInfo, RAUHA_HOOK_COUNT> kHooks = {{
    {"lsm/file_open", "lsm"},           {"lsm/bprm_check_security", "lsm"},
    {"lsm/ptrace_access_check", "lsm"}, {"lsm/task_kill", "lsm"},
    {"lsm/socket_connect", "lsm"},      {"lsm/sb_mount", "lsm"},
    {"lsm/move_mount", "lsm"},          {"lsm/bpf", "lsm"},
    {"lsm/perf_event_open", "lsm"},     {"lsm/kernel_read_file", "lsm"},
    {"lsm/kernel_load_data", "lsm"},    {"lsm/capable", "lsm"},
    {"lsm/userns_create", "lsm"},       {"cgroup/connect4", "cgroup-bpf"},
    {"cgroup/connect6", "cgroup-bpf"},  {"cgroup/sendmsg4", "cgroup-bpf"},
    {"cgroup/sendmsg6", "cgroup-bpf"},  {"cgroup/bind4", "cgroup-bpf"},
    {"cgroup/bind6", "cgroup-bpf"},     {"cgroup/sock_create", "cgroup-bpf"},
    {"cgroup/dev", "cgroup-bpf"},       {"cgroup/sysctl", "cgroup-bpf"},
    {"landlock", "landlock"},
}};

// Bounded copy of a NUL-terminated kernel string field.
std::string FieldString(const char* s, size_t n) { return std::string(s, strnlen(s, n)); }

// The event's path, reassembling slotted components (the Landlock observer's format).
std::string EventPath(const rauha_event& e) {
  if (!(e.path_parts & RAUHA_PATH_PARTS_SLOTTED)) return FieldString(e.path, sizeof(e.path));
  uint32_t n = std::min<uint32_t>(e.path_parts & 0xff, RAUHA_PATH_SLOTS);
  std::string out = (e.path_parts & RAUHA_PATH_PARTS_TRUNCATED) ? "..." : "";
  for (uint32_t i = n; i-- > 0;)
    out += StrCat("/", FieldString(e.path + i * RAUHA_PATH_SLOT, RAUHA_PATH_SLOT));
  return out.empty() ? "/" : out;
}

std::string_view ProtoName(uint32_t proto) {
  switch (proto) {
    case IPPROTO_TCP:
      return "tcp";
    case IPPROTO_UDP:
      return "udp";
    case IPPROTO_ICMP:
      return "icmp";
    case IPPROTO_ICMPV6:
      return "icmpv6";
    case IPPROTO_SCTP:
      return "sctp";
    default:
      return "";
  }
}

std::string SockObject(const rauha_event& e) {
  std::string s = FormatSockAddr(e.family, e.addr, e.port);
  std::string_view proto = ProtoName(e.proto);
  if (!proto.empty()) return StrCat(s, "/", proto);
  return e.proto ? StrCat(s, "/proto ", e.proto) : s;
}

std::string_view FamilyName(uint32_t family) {
  switch (family) {
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    case AF_PACKET:
      return "AF_PACKET";
    case AF_UNIX:
      return "AF_UNIX";
    case AF_NETLINK:
      return "AF_NETLINK";
    default:
      return "";
  }
}

std::string Family(uint32_t family) {
  std::string_view n = FamilyName(family);
  return n.empty() ? StrCat("family ", family) : std::string(n);
}

std::string_view SockTypeName(uint64_t type) {
  switch (type & 0xf) {
    case SOCK_STREAM:
      return "SOCK_STREAM";
    case SOCK_DGRAM:
      return "SOCK_DGRAM";
    case SOCK_RAW:
      return "SOCK_RAW";
    case SOCK_SEQPACKET:
      return "SOCK_SEQPACKET";
    default:
      return "SOCK_?";
  }
}

std::string CapName(uint64_t cap) {
  const auto& known = policy::KnownCapabilities();
  if (cap < known.size()) return std::string(known[cap]);
  return StrCat("capability ", cap);
}

// Landlock access rights (uapi/linux/landlock.h), filesystem and network.
std::string LandlockAccess(uint64_t type, uint64_t access) {
  static constexpr std::string_view kFs[] = {"execute",    "write_file",  "read_file", "read_dir",
                                             "remove_dir", "remove_file", "make_char", "make_dir",
                                             "make_reg",   "make_sock",   "make_fifo", "make_block",
                                             "make_sym",   "refer",       "truncate",  "ioctl_dev"};
  static constexpr std::string_view kNet[] = {"bind_tcp", "connect_tcp"};
  const std::string_view* names = kFs;
  size_t n = std::size(kFs);
  if (type == 4) names = kNet, n = std::size(kNet);
  std::string out;
  for (size_t i = 0; i < 64; ++i) {
    if (!(access & (1ull << i))) continue;
    if (!out.empty()) out += ",";
    out +=
        i < n && (type == 3 || type == 2 || type == 4) ? std::string(names[i]) : StrCat("bit", i);
  }
  return out;
}

std::string TargetObject(const rauha_event& e, const std::string& target_zone) {
  return StrCat(
      "pid ", e.target_pid, " (",
      target_zone.empty() ? std::string("outside any zone") : StrCat("zone ", target_zone), ")");
}

std::string_view DevAccess(uint64_t a, std::string* out) {
  if (a & 2) *out += "r";
  if (a & 4) *out += "w";
  if (a & 1) *out += "m";
  return *out;
}

void FillLandlock(const rauha_event& e, EnforcementEvent* ev) {
  std::string access = LandlockAccess(e.detail2, e.detail);
  switch (e.detail2) {
    case 2:  // LANDLOCK_REQUEST_FS_CHANGE_TOPOLOGY
      ev->action = "mount";
      ev->object = EventPath(e);
      ev->message = StrCat("Landlock refused a mount topology change at ", ev->object);
      return;
    case 3: {  // LANDLOCK_REQUEST_FS_ACCESS
      ev->action = "filesystem";
      std::string path = EventPath(e);
      ev->object = StrCat(path, " (", access, ")");
      ev->message = StrCat("Landlock refused ", access, " on ", path,
                           ": not allowed by the zone's [filesystem] rules");
      return;
    }
    case 4: {  // LANDLOCK_REQUEST_NET_ACCESS
      bool bind = e.detail & 1;
      ev->action = bind ? "bind" : "connect";
      ev->object = StrCat("port ", e.port, "/tcp");
      ev->message =
          StrCat("Landlock refused ", ev->action, " on TCP port ", e.port,
                 bind ? ": not in [network].allowed_ingress" : ": not in [network].allowed_egress");
      return;
    }
    case 5:  // LANDLOCK_REQUEST_SCOPE_ABSTRACT_UNIX_SOCKET
      ev->action = "unix-connect";
      ev->object = "abstract unix socket outside the zone's Landlock domain";
      ev->message = "Landlock refused a connection to an abstract unix socket outside the zone";
      return;
    case 1:  // LANDLOCK_REQUEST_PTRACE
    case 6:  // LANDLOCK_REQUEST_SCOPE_SIGNAL
      ev->action = e.detail2 == 1 ? "ptrace" : "signal";
      ev->object = e.target_pid ? TargetObject(e, ev->target_zone) : "a task outside the domain";
      ev->message = StrCat("Landlock refused ", ev->action, " of ", ev->object);
      return;
    default:
      ev->action = "landlock";
      ev->object = StrCat("request type ", e.detail2, " access ", access);
      ev->message = StrCat("Landlock refused request type ", e.detail2);
  }
}

}  // namespace

std::string_view HookName(uint16_t hook) {
  return hook < kHooks.size() ? kHooks[hook].name : std::string_view("unknown");
}

std::string_view HookLayer(uint16_t hook) {
  return hook < kHooks.size() ? kHooks[hook].layer : std::string_view("unknown");
}

std::string FormatSockAddr(uint16_t family, const uint32_t addr[4], uint16_t port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET6) {
    inet_ntop(AF_INET6, addr, buf, sizeof(buf));
    return StrCat("[", buf, "]:", port);
  }
  inet_ntop(AF_INET, addr, buf, sizeof(buf));
  return StrCat(buf, ":", port);
}

EnforcementEvent FormatEvent(const rauha_event& e, std::string zone_id, std::string target_zone,
                             int64_t realtime_offset_ns) {
  EnforcementEvent ev;
  ev.time_ns = static_cast<int64_t>(e.ktime_ns) + realtime_offset_ns;
  ev.zone_id = std::move(zone_id);
  ev.cgroup_id = e.cgroup_id;
  ev.pidns_ino = e.pidns_ino;
  ev.pid = e.pid;
  ev.comm = FieldString(e.comm, sizeof(e.comm));
  ev.layer = std::string(HookLayer(e.hook));
  ev.hook = std::string(HookName(e.hook));
  ev.decision = "deny";
  ev.target_zone = std::move(target_zone);
  const std::string path = EventPath(e);

  switch (e.hook) {
    case RAUHA_HOOK_LSM_FILE_OPEN:
      ev.action = "open";
      if (e.reason == RAUHA_REASON_CGROUPFS_WRITE) {
        ev.object = StrCat(path.empty() ? std::string("cgroupfs") : path, " (write)");
        ev.message = StrCat("write open of ", ev.object,
                            " refused: a zone's processes cannot change cgroups");
      } else if (e.reason == RAUHA_REASON_PATH_UNRESOLVED) {
        ev.object = "(unresolvable path) (write)";
        ev.message = "write open refused: its path could not be resolved (too long)";
      } else {
        ev.object = StrCat(path, " (write)");
        ev.message =
            StrCat("write open of ", path, " refused: not under [filesystem].writable_paths");
      }
      break;
    case RAUHA_HOOK_LSM_BPRM_CHECK:
      ev.action = "exec";
      ev.object = path;
      ev.message = e.reason == RAUHA_REASON_EXEC_DENIED
                       ? StrCat("exec of ", path, " refused: under [exec].denied")
                   : e.reason == RAUHA_REASON_PATH_UNRESOLVED
                       ? std::string("exec refused: its path could not be resolved (too long)")
                       : StrCat("exec of ", path, " refused: not under [exec].allowed");
      break;
    case RAUHA_HOOK_LSM_PTRACE:
      ev.action = "ptrace";
      ev.object = TargetObject(e, ev.target_zone);
      ev.message = StrCat("ptrace of ", ev.object, " refused: a zone may trace only its own tasks");
      break;
    case RAUHA_HOOK_LSM_TASK_KILL:
      ev.action = "signal";
      ev.object = StrCat("signal ", e.detail, " to ", TargetObject(e, ev.target_zone));
      ev.message = StrCat(ev.object, " refused: a zone may signal only its own tasks");
      break;
    case RAUHA_HOOK_LSM_SOCKET_CONNECT:
    case RAUHA_HOOK_CG_CONNECT4:
    case RAUHA_HOOK_CG_CONNECT6:
    case RAUHA_HOOK_CG_SENDMSG4:
    case RAUHA_HOOK_CG_SENDMSG6: {
      bool send = e.hook == RAUHA_HOOK_CG_SENDMSG4 || e.hook == RAUHA_HOOK_CG_SENDMSG6;
      ev.action = send ? "sendmsg" : "connect";
      ev.object = SockObject(e);
      ev.message = StrCat(send ? "send to " : "connect to ", ev.object,
                          " refused: not in [network].allowed_egress");
      break;
    }
    case RAUHA_HOOK_CG_BIND4:
    case RAUHA_HOOK_CG_BIND6:
      ev.action = "bind";
      ev.object = SockObject(e);
      ev.message = StrCat("bind to ", ev.object,
                          " refused: not loopback, the wildcard or the zone's address");
      break;
    case RAUHA_HOOK_CG_SOCK_CREATE:
      ev.action = "socket";
      ev.object = StrCat(Family(e.family), " ", SockTypeName(e.detail2), " protocol ", e.proto);
      ev.message = StrCat(e.reason == RAUHA_REASON_PACKET_SOCKET ? "packet" : "raw", " socket (",
                          ev.object, ") refused: CAP_NET_RAW is not in [capabilities].allowed");
      break;
    case RAUHA_HOOK_CG_DEV: {
      std::string access;
      DevAccess(e.detail, &access);
      ev.action = "device";
      ev.object =
          StrCat(static_cast<char>(e.dev_type), " ", e.dev_major, ":", e.dev_minor, " ", access);
      ev.message = StrCat("access to device ", static_cast<char>(e.dev_type), " ", e.dev_major, ":",
                          e.dev_minor, " refused: not in [devices].allowed");
      break;
    }
    case RAUHA_HOOK_CG_SYSCTL:
      ev.action = "sysctl";
      ev.object = StrCat("/proc/sys/", path, " (write)");
      ev.message =
          StrCat("write to /proc/sys/", path, " refused: zones cannot change kernel parameters");
      break;
    case RAUHA_HOOK_LSM_SB_MOUNT:
    case RAUHA_HOOK_LSM_MOVE_MOUNT:
      ev.action = "mount";
      ev.object = e.hook == RAUHA_HOOK_LSM_MOVE_MOUNT
                      ? std::string("move_mount")
                      : StrCat("mount", path.empty() ? std::string() : StrCat(" -t ", path));
      ev.message = StrCat(ev.object, " refused: zones cannot mount");
      break;
    case RAUHA_HOOK_LSM_BPF:
      ev.action = "bpf";
      ev.object = StrCat("bpf cmd ", e.detail);
      ev.message = StrCat("bpf() (cmd ", e.detail, ") refused: zones cannot use bpf()");
      break;
    case RAUHA_HOOK_LSM_PERF_EVENT_OPEN:
      ev.action = "perf_event_open";
      static constexpr std::string_view kPerfTypes[] = {"hardware", "software", "tracepoint",
                                                        "hw-cache", "raw",      "breakpoint"};
      ev.object = StrCat("perf event type ", e.detail,
                         e.detail < std::size(kPerfTypes) ? StrCat(" (", kPerfTypes[e.detail], ")")
                                                          : std::string());
      ev.message = "perf_event_open refused: zones cannot open perf events";
      break;
    case RAUHA_HOOK_LSM_KERNEL_READ_FILE:
    case RAUHA_HOOK_LSM_KERNEL_LOAD_DATA: {
      static constexpr std::string_view kWhat[] = {"unknown",         "firmware",
                                                   "kernel module",   "kexec image",
                                                   "kexec initramfs", "security policy"};
      ev.action = "module";
      ev.object = e.detail < std::size(kWhat) ? std::string(kWhat[e.detail])
                                              : StrCat("kernel load id ", e.detail);
      ev.message = StrCat("loading a ", ev.object, " refused: zones cannot load kernel code");
      break;
    }
    case RAUHA_HOOK_LSM_CAPABLE:
      ev.action = "capability";
      ev.object = CapName(e.detail);
      ev.message = StrCat("use of ", ev.object, " refused: not in [capabilities].allowed");
      break;
    case RAUHA_HOOK_LSM_USERNS_CREATE:
      ev.action = "unshare";
      ev.object = "user namespace";
      ev.message = "creating a user namespace refused: zones cannot create user namespaces";
      break;
    case RAUHA_HOOK_LANDLOCK:
      FillLandlock(e, &ev);
      break;
    default:
      ev.action = "unknown";
      ev.message = StrCat("denial by unknown hook ", e.hook);
  }
  return ev;
}

}  // namespace rauha::bpf
