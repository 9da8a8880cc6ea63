// Types shared by ebpf/enforcer.bpf.c and rauhad (rauhad/linux/bpf/): fixed layout, no
// pointers, explicit padding, so the BPF object and C++ agree byte for byte. Included by the BPF
// program after vmlinux.h and by C++ on its own.
//
// Maps (created by the object; rauhad pins the stateful ones, see rauhad/linux/bpf/pin_dir.h):
//   rauha_zones     HASH  u64 cgroup v2 id -> struct rauha_zone     (BPF_F_NO_PREALLOC)
//   rauha_counters  HASH  u64 cgroup v2 id -> struct rauha_counters (BPF_F_NO_PREALLOC)
//   rauha_events    RINGBUF of struct rauha_event (size set by the loader; producers wake the
//                   consumer only past rauha_wakeup_bytes, the consumer polls every 10 ms)
//   rauha_scratch   PERCPU_ARRAY[1] path buffer for bpf_d_path
// Globals: rauha_wakeup_bytes (rodata), rauha_total_lost (bss, events lost in all zones).
// Zone cgroups are keys; cgroup-bpf programs also match a zone's descendants (ancestor walk),
// LSM programs and the Landlock observer only the zone cgroup itself.
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define RAUHA_MAX_NET_RULES 16
#define RAUHA_MAX_PEERS 16
#define RAUHA_MAX_DEVICES 32
#define RAUHA_MAX_PREFIXES 8
#define RAUHA_PREFIX_LEN 128  // bytes incl. NUL: prefixes up to 127 characters
#define RAUHA_PATH_LEN 256
#define RAUHA_PATH_SLOT 32
#define RAUHA_PATH_SLOTS (RAUHA_PATH_LEN / RAUHA_PATH_SLOT)
#define RAUHA_PATH_PARTS_TRUNCATED 0x100
#define RAUHA_PATH_PARTS_SLOTTED 0x200
#define RAUHA_ZONES_MAX 4096

// Every hook that can deny (index into rauha_counters.denied and rauha_event.hook).
enum rauha_hook {
  RAUHA_HOOK_LSM_FILE_OPEN = 0,
  RAUHA_HOOK_LSM_BPRM_CHECK,
  RAUHA_HOOK_LSM_PTRACE,
  RAUHA_HOOK_LSM_TASK_KILL,
  RAUHA_HOOK_LSM_SOCKET_CONNECT,
  RAUHA_HOOK_LSM_SB_MOUNT,
  RAUHA_HOOK_LSM_MOVE_MOUNT,
  RAUHA_HOOK_LSM_BPF,
  RAUHA_HOOK_LSM_PERF_EVENT_OPEN,
  RAUHA_HOOK_LSM_KERNEL_READ_FILE,
  RAUHA_HOOK_LSM_KERNEL_LOAD_DATA,
  RAUHA_HOOK_LSM_CAPABLE,
  RAUHA_HOOK_LSM_USERNS_CREATE,
  RAUHA_HOOK_CG_CONNECT4,
  RAUHA_HOOK_CG_CONNECT6,
  RAUHA_HOOK_CG_SENDMSG4,
  RAUHA_HOOK_CG_SENDMSG6,
  RAUHA_HOOK_CG_BIND4,
  RAUHA_HOOK_CG_BIND6,
  RAUHA_HOOK_CG_SOCK_CREATE,
  RAUHA_HOOK_CG_DEV,
  RAUHA_HOOK_CG_SYSCTL,
  RAUHA_HOOK_LANDLOCK,
  RAUHA_HOOK_COUNT
};

// Why a hook denied (rauha_event.reason).
enum rauha_reason {
  RAUHA_REASON_NONE = 0,
  RAUHA_REASON_NOT_WRITABLE,      // write-mode open outside writable_paths
  RAUHA_REASON_CGROUPFS_WRITE,    // write-mode open on cgroupfs (leaving the zone's cgroups)
  RAUHA_REASON_PATH_UNRESOLVED,   // the path could not be resolved (too long): refused
  RAUHA_REASON_EXEC_NOT_ALLOWED,  // exec outside exec_allowed
  RAUHA_REASON_EXEC_DENIED,       // exec under an exec_denied prefix
  RAUHA_REASON_OUTSIDE_ZONE,      // signal/ptrace target outside any zone (the host)
  RAUHA_REASON_OTHER_ZONE,        // signal/ptrace target in another zone
  RAUHA_REASON_NOT_EGRESS,        // destination not loopback, peer or allowed_egress
  RAUHA_REASON_NOT_INGRESS,       // bind to an address that is not the zone's own
  RAUHA_REASON_RAW_SOCKET,        // SOCK_RAW inet socket without CAP_NET_RAW allowed
  RAUHA_REASON_PACKET_SOCKET,     // AF_PACKET without CAP_NET_RAW allowed
  RAUHA_REASON_DEVICE,            // device not in [devices].allowed
  RAUHA_REASON_SYSCTL_WRITE,      // sysctl write
  RAUHA_REASON_PRIVILEGED,        // mount/bpf/perf/module/userns: never from a zone
  RAUHA_REASON_CAPABILITY,        // capability not in [capabilities].allowed
  RAUHA_REASON_LANDLOCK,          // observed Landlock denial
};

enum rauha_network_mode {
  RAUHA_NET_ISOLATED = 0,
  RAUHA_NET_BRIDGED = 1,
  RAUHA_NET_HOST = 2,
};

// family 4 or 6; addr and mask are network-order bytes as four words (IPv4 in word 0, the
// others 0); an address matches when (a ^ addr) & mask is zero in every word. port is host
// order, 0 = any.
struct rauha_net_rule {
  __u8 family;
  __u8 prefix_len;
  __u16 port;
  __u32 addr[4];
  __u32 mask[4];
};

// type 'b' or 'c' (as in /proc/devices listings); any access. minor RAUHA_DEV_ANY_MINOR
// matches every minor of the major (the pseudo-terminals of a zone's /dev/pts).
#define RAUHA_DEV_ANY_MINOR 0xffffffffu
struct rauha_dev_rule {
  __u32 type;
  __u32 major;
  __u32 minor;
};

// A path prefix: matches itself and everything below it ("/tmp" matches "/tmp" and "/tmp/x",
// not "/tmpx"); "/" matches every path.
struct rauha_prefix {
  __u32 len;  // strlen(s)
  char s[RAUHA_PREFIX_LEN];
};

struct rauha_zone {
  __u8 network_mode;  // enum rauha_network_mode
  __u8 allow_raw_sockets;
  __u8 n_egress, n_ingress, n_peers, n_devices;
  __u8 n_writable, n_exec_allowed, n_exec_denied;
  __u8 _pad[7];
  __u64 caps_allowed;  // bit N: capability N
  struct rauha_net_rule egress[RAUHA_MAX_NET_RULES];
  struct rauha_net_rule ingress[RAUHA_MAX_NET_RULES];
  struct rauha_net_rule peers[RAUHA_MAX_PEERS];  // port ignored, prefix_len full
  struct rauha_dev_rule devices[RAUHA_MAX_DEVICES];
  struct rauha_prefix writable[RAUHA_MAX_PREFIXES];
  struct rauha_prefix exec_allowed[RAUHA_MAX_PREFIXES];  // empty: any
  struct rauha_prefix exec_denied[RAUHA_MAX_PREFIXES];
};

struct rauha_counters {
  __u64 denied[RAUHA_HOOK_COUNT];
  __u64 lost;  // events of this zone the ring buffer had no room for
};

// One denial. Which object fields are meaningful depends on the hook:
//   path          file_open, bprm_check, sysctl (name), landlock fs (best-effort path)
//   family/addr/port/proto   connect/sendmsg/bind/socket_connect/sock_create, landlock net
//   dev_type/major/minor     cgroup/dev (detail = access bits: 1 mknod, 2 read, 4 write)
//   target_pid/target_cgroup_id   ptrace, task_kill (detail = signal or ptrace mode)
//   detail        file_open: f_mode; capable: capability; bpf: cmd; kernel_read_file/
//                 load_data: id; perf_event_open: attr->type; landlock: access mask
//   detail2       landlock: request type; sock_create: type; sb_mount: flags;
//                 perf_event_open: the security check (PERF_SECURITY_*)
struct rauha_event {
  __u64 ktime_ns;  // bpf_ktime_get_ns (CLOCK_MONOTONIC)
  __u64 cgroup_id;
  __u64 pidns_ino;
  __u64 target_cgroup_id;
  __u64 detail;
  __u64 detail2;
  __u32 pid;  // tgid
  __u32 tid;
  __u32 target_pid;
  __u16 hook;    // enum rauha_hook
  __u16 reason;  // enum rauha_reason
  __s32 ret;     // what the hook returned to the kernel (-EPERM), 0 for observed events
  __u16 family;  // AF_INET, AF_INET6, AF_PACKET, ...
  __u16 port;    // host order
  __u32 proto;   // IPPROTO_TCP/UDP (connect/sendmsg/bind), socket protocol (sock_create)
  __u32 dev_type;
  __u32 dev_major;
  __u32 dev_minor;
  // 0: path is one string. With RAUHA_PATH_PARTS_SLOTTED: the low byte counts leaf-first path
  // components, each in a RAUHA_PATH_SLOT-byte slot of path (cut at RAUHA_PATH_SLOT - 1
  // bytes; 0 components = "/"); RAUHA_PATH_PARTS_TRUNCATED: the path went on above them.
  __u32 path_parts;
  __u32 addr[4];  // network order, IPv4 in word 0
  char comm[16];
  char path[RAUHA_PATH_LEN];
};
