#!/usr/bin/env bash
# Builds the container image without a daemon or a registry, then starts each service inside it.
#
# No base image can be pulled where this runs, so the base is a Debian bookworm root filesystem
# made with debootstrap (Debian's own packages), cached by date; buildah builds the Dockerfile on
# it with chroot isolation (no OCI runtime, no cgroups) and the vfs storage driver (no overlay
# mount). Then the reporter and the webhook (TLS from a throwaway CA) run inside the image as its
# non-root user on loopback ports and must answer their health endpoints.
#
# Needs root (debootstrap, buildah), buildah and debootstrap: CI installs them; on a laptop use
# Docker with a registry instead (`docker build .`).
#
#   tools/image.sh                  # build stellar-carbon:dev and smoke-run it
set -euo pipefail
cd "$(dirname "$0")/.."

export STORAGE_DRIVER=vfs
IMAGE="${IMAGE:-localhost/stellar-carbon:dev}"
CACHE="${STELLAR_CARBON_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/stellar-carbon}/image"
BASE="localhost/stellar-carbon-base:bookworm"
PYTHON="${PYTHON:-.venv/bin/python}"
log() { printf '[image] %s\n' "$*" >&2; }

for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { log "$tool is needed (Debian: apt-get install $tool)"; exit 1; }
done

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  rootfs="$CACHE/bookworm-rootfs"
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    log "debootstrap bookworm (minbase, python3) into $rootfs"
    rm -rf "$rootfs"
    mkdir -p "$CACHE"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" >&2
    ln -sf python3 "$rootfs/usr/bin/python"
    # The build installs from PyPI through the host's network; give pip the host's trust store
    # when it has one (a TLS-inspecting proxy's CA lives there).
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
      cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    fi
  fi
  log "committing the base image $BASE"
  ctr=$(buildah from scratch)
  cp -a "$rootfs/." "$(buildah mount "$ctr")/"
  buildah umount "$ctr" >/dev/null
  buildah commit --quiet "$ctr" "$BASE" >/dev/null
  buildah rm "$ctr" >/dev/null
fi

log "building $IMAGE"
buildah bud --quiet --isolation chroot --network host --build-arg "BASE=$BASE" -t "$IMAGE" . >&2

work=$(mktemp -d)
containers=()
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ctr in "${containers[@]}"; do buildah rm "$ctr" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # name, then env assignments; runs the named console script in a fresh container
  local name="$1"; shift
  local ctr args=()
  ctr=$(buildah from --quiet "$IMAGE")
  containers+=("$ctr")
  for assignment in "$@"; do args+=(--env "$assignment"); done
  buildah run --isolation chroot --network host --user 65532:65532 \
    --volume "$work:/run/stellar-carbon:ro" "${args[@]}" "$ctr" -- "$name" > "$work/$name.log" 2>&1 &
  pids+=("$!")
}

wait_for() { # description, url, curl options...
  local what="$1" url="$2"; shift 2
  for _ in $(seq 1 150); do
    if curl -fsS "$@" "$url" >/dev/null 2>&1; then log "$what answers"; return 0; fi
    sleep 0.2
  done
  log "$what did not answer at $url"; cat "$work"/*.log >&2; return 1
}

reporter_port=$(free_port)
start stellar-carbon-reporter \
  STELLAR_CARBON_REPORTER_HOST=127.0.0.1 \
  "STELLAR_CARBON_REPORTER_PORT=$reporter_port" \
  STELLAR_CARBON_REPORTER_INVENTORY=demo
wait_for "reporter /health" "http://127.0.0.1:$reporter_port/api/v1/sustainability/health"

"$PYTHON" -m webhook.devcert "$work/certs" 2>/dev/null
chmod -R a+rX "$work"
port=$(free_port) health_port=$(free_port)
start stellar-carbon-webhook \
  STELLAR_CARBON_WEBHOOK_BIND_ADDRESS=127.0.0.1 \
  "STELLAR_CARBON_WEBHOOK_PORT=$port" \
  "STELLAR_CARBON_WEBHOOK_HEALTH_PORT=$health_port" \
  STELLAR_CARBON_WEBHOOK_INVENTORY=demo \
  STELLAR_CARBON_WEBHOOK_TLS_MODE=files \
  STELLAR_CARBON_WEBHOOK_CERT_DIR=/run/stellar-carbon/certs
wait_for "webhook /readyz" "http://127.0.0.1:$health_port/readyz"
curl -fsS --cacert "$work/certs/ca.crt" -H 'Content-Type: application/json' \
  --data @examples/admissionreview-read-replica.json "https://localhost:$port/mutate" \
  | "$PYTHON" -c 'import json,sys; r=json.load(sys.stdin)["response"]; assert r["allowed"] and r.get("patch"), r; print("[image] webhook /mutate patched the example read replica", file=sys.stderr)'
log "$IMAGE built and both services ran in it"
