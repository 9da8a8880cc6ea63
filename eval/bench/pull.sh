#!/usr/bin/env bash
# Image pull from a registry on loopback: rauha (`rauha image pull`: verified, parallel layers,
# into its content store) vs skopeo (`skopeo copy` to an OCI layout; then `umoci unpack` of it
# as "pull + unpack") vs containerd (`ctr image pull`, which also unpacks into its overlayfs
# snapshotter), and rauha's pull + unpack (`rauha sandbox --image` on an image it does not hold:
# pull, parallel unpack into the layer cache, one task on the overlay). One private
# docker-registry serves one multi-layer image (busybox plus four layers of this host's shared
# libraries, gzip); every contender pulls it N times, interleaved (one sample of each per round,
# order rotated), starting each sample with nothing cached.
#
#   eval/bench/pull.sh [-n N] [--build-dir DIR]      (as root)
#
# Prints one table: contender, n, median ms, min ms, what the time covers. Everything it starts
# (rauhad, docker-registry, containerd) is stopped by PID and its directory removed.
set -euo pipefail

N=5
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
source "$REPO/eval/bench/lib.sh"
parse_bench_args "${BASH_SOURCE[0]}" -n=N -- "$@"
require_root pull.sh "rauhad, containerd"
RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
CLI="$BUILD/rauha-cli/rauha"
require_built pull.sh "$BUILD" "rauhad rauha-shim rauha" "$RAUHAD" "$SHIM" "$CLI"
for tool in docker-registry skopeo python3; do
  command -v "$tool" >/dev/null || { echo "pull.sh: $tool missing (deploy/install-deps.sh)" >&2; exit 1; }
done

TAG="rauha-bench-pull-$$"
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
[ -n "$D" ] && [ -d "$D" ] || { echo "pull.sh: mktemp failed" >&2; exit 1; }
DAEMON_PID=""
REGISTRY_PID=""
CTRD_PID=""
CTR_NS="$TAG"
# containerd 1.6 creates /run/containerd whatever its config says; remove it only if we did.
RUN_CONTAINERD_EXISTED=0
[ -e /run/containerd ] && RUN_CONTAINERD_EXISTED=1

rauha() { "$CLI" --socket "$D/rauhad.sock" "$@"; }
ctr_() { ctr --address "$D/ctrd/containerd.sock" --namespace "$CTR_NS" "$@"; }

cleanup() {
  set +e
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID"
  if [ -n "$CTRD_PID" ]; then
    kill -TERM "$CTRD_PID"
    wait "$CTRD_PID"
    # Snapshots a killed pull may have left mounted.
    grep -o "$D/ctrd[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount "$m"; done
    if [ "$RUN_CONTAINERD_EXISTED" = 0 ]; then
      rmdir /run/containerd/runc /run/containerd/s /run/containerd 2>/dev/null
    fi
  fi
  [ -n "$REGISTRY_PID" ] && { kill -TERM "$REGISTRY_PID"; wait "$REGISTRY_PID"; } 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the registry and the image ---------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$D/registry"
printf '%s\n' "version: 0.1" "log:" "  level: error" "  accesslog:" "    disabled: true" \
  "storage:" "  filesystem:" "    rootdirectory: $D/registry/storage" \
  "http:" "  addr: 127.0.0.1:$PORT" >"$D/registry/config.yml"
docker-registry serve "$D/registry/config.yml" >"$D/registry/log" 2>&1 &
REGISTRY_PID=$!
for ((t = 0; t < 100; t++)); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null && break
  sleep 0.05
done

python3 "$REPO/eval/bench/pull_image.py" "$D/layout"
IMAGE="127.0.0.1:$PORT/bench/libs:v1"
skopeo copy --quiet --dest-tls-verify=false "oci:$D/layout:v1" "docker://$IMAGE"

# --- the contenders ---------------------------------------------------------------------------
start_rauhad "$RAUHAD" "$SHIM" "$D" "$TAG" --warm-zones 0 # pulls need no zones

contenders=(rauha rauha+unpack skopeo)
have_umoci=0
if command -v umoci >/dev/null; then
  have_umoci=1
  contenders+=(skopeo+umoci)
fi
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
  mkdir -p "$D/ctrd"
  printf '%s\n' "version = 2" "root = \"$D/ctrd/root\"" "state = \"$D/ctrd/state\"" \
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]' "[grpc]" \
    "  address = \"$D/ctrd/containerd.sock\"" >"$D/ctrd/config.toml"
  containerd --config "$D/ctrd/config.toml" >"$D/ctrd/log" 2>&1 &
  CTRD_PID=$!
  for ((t = 0; t < 100; t++)); do [ -S "$D/ctrd/containerd.sock" ] && break; sleep 0.05; done
  contenders+=(ctr)
fi

now_ns() { date +%s%N; }
# run_one NAME: one cold pull; prints elapsed ms. Removal is outside the timed part.
run_one() {
  local t0 t1
  case "$1" in
    rauha)
      t0=$(now_ns)
      rauha image pull --quiet "$IMAGE" >/dev/null
      t1=$(now_ns)
      rauha image rm "$IMAGE" >/dev/null ;;
    rauha+unpack)
      # The image is not held: the CLI pulls it (progress on stderr), rauhad unpacks its layers
      # (in parallel) into the layer cache and runs one task on the overlay of them.
      t0=$(now_ns)
      # (A failure is recorded in a file: this runs in a command substitution's subshell.)
      rauha sandbox --image "$IMAGE" -- /bin/busybox true >/dev/null 2>"$D/sandbox.err" ||
        cp "$D/sandbox.err" "$D/sandbox.failed"
      t1=$(now_ns)
      rauha image rm "$IMAGE" >/dev/null ;;
    skopeo)
      t0=$(now_ns)
      skopeo copy --quiet --src-tls-verify=false "docker://$IMAGE" "oci:$D/sk:v1"
      t1=$(now_ns)
      rm -rf "$D/sk" ;;
    skopeo+umoci)
      t0=$(now_ns)
      skopeo copy --quiet --src-tls-verify=false "docker://$IMAGE" "oci:$D/sk:v1"
      umoci unpack --image "$D/sk:v1" "$D/bundle" >/dev/null
      t1=$(now_ns)
      rm -rf "$D/sk" "$D/bundle" ;;
    ctr)
      t0=$(now_ns)
      ctr_ image pull --plain-http "$IMAGE" >/dev/null
      t1=$(now_ns)
      ctr_ image rm --sync "$IMAGE" >/dev/null ;;
  esac
  echo $(((t1 - t0) / 1000000))
}

declare -A samples
for ((round = 0; round < N; round++)); do
  k=${#contenders[@]}
  for ((j = 0; j < k; j++)); do
    c=${contenders[$(((j + round) % k))]}
    samples[$c]+="$(run_one "$c") "
  done
done

if [ -e "$D/sandbox.failed" ]; then
  echo "pull.sh: rauha sandbox --image failed: $(cat "$D/sandbox.failed")" >&2
  exit 1
fi
# rauha holds nothing once its image is removed.
left=$(find "$D/state/blobs" -type f | wc -l)
[ "$left" -eq 0 ] || { echo "pull.sh: rauha left $left blob files" >&2; exit 1; }
left=$(find "$D/state/layers" -mindepth 2 -maxdepth 2 | wc -l)
[ "$left" -eq 0 ] || { echo "pull.sh: rauha left $left unpacked layers" >&2; exit 1; }

printf '%-14s %3s %10s %8s  %s\n' contender n "median ms" "min ms" "covers"
for c in "${contenders[@]}"; do
  read -r -a xs <<<"${samples[$c]}"
  sorted=$(printf '%s\n' "${xs[@]}" | sort -n)
  median=$(echo "$sorted" | sed -n "$(((${#xs[@]} + 1) / 2))p")
  min=$(echo "$sorted" | head -1)
  case "$c" in
    rauha) what="pull, every blob sha256-verified while streaming, into the content store" ;;
    rauha+unpack) what="sandbox --image on a missing image: pull + unpack (parallel) + one task on its overlay" ;;
    skopeo) what="pull into an OCI layout (digests verified)" ;;
    skopeo+umoci) what="pull + unpack to a bundle rootfs" ;;
    ctr) what="pull + unpack into the overlayfs snapshotter" ;;
  esac
  printf '%-14s %3s %10s %8s  %s\n' "$c" "${#xs[@]}" "$median" "$min" "$what"
done
[ "$have_umoci" = 1 ] || echo "(umoci not installed: no skopeo+umoci row)"
