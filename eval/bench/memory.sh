#!/usr/bin/env bash
# Memory per running sandbox: a private rauhad runs `/bin/sleep 30` in each of Z zones
# (default 10); once all are Running, the PSS (/proc/PID/smaps_rollup) of every rauha-shim and
# of rauhad is read. PSS charges shared pages (libraries) to the processes sharing them, so the
# sum is what these processes cost the machine together.
#
# For comparison, the same is done for containerd 1.6 + containerd-shim-runc-v2 (a private
# containerd, a busybox image built offline from busybox-static, `ctr run -d` Z containers
# running `sleep 30`) when those are installed; conmon is given as a reference figure only.
#
#   eval/bench/memory.sh [-z ZONES] [--build-dir DIR] [--no-containerd]     (as root)
#
# Exits 1 if a contender fails or leaves anything behind; a peer that is not installed gets a
# "not installed" row.
set -euo pipefail

ZONES=10
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
WITH_CONTAINERD=1
source "$REPO/eval/bench/lib.sh"
parse_bench_args "${BASH_SOURCE[0]}" -z=ZONES --no-containerd:WITH_CONTAINERD=0 -- "$@"
require_root memory.sh "namespaces, cgroups, rauhad"

RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
CLI="$BUILD/rauha-cli/rauha"
require_built memory.sh "$BUILD" "rauhad rauha-shim rauha" "$RAUHAD" "$SHIM" "$CLI"

TAG="rauha-bench-$$"
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
DAEMON_PID=""
CLIENT_PIDS=()
CTRD_PID=""
CTR_NS="$TAG"
# containerd 1.6 creates /run/containerd whatever its config says; remove it only if we did.
RUN_CONTAINERD_EXISTED=0
[ -e /run/containerd ] && RUN_CONTAINERD_EXISTED=1
failed=0

rauha() { "$CLI" --socket "$D/rauhad.sock" "$@"; }
ctr_() { ctr --address "$D/ctrd/containerd.sock" --namespace "$CTR_NS" "$@"; }

cleanup() {
  set +e
  if [ -n "$DAEMON_PID" ]; then
    for ((i = 1; i <= ZONES; i++)); do rauha zone delete "z$i" --force >/dev/null 2>&1; done
    stop_rauhad "$DAEMON_PID"
  fi
  for pid in "${CLIENT_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  [ -n "$CTRD_PID" ] && stop_containerd
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# pss_kib PID: the process's proportional set size in KiB.
pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }

# Table rows are collected as "label|count|mean|max|sum|note" and printed at the end.
ROWS=()
# add_row LABEL NOTE PSS...: one row from a list of PSS values (KiB).
add_row() {
  local label=$1 note=$2
  shift 2
  ROWS+=("$(printf '%s\n' "$@" | awk -v l="$label" -v n="$note" '
    { s += $1; if ($1 > m) m = $1 }
    END { printf "%s|%d|%.0f|%d|%d|%s", l, NR, s / NR, m, s, n }')")
}

# --- rauha -----------------------------------------------------------------------------------
start_rauhad "$RAUHAD" "$SHIM" "$D" "$TAG" --warm-zones 0 # shims of a pool would not be counted
for ((i = 1; i <= ZONES; i++)); do
  rauha sandbox --name "z$i" -- /bin/sleep 30 >"$D/z$i.json" 2>"$D/z$i.err" &
  CLIENT_PIDS+=($!)
done

# All zones Running (a named zone is Running while its task runs).
running=0
for ((t = 0; t < 300; t++)); do
  running=$(rauha zone list --json | python3 -c '
import json, sys
print(sum(1 for z in json.load(sys.stdin) if z["state"] == "Running"))')
  [ "$running" -eq "$ZONES" ] && break
  sleep 0.1
done
if [ "$running" -ne "$ZONES" ]; then
  echo "memory.sh: only $running of $ZONES zones reached Running in 30 s" >&2
  for ((i = 1; i <= ZONES; i++)); do cat "$D/z$i.err" >&2; done
  exit 1
fi

shim_pss=()
init_pss=()
for ((i = 1; i <= ZONES; i++)); do
  pid=$(rauha zone show "z$i" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["shim_pid"])')
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q rauha-shim; then
    echo "memory.sh: zone z$i reports shim_pid $pid, which is not a rauha-shim" >&2
    exit 1
  fi
  shim_pss+=("$(pss_kib "$pid")")
  # Each running task has a rauha-init (PID 1 of its pid namespace), a child of the shim: it
  # is runtime overhead too, so it is counted.
  for child in $(cat "/proc/$pid/task/$pid/children"); do
    if [ "$(cat "/proc/$child/comm")" = rauha-init ]; then init_pss+=("$(pss_kib "$child")"); fi
  done
done
if [ "${#init_pss[@]}" -ne "$ZONES" ]; then
  echo "memory.sh: expected $ZONES rauha-init processes, found ${#init_pss[@]}" >&2
  exit 1
fi
rauhad_pss=$(pss_kib "$DAEMON_PID")
add_row "rauha-shim (one per zone)" "measured" "${shim_pss[@]}"
add_row "rauha-init (one per task)" "measured; PID 1 of each task's pid namespace" "${init_pss[@]}"
add_row "rauhad" "measured; $ZONES zones, SQLite open" "$rauhad_pss"
rauha_sum=$(printf '%s\n' "${shim_pss[@]}" "${init_pss[@]}" "$rauhad_pss" | awk '{ s += $1 } END { print s }')

for ((i = 1; i <= ZONES; i++)); do rauha zone delete "z$i" --force >/dev/null; done
for pid in "${CLIENT_PIDS[@]}"; do wait "$pid" || true; done  # their tasks were killed
CLIENT_PIDS=()
stop_rauhad "$DAEMON_PID"
DAEMON_PID=""

# --- containerd + containerd-shim-runc-v2 ----------------------------------------------------
# build_busybox_image OUT.tar: an OCI image layout (one layer: static busybox) for ctr import.
build_busybox_image() {
  local out=$1 w="$D/image"
  mkdir -p "$w/layer/bin" "$w/oci/blobs/sha256"
  cp "$(command -v busybox)" "$w/layer/bin/busybox"
  ln -s busybox "$w/layer/bin/sleep"
  ln -s busybox "$w/layer/bin/sh"
  tar -C "$w/layer" --numeric-owner --owner=0 --group=0 -cf "$w/layer.tar" bin
  gzip -n -c "$w/layer.tar" >"$w/layer.tar.gz"
  local diff_id layer cfg man
  diff_id=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  layer=$(sha256sum "$w/layer.tar.gz" | cut -d' ' -f1)
  mv "$w/layer.tar.gz" "$w/oci/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$diff_id" >"$w/config.json"
  cfg=$(sha256sum "$w/config.json" | cut -d' ' -f1)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
    "$cfg" "$(stat -c %s "$w/config.json")" "$layer" "$(stat -c %s "$w/oci/blobs/sha256/$layer")" >"$w/manifest.json"
  man=$(sha256sum "$w/manifest.json" | cut -d' ' -f1)
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
    "$man" "$(stat -c %s "$w/manifest.json")" >"$w/oci/index.json"
  mv "$w/config.json" "$w/oci/blobs/sha256/$cfg"
  mv "$w/manifest.json" "$w/oci/blobs/sha256/$man"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
  tar -C "$w/oci" -cf "$out" oci-layout index.json blobs
}

stop_containerd() {
  local id
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_ containers ls -q 2>/dev/null); do
    for ((t = 0; t < 50; t++)); do
      ctr_ tasks delete "$id" >/dev/null 2>&1 && break
      ctr_ tasks ls -q 2>/dev/null | grep -qx "$id" || break
      sleep 0.1
    done
    ctr_ containers delete "$id" >/dev/null 2>&1 || true
  done
  ctr_ images rm localhost/busybox:latest >/dev/null 2>&1 || true
  kill -TERM "$CTRD_PID" 2>/dev/null || true
  wait "$CTRD_PID" 2>/dev/null || true
  CTRD_PID=""
  # containerd 1.6 keeps the runc state of a namespace outside its private state dir.
  rm -rf "/run/containerd/runc/$CTR_NS"
  if [ "$RUN_CONTAINERD_EXISTED" = 0 ]; then
    rmdir /run/containerd/runc /run/containerd/s /run/containerd 2>/dev/null || true
  fi
}

ctrd_note="not installed"
if [ "$WITH_CONTAINERD" = 0 ]; then
  ctrd_note="skipped (--no-containerd)"
elif command -v containerd >/dev/null && command -v ctr >/dev/null &&
  command -v containerd-shim-runc-v2 >/dev/null && command -v runc >/dev/null &&
  command -v busybox >/dev/null; then
  mkdir -p "$D/ctrd"
  cat >"$D/ctrd/config.toml" <<EOF
version = 2
root = "$D/ctrd/root"
state = "$D/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$D/ctrd/containerd.sock"
EOF
  containerd --config "$D/ctrd/config.toml" >"$D/ctrd/log" 2>&1 &
  CTRD_PID=$!
  for ((t = 0; t < 100; t++)); do [ -S "$D/ctrd/containerd.sock" ] && break; sleep 0.05; done
  ctrd_ok=1
  build_busybox_image "$D/image.tar"
  if ! ctr_ images import --base-name localhost/busybox "$D/image.tar" >"$D/ctrd/import.log" 2>&1; then
    cat "$D/ctrd/import.log" "$D/ctrd/log" >&2
    ctrd_ok=0
  fi
  # A relative cgroup path: runc puts each container below its own cgroup, never beside the
  # host's (ctr's default, /NAMESPACE/ID, is absolute).
  for ((i = 1; i <= ZONES && ctrd_ok; i++)); do
    if ! ctr_ run -d --null-io --fifo-dir "$D/ctrd/fifo" --cgroup "$TAG-c$i" \
      localhost/busybox:latest "c$i" /bin/sleep 30 >"$D/ctrd/run.log" 2>&1; then
      cat "$D/ctrd/run.log" >&2
      ctrd_ok=0
    fi
  done
  if [ "$ctrd_ok" = 1 ]; then
    # Shims reparent away from containerd; find them by namespace and our containerd's address.
    mapfile -t shim_pids < <(pgrep -f "containerd-shim-runc-v2 -namespace $CTR_NS -id c[0-9]+ -address $D/ctrd/containerd.sock" || true)
    if [ "${#shim_pids[@]}" -ne "$ZONES" ]; then
      echo "memory.sh: expected $ZONES containerd-shim-runc-v2 processes, found ${#shim_pids[@]}" >&2
      ctrd_ok=0
    fi
  fi
  if [ "$ctrd_ok" = 1 ]; then
    ctrd_shim_pss=()
    for pid in "${shim_pids[@]}"; do ctrd_shim_pss+=("$(pss_kib "$pid")"); done
    add_row "containerd-shim-runc-v2" "measured; containerd $(containerd --version | awk '{ print $3 }'), ctr run -d" "${ctrd_shim_pss[@]}"
    add_row "containerd" "measured; $ZONES containers, CRI plugin disabled" "$(pss_kib "$CTRD_PID")"
    ctrd_sum=$(printf '%s\n' "${ctrd_shim_pss[@]}" "$(pss_kib "$CTRD_PID")" | awk '{ s += $1 } END { print s }')
    ctrd_note=""
  else
    ctrd_note="FAILED (see stderr)"
    failed=1
  fi
  stop_containerd
fi
if [ -n "$ctrd_note" ]; then
  ROWS+=("containerd-shim-runc-v2|-|-|-|-|$ctrd_note")
fi

# --- report ----------------------------------------------------------------------------------
echo "# PSS of runtime processes with $ZONES sandboxes each running sleep 30; $(date -u +%Y-%m-%dT%H:%MZ); kernel $(uname -r)"
printf '%-28s %5s %14s %13s %13s  %s\n' process count "mean PSS KiB" "max PSS KiB" "sum KiB" notes
for r in "${ROWS[@]}"; do
  IFS='|' read -r l n mean max sum note <<<"$r"
  printf '%-28s %5s %14s %13s %13s  %s\n' "$l" "$n" "$mean" "$max" "$sum" "$note"
done
printf '%-28s %5s %14s %13s %13s  %s\n' "rauha total" "" "" "" "$rauha_sum" \
  "shims + inits + rauhad = $((rauha_sum / ZONES)) KiB per zone"
if [ -n "${ctrd_sum:-}" ]; then
  printf '%-28s %5s %14s %13s %13s  %s\n' "containerd total" "" "" "" "$ctrd_sum" \
    "shims + containerd = $((ctrd_sum / ZONES)) KiB per container"
fi
echo "# reference, measured earlier on this machine kind, not in this run:"
printf '%-28s %5s %14s %13s %13s  %s\n' "containerd-shim-runc-v2" 1 3482 - - "3.4 MiB per container (KERNEL.md)"
printf '%-28s %5s %14s %13s %13s  %s\n' "conmon" 1 451 - - "0.44 MiB per container, podman 4.3 (KERNEL.md)"

# --- leave nothing behind --------------------------------------------------------------------
left=$(find /sys/fs/cgroup -name "*$TAG*"; ls -d "/run/containerd/runc/$CTR_NS" 2>/dev/null || true
  [ "$RUN_CONTAINERD_EXISTED" = 1 ] || ls -d /run/containerd 2>/dev/null || true
  pgrep -f "$D" || true)
if [ -n "$left" ]; then
  echo "memory.sh: left behind: $left" >&2
  failed=1
fi
exit "$failed"
