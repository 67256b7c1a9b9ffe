#!/usr/bin/env bash
# Builds the Karmada control plane the end-to-end tests run, from the Karmada Go module:
# karmada-aggregated-apiserver (it serves cluster.karmada.io, which has no CRD),
# karmada-controller-manager, karmada-scheduler and karmada-webhook (the defaults and checks every
# PropagationPolicy gets), and copies the CRDs and the webhook configuration the module ships.
#
# Called by build.sh with its bin and source directories. Karmada is not part of their cache key
# (changing it would rebuild Kubernetes): its version is kept in karmada.version beside the
# binaries, and a different one is rebuilt.
#
#   tests/e2e/controlplane/build-karmada.sh BIN_DIR SRC_DIR
set -euo pipefail

KARMADA_VERSION="${KARMADA_VERSION:-v1.18.2}"
BIN="$1"
WORK="$2"
COMPONENTS=(aggregated-apiserver controller-manager scheduler webhook)
MANIFESTS="$BIN/karmada-manifests"

log() { printf '[karmada] %s\n' "$*" >&2; }

built() {
  [ "$(cat "$BIN/karmada.version" 2>/dev/null)" = "$KARMADA_VERSION" ] || return 1
  [ -s "$MANIFESTS/crds/kustomization.yaml" ] || return 1
  [ -s "$MANIFESTS/webhook-configuration.yaml" ] || return 1
  local c
  for c in "${COMPONENTS[@]}"; do [ -x "$BIN/karmada-$c" ] || return 1; done
}

if built; then exit 0; fi
log "building karmada $KARMADA_VERSION: ${COMPONENTS[*]}"
rm -f "$BIN/karmada.version"

# The module has no replace directives, so its own go.mod and go.sum build it as published: a copy
# of the downloaded source is built in place (the module cache is read-only).
dir=$(go mod download -json "github.com/karmada-io/karmada@$KARMADA_VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
src="$WORK/karmada-$KARMADA_VERSION"
if [ ! -f "$src/go.mod" ]; then
  rm -rf "$src.tmp"
  cp -r "$dir" "$src.tmp"
  chmod -R u+w "$src.tmp"
  mv "$src.tmp" "$src"
fi

v="github.com/karmada-io/karmada/pkg/version"
ldflags="-s -w -X $v.gitVersion=$KARMADA_VERSION -X $v.gitTreeState=clean"
ldflags+=" -X $v.buildDate=1970-01-01T00:00:00Z"
for c in "${COMPONENTS[@]}"; do
  # Kept when it says it is this version: an interrupted build resumes where it stopped.
  if [ -x "$BIN/karmada-$c" ] \
    && "$BIN/karmada-$c" version 2>/dev/null | grep -qF "GitVersion:\"$KARMADA_VERSION\""; then
    continue
  fi
  log "  go build karmada-$c"
  start=$SECONDS
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN/karmada-$c.tmp" "./cmd/$c")
  mv "$BIN/karmada-$c.tmp" "$BIN/karmada-$c"
  log "  karmada-$c built in $((SECONDS - start)) s"
done

rm -rf "$MANIFESTS" "$MANIFESTS.tmp"
mkdir -p "$MANIFESTS.tmp"
cp -r "$src/charts/karmada/_crds" "$MANIFESTS.tmp/crds"
cp "$src/artifacts/deploy/webhook-configuration.yaml" "$MANIFESTS.tmp/"
mv "$MANIFESTS.tmp" "$MANIFESTS"
echo "$KARMADA_VERSION" > "$BIN/karmada.version"
