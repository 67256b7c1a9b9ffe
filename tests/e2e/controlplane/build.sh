#!/usr/bin/env bash
# Builds the real Kubernetes control plane used by the end-to-end tests from Go modules:
# etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kwok, helm and the descheduler,
# and (build-karmada.sh) the Karmada control plane with its CRDs.
#
# Binaries are cached outside the repository, keyed by version, so a second run costs seconds.
# Nothing is downloaded except Go modules through the machine's ordinary Go module proxy.
#
#   tests/e2e/controlplane/build.sh            # build what is missing, print the bin directory
#   STELLAR_CARBON_TOOLS=/some/dir build.sh    # choose the cache location
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
DESCHEDULER_VERSION="${DESCHEDULER_VERSION:-v0.36.0}"

CACHE_ROOT="${STELLAR_CARBON_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/stellar-carbon}"
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
BIN="$CACHE_ROOT/$KEY/bin"
WORK="$CACHE_ROOT/$KEY/src"
mkdir -p "$BIN" "$WORK"

export GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"
export CGO_ENABLED=0

log() { printf '[control-plane] %s\n' "$*" >&2; }
have() { [ -x "$BIN/$1" ]; }

build_kubernetes() {
  if have kube-apiserver && have kube-scheduler && have kube-controller-manager; then return; fi
  log "building kube-apiserver, kube-scheduler, kube-controller-manager $K8S_VERSION"
  local mod="$WORK/kubernetes"
  mkdir -p "$mod"
  local k8s_dir
  k8s_dir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  {
    echo "module stellar-carbon.test/kubernetes"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # One replace per staging module, pinned to the matching published version.
    grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging/' "$k8s_dir/go.mod" \
      | awk -v v="$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
    echo
    echo "tool ("
    echo "    k8s.io/kubernetes/cmd/kube-apiserver"
    echo "    k8s.io/kubernetes/cmd/kube-scheduler"
    echo "    k8s.io/kubernetes/cmd/kube-controller-manager"
    echo ")"
  } > "$mod/go.mod"
  (cd "$mod" && go mod tidy)
  local pkg="k8s.io/component-base/version" cpkg="k8s.io/client-go/pkg/version"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w"
  for p in "$pkg" "$cpkg"; do
    ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for cmd in kube-apiserver kube-scheduler kube-controller-manager; do
    if have "$cmd"; then continue; fi
    log "  go build $cmd"
    (cd "$mod" && go build -ldflags "$ldflags" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$BIN/$cmd.tmp" "$BIN/$cmd"
  done
}

build_etcd() {
  if have etcd; then return; fi
  log "building etcd $ETCD_VERSION"
  local mod="$WORK/etcd"
  mkdir -p "$mod"
  cat > "$mod/go.mod" <<GOMOD
module stellar-carbon.test/etcd

go 1.26

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat > "$mod/main.go" <<'GO'
// Command etcd is the upstream etcd server, built from its Go module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$mod" && go mod tidy && go build -ldflags "-s -w" -o "$BIN/etcd.tmp" .)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

go_install() { # name module@version
  local name="$1" target="$2"
  if have "$name"; then return; fi
  log "installing $target"
  GOBIN="$BIN" go install -ldflags "-s -w" "$target"
}

kwok_stages() {
  # The kwok binary simulates nothing without Stage objects; kwokctl embeds the defaults below, the
  # bare binary needs them in its --config file. Taken from the same kwok version, so they match.
  local out="$BIN/kwok-stages.yaml"
  if [ -s "$out" ]; then return; fi
  log "writing kwok stages $KWOK_VERSION"
  local dir
  dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  local stage="$dir/kustomize/stage" first=1 f
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    if [ "$first" = 0 ]; then echo "---"; fi
    first=0
    cat "$stage/$f"
  done > "$out.tmp"
  mv "$out.tmp" "$out"
}

build_descheduler() {
  # Not part of the cache key (adding it would rebuild Kubernetes): the binary's version is kept
  # beside it and a different one is rebuilt.
  if have descheduler && [ "$(cat "$BIN/descheduler.version" 2>/dev/null)" = "$DESCHEDULER_VERSION" ]; then
    return
  fi
  log "building descheduler $DESCHEDULER_VERSION"
  local mod="$WORK/descheduler"
  mkdir -p "$mod"
  local dir
  dir=$(go mod download -json "sigs.k8s.io/descheduler@$DESCHEDULER_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  {
    echo "module stellar-carbon.test/descheduler"
    echo
    echo "go 1.26"
    echo
    echo "require sigs.k8s.io/descheduler $DESCHEDULER_VERSION"
    echo
    # go install refuses modules with replace directives; repeat the module's own here.
    grep -E '^replace ' "$dir/go.mod"
    echo
    echo "tool sigs.k8s.io/descheduler/cmd/descheduler"
  } > "$mod/go.mod"
  (cd "$mod" && go mod tidy)
  local v="sigs.k8s.io/descheduler/pkg/version"
  (cd "$mod" && go build -ldflags "-s -w -X $v.version=$DESCHEDULER_VERSION" \
    -o "$BIN/descheduler.tmp" sigs.k8s.io/descheduler/cmd/descheduler)
  mv "$BIN/descheduler.tmp" "$BIN/descheduler"
  echo "$DESCHEDULER_VERSION" > "$BIN/descheduler.version"
}

build_etcd
go_install kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
kwok_stages
go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
build_kubernetes
build_descheduler
bash "$(dirname "${BASH_SOURCE[0]}")/build-karmada.sh" "$BIN" "$WORK"

for b in etcd kube-apiserver kube-scheduler kube-controller-manager kwok helm descheduler \
         karmada-aggregated-apiserver karmada-controller-manager karmada-scheduler karmada-webhook; do
  have "$b" || { log "missing $b after build"; exit 1; }
done
[ -s "$BIN/kwok-stages.yaml" ] || { log "missing kwok-stages.yaml after build"; exit 1; }
echo "$BIN"
