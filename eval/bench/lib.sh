# Helpers shared by the benchmark scripts (sourced, not run). They set globals rather than
# print PIDs so that every process stays a child of the calling script (wait works on it).

# parse_bench_args SCRIPT SPEC... -- ARGS...: the command line every benchmark script shares.
# Each SPEC is either OPT=VAR (OPT takes a positive integer, stored in the global VAR) or
# OPT:VAR=VALUE (a flag setting VAR to VALUE). Always known: --build-dir DIR (sets BUILD) and
# -h/--help (prints SCRIPT's leading comment, exit 0). Anything else, a missing value or a value
# that is not a positive integer: a message naming it on stderr, exit 2.
parse_bench_args() {
  local script=$1 name spec opt
  name=$(basename "$script")
  shift
  local -A int_var=() flag_set=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    spec=$1
    shift
    case "$spec" in
      *:*=*) flag_set[${spec%%:*}]=${spec#*:} ;;
      *=*) int_var[${spec%%=*}]=${spec#*=} ;;
      *) echo "parse_bench_args: bad spec '$spec' from $name" >&2; exit 2 ;;
    esac
  done
  [ $# -gt 0 ] && shift # the --
  while [ $# -gt 0 ]; do
    opt=$1
    case "$opt" in
      -h | --help)
        # The comment block after the #! line is the script's manual.
        awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$script"
        exit 0
        ;;
      --build-dir)
        [ $# -ge 2 ] || { echo "$name: --build-dir wants a directory" >&2; exit 2; }
        BUILD=$2
        shift 2
        ;;
      *)
        if [ -n "${flag_set[$opt]+set}" ]; then
          printf -v "${flag_set[$opt]%%=*}" '%s' "${flag_set[$opt]#*=}"
          shift
        elif [ -n "${int_var[$opt]+set}" ]; then
          [ $# -ge 2 ] && [[ "$2" =~ ^[1-9][0-9]*$ ]] ||
            { echo "$name: $opt wants a positive integer" >&2; exit 2; }
          printf -v "${int_var[$opt]}" '%s' "$2"
          shift 2
        else
          echo "$name: unknown argument $opt (try --help)" >&2
          exit 2
        fi
        ;;
    esac
  done
}

# require_root SCRIPT WHY: exit 1 unless running as root.
require_root() {
  [ "$(id -u)" -eq 0 ] || { echo "$1: run as root ($2)" >&2; exit 1; }
}

# require_built SCRIPT BUILD_DIR TARGETS PATH...: exit 1, naming the cmake command that builds
# TARGETS, unless every PATH is an executable.
require_built() {
  local script=$1 build=$2 targets=$3 f
  shift 3
  for f in "$@"; do
    [ -x "$f" ] || { echo "$script: $f missing: build it (cmake --build $build --target $targets)" >&2; exit 1; }
  done
}

# start_rauhad RAUHAD SHIM DIR TAG [ARGS...]: a private rauhad (socket, run and state dirs in
# DIR, cgroup parent TAG below its own cgroup, ARGS added); sets DAEMON_PID once the socket
# answers.
start_rauhad() {
  local rauhad=$1 shim=$2 dir=$3 tag=$4
  shift 4
  mkdir -p "$dir"
  "$rauhad" --socket "$dir/rauhad.sock" --run-dir "$dir/run" --state-dir "$dir/state" \
    --cgroup-parent "$tag" --shim-path "$shim" "$@" >"$dir/rauhad.log" 2>&1 &
  DAEMON_PID=$!
  local i
  for ((i = 0; i < 200; i++)); do
    if [ -S "$dir/rauhad.sock" ]; then return 0; fi
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      echo "rauhad exited at start-up; its log ($dir/rauhad.log):" >&2
      cat "$dir/rauhad.log" >&2
      DAEMON_PID=""
      return 1
    fi
    sleep 0.05
  done
  echo "rauhad did not create $dir/rauhad.sock within 10 s; log:" >&2
  cat "$dir/rauhad.log" >&2
  return 1
}

# --tmpfs-run-dir (startup.sh, throughput.sh): rauhad's run dir holds each zone's directory, its
# shim's socket and log and each task's files. On a stock host /run is a tmpfs; on this VM it
# is ext4 (so is /tmp), where creating and removing them is a good part of a sandbox's CPU.
# mount_bench_tmpfs DIR NAME...: mounts a private tmpfs at DIR/tmpfs and makes each DIR/NAME
# a symlink to a fresh 0700 directory on it. rauhad resolves its --run-dir's symlinks at
# start, so a run dir of DIR/run then is on the tmpfs. Sets BENCH_TMPFS (unmount_bench_tmpfs).
BENCH_TMPFS=""
mount_bench_tmpfs() {
  local dir=$1 name target
  shift
  mkdir -p "$dir/tmpfs"
  mount -t tmpfs -o mode=0700,size=2g rauha-bench-tmpfs "$dir/tmpfs" || return 1
  BENCH_TMPFS=$dir/tmpfs
  for name in "$@"; do
    target=$BENCH_TMPFS/${name//\//-}
    mkdir -m 0700 "$target"
    mkdir -p "$(dirname "$dir/$name")"
    ln -s "$target" "$dir/$name"
  done
}

# unmount_bench_tmpfs: unmounts what mount_bench_tmpfs mounted (its rauhads stopped first);
# fails, naming it, if the tmpfs is still busy.
unmount_bench_tmpfs() {
  [ -n "$BENCH_TMPFS" ] || return 0
  umount "$BENCH_TMPFS" || { echo "could not unmount $BENCH_TMPFS" >&2; return 1; }
  BENCH_TMPFS=""
}

# fs_type PATH: the type of the file system PATH (symlinks resolved) is on, e.g. tmpfs, ext4.
fs_type() {
  findmnt -n -o FSTYPE -T "$(readlink -f "$1")"
}

# stop_rauhad PID: SIGTERM (rauhad then removes its zones, shims and cgroups) and wait.
stop_rauhad() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "rauhad (pid $pid) still running 30 s after SIGTERM" >&2
    return 1
  fi
  wait "$pid" 2>/dev/null || true
}

# make_busybox_bundle DIR: an OCI bundle whose rootfs is static busybox and whose process is
# /bin/true, no terminal (runc spec's defaults otherwise).
make_busybox_bundle() {
  local b=$1 bb
  bb=$(command -v busybox) || { echo "busybox not found: apt-get install busybox-static" >&2; return 1; }
  if ldd "$bb" >/dev/null 2>&1; then
    echo "$bb is dynamically linked; the bundle needs a static one: apt-get install busybox-static" >&2
    return 1
  fi
  mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" "$b/rootfs/tmp"
  cp "$bb" "$b/rootfs/bin/busybox"
  local app
  for app in true sh sleep cat; do ln -s busybox "$b/rootfs/bin/$app"; done
  if command -v runc >/dev/null; then
    runc spec --bundle "$b"
  elif command -v crun >/dev/null; then
    (cd "$b" && crun spec)
  else
    return 0
  fi
  python3 - "$b/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
json.dump(c, open(path, "w"), indent=1)
EOF
}

# start_cgroup_ns_holder DIR: a process in its own mount and cgroup namespaces in which every
# cgroup hierarchy is remounted, so each is rooted at this script's own cgroup, and (on a
# hybrid host) the cgroup2 mount is gone. crun refuses hybrid hosts, and it takes cgroupsPath
# as absolute from the mount's root: run there (nsenter -t HOLDER_PID -m -C crun ...) it sees a
# v1-only host and creates its cgroups below ours, never beside the host's. Sets HOLDER_PID.
start_cgroup_ns_holder() {
  local dir=$1
  rm -f "$dir/holder.ready"
  unshare --mount --cgroup --propagation private bash -c '
    set -eu
    mapfile -t mounts < <(awk '\''{ for (i = 7; $i != "-"; i++); if ($(i+1) == "cgroup" || $(i+1) == "cgroup2") print $(i+1), $5, $(i+3) }'\'' /proc/self/mountinfo)
    hybrid=0
    for m in "${mounts[@]}"; do [ "${m%% *}" = cgroup ] && hybrid=1; done
    for m in "${mounts[@]}"; do
      read -r type point opts <<<"$m"
      umount "$point"
      [ "$type" = cgroup2 ] && [ "$hybrid" = 1 ] && continue
      opts=$(tr , "\n" <<<"$opts" | grep -vx -e rw -e ro | paste -sd, -)
      mount -t "$type" ${opts:+-o "$opts"} cgroup "$point"
    done
    touch "$0/holder.ready"
    exec sleep infinity
  ' "$dir" >"$dir/holder.log" 2>&1 &
  HOLDER_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [ -e "$dir/holder.ready" ] && return 0
    kill -0 "$HOLDER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "could not prepare the cgroup namespace for crun:" >&2
  cat "$dir/holder.log" >&2
  return 1
}

# wait_warm_pool DIR N: waits (up to 30 s) until the rauhad of DIR has N zones in its run
# directory, each with its shim running: its warm pool is full (no call has run yet).
wait_warm_pool() {
  local dir=$1 n=$2 i z ok
  for ((i = 0; i < 600; i++)); do
    ok=0
    for z in "$dir"/run/zones/*; do
      [ -d "$z" ] || continue
      pgrep -f "rauha-shim.*$(basename "$z")" >/dev/null && ok=$((ok + 1))
    done
    [ "$ok" -ge "$n" ] && return 0
    sleep 0.05
  done
  echo "the warm pool of $dir did not fill to $n zones within 30 s" >&2
  return 1
}

# summarize_us [-d DECIMALS] US...: prints "n median_ms p95_ms" (p95 by nearest rank), the ms
# with 1 decimal unless told.
summarize_us() {
  local decimals=1
  if [ "${1:-}" = -d ]; then
    decimals=$2
    shift 2
  fi
  printf '%s\n' "$@" | sort -n | awk -v fmt="%d %.${decimals}f %.${decimals}f\n" '
    { v[NR] = $1 }
    END {
      n = NR
      med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      r = int(0.95 * n); if (r < 0.95 * n) r++
      printf fmt, n, med / 1000, v[r] / 1000
    }'
}
