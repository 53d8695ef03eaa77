#!/usr/bin/env bash
# Builds the control plane Aurora is tested on from Go modules, because no Docker and no release download
# is available: kube-apiserver, kube-controller-manager, kube-scheduler and kubectl at the pinned
# Kubernetes release, etcd 3.5, and kwok/kwokctl, plus kwok's Stage CRD and default stages taken from the
# kwok module; Prometheus with promtool, which the HealingPolicy tests query and the chart's rules are
# checked with; the Argo CD health-check runner (hack/argocd-health, on gopher-lua); helm; and the CRDs
# of prometheus-operator and Argo CD that the chart's options and the examples need. Output goes to .tools/
# (git-ignored); a component already built at the pinned version is skipped. Usage: hack/build-control-plane.sh [--force]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here="$root/hack/control-plane"
# shellcheck source=control-plane/versions.env
. "$here/versions.env"
out="${AURORA_TOOLS_DIR:-$root/.tools}/bin"
logs="${AURORA_TOOLS_DIR:-$root/.tools}/logs"
force=false
[ "${1:-}" = "--force" ] && force=true
mkdir -p "$out" "$logs"

export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOTOOLCHAIN=local
started=$(date +%s)

# stamp NAME -> the version recorded when NAME was last built
built_version() { cat "$out/.$1.version" 2>/dev/null || true; }
up_to_date() {
  local name=$1 version=$2
  ! $force && [ -x "$out/$name" ] && [ "$(built_version "$name")" = "$version" ]
}
mark_built() { echo "$2" >"$out/.$1.version"; }

# module_field MODULE@VERSION FIELD: a field (Dir, GoMod) of what `go mod download -json` fetched; when
# the download fails, go's own error (it writes it into the JSON), and a failure.
module_field() {
  local json value
  json=$(cd "${TMPDIR:-/tmp}" && go mod download -json "$1" 2>&1) || true
  value=$(printf '%s\n' "$json" | sed -n "s/^[[:space:]]*\"$2\": \"\\(.*\\)\",\$/\\1/p")
  if [ -z "$value" ]; then
    echo "✗ go mod download $1 failed:" >&2
    printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/  \1/p' >&2
    return 1
  fi
  printf '%s\n' "$value"
}

# Runs a build command in the background and prints a progress line every 20 s: elapsed time and how
# many packages the Go compiler has reported (go build -v prints one line per package it compiles).
with_progress() {
  local label=$1 log=$2
  shift 2
  local t0 pid
  t0=$(date +%s)
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null &&
      printf '  … %s: %ds, %s packages compiled\n' "$label" "$(($(date +%s) - t0))" "$(wc -l <"$log" | tr -d ' ')"
  done
  if ! wait "$pid"; then
    echo "✗ $label failed; last lines of $log:" >&2
    tail -30 "$log" >&2
    exit 1
  fi
  printf '✓ %s built in %ds\n' "$label" "$(($(date +%s) - t0))"
}

kube_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
need_kube=false
for b in "${kube_bins[@]}"; do up_to_date "$b" "$KUBE_VERSION" || need_kube=true; done
if $need_kube; then
  echo "[1/8] Kubernetes $KUBE_VERSION (${kube_bins[*]}); a cold build takes 20-40 minutes on two cores"
  minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  pkgs=()
  for b in "${kube_bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  (cd "$here/kubernetes" && with_progress "Kubernetes $KUBE_VERSION" "$logs/kubernetes.log" \
    go build -v -ldflags "$ldflags" -o "$out/" "${pkgs[@]}")
  for b in "${kube_bins[@]}"; do mark_built "$b" "$KUBE_VERSION"; done
else
  echo "[1/8] Kubernetes $KUBE_VERSION already built"
fi

if ! up_to_date etcd "$ETCD_VERSION"; then
  echo "[2/8] etcd $ETCD_VERSION"
  (cd "$here/etcd" && with_progress "etcd $ETCD_VERSION" "$logs/etcd.log" \
    go build -v -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  mark_built etcd "$ETCD_VERSION"
else
  echo "[2/8] etcd $ETCD_VERSION already built"
fi

if ! up_to_date kwok "$KWOK_VERSION" || ! up_to_date kwokctl "$KWOK_VERSION"; then
  echo "[3/8] kwok $KWOK_VERSION (kwok, kwokctl)"
  kwok_ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
  kwok_ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}"
  with_progress "kwok $KWOK_VERSION" "$logs/kwok.log" \
    env GOBIN="$out" go install -v -ldflags "$kwok_ldflags" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  mark_built kwok "$KWOK_VERSION"
  mark_built kwokctl "$KWOK_VERSION"
else
  echo "[3/8] kwok $KWOK_VERSION already built"
fi

# kwok runs with its Stage CRD enabled so tests can add stages at run time; the CRD and the default node
# and pod stages ship in the kwok module, so they are copied from there rather than kept in this repo.
assets="${AURORA_TOOLS_DIR:-$root/.tools}/kwok"
if ! $force && [ "$(cat "$assets/.version" 2>/dev/null)" = "$KWOK_VERSION" ]; then
  echo "[4/8] kwok $KWOK_VERSION stages already in place"
else
  echo "[4/8] kwok $KWOK_VERSION Stage CRD and default stages"
  kwok_dir=$(module_field "sigs.k8s.io/kwok@$KWOK_VERSION" Dir)
  [ -d "$kwok_dir/kustomize" ] || { echo "✗ kwok module not found at '$kwok_dir'" >&2; exit 1; }
  mkdir -p "$assets"
  install -m 0644 "$kwok_dir/kustomize/crd/bases/kwok.x-k8s.io_stages.yaml" "$assets/stages-crd.yaml"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"
    cat "$kwok_dir/kustomize/stage/$f"
  done >"$assets/default-stages.yaml"
  echo "$KWOK_VERSION" >"$assets/.version"
  echo "✓ kwok stages in $assets"
fi

if ! up_to_date prometheus "$PROMETHEUS_VERSION" || ! up_to_date promtool "$PROMETHEUS_VERSION"; then
  echo "[5/8] Prometheus $PROMETHEUS_VERSION (prometheus, promtool); a cold build takes 5-10 minutes"
  # remove_all_sd: only static targets are scraped here, so the cloud service-discovery plugins (and
  # their large SDKs) are left out of the build.
  prom_ldflags="-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v}"
  (cd "$here/prometheus" && with_progress "Prometheus $PROMETHEUS_VERSION" "$logs/prometheus.log" \
    go build -v -tags remove_all_sd -ldflags "$prom_ldflags" -o "$out/" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool)
  mark_built prometheus "$PROMETHEUS_VERSION"
  mark_built promtool "$PROMETHEUS_VERSION"
else
  echo "[5/8] Prometheus $PROMETHEUS_VERSION already built"
fi

# The Argo CD health-check runner (gopher-lua, the interpreter Argo CD embeds), built from hack/argocd-health.
runner_version=$(cat "$root/hack/argocd-health/go.mod" "$root/hack/argocd-health/main.go" | sha256sum | cut -c1-16)
if ! up_to_date argocd-health "$runner_version"; then
  echo "[6/8] argocd-health (gopher-lua $GOPHER_LUA_VERSION)"
  (cd "$root/hack/argocd-health" && with_progress "argocd-health" "$logs/argocd-health.log" \
    go build -v -ldflags "-s -w" -o "$out/argocd-health" .)
  mark_built argocd-health "$runner_version"
else
  echo "[6/8] argocd-health already built"
fi

# helm, which the tests lint and render the chart with and the sandbox installs Aurora from; its module has
# no replace lines, so go install builds it at the pinned version.
# As helm's release builds do, the Kubernetes version it assumes when no cluster is asked (helm template,
# helm lint) is the one of the client-go it is built with, not the library's default of 1.20.
helm_stamp="$HELM_VERSION k8s-from-client-go"
if ! up_to_date helm "$helm_stamp"; then
  echo "[7/8] helm $HELM_VERSION; a cold build takes 3-6 minutes"
  helm_mod=$(module_field "helm.sh/helm/v3@$HELM_VERSION" GoMod)
  k8s_minor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$helm_mod" | head -1)
  [ -n "$k8s_minor" ] || { echo "✗ no k8s.io/client-go in $helm_mod" >&2; exit 1; }
  helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  with_progress "helm $HELM_VERSION" "$logs/helm.log" \
    env GOBIN="$out" go install -v -ldflags "$helm_ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mark_built helm "$helm_stamp"
else
  echo "[7/8] helm $HELM_VERSION already built"
fi

# The CRDs of the tools the chart and the examples integrate with, so what the chart renders with every
# option on (ServiceMonitor, PrometheusRule) and the Argo CD Applications apply to the real API server.
# Both ship in their projects' Go modules, so they are copied from there rather than kept in this repo.
crds="${AURORA_TOOLS_DIR:-$root/.tools}/crds"
crds_version="$PROMETHEUS_OPERATOR_VERSION $ARGOCD_VERSION"
if ! $force && [ "$(cat "$crds/.version" 2>/dev/null)" = "$crds_version" ]; then
  echo "[8/8] prometheus-operator and Argo CD CRDs already in place"
else
  echo "[8/8] prometheus-operator $PROMETHEUS_OPERATOR_VERSION and Argo CD $ARGOCD_VERSION CRDs"
  promop=$(module_field "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" Dir)
  argocd=$(module_field "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" Dir)
  [ -d "$promop/example/prometheus-operator-crd" ] || { echo "✗ prometheus-operator module not found at '$promop'" >&2; exit 1; }
  [ -d "$argocd/manifests/crds" ] || { echo "✗ Argo CD module not found at '$argocd'" >&2; exit 1; }
  mkdir -p "$crds/prometheus-operator" "$crds/argocd"
  for k in servicemonitors prometheusrules podmonitors; do
    install -m 0644 "$promop/example/prometheus-operator-crd/monitoring.coreos.com_$k.yaml" "$crds/prometheus-operator/"
  done
  for k in application appproject; do
    install -m 0644 "$argocd/manifests/crds/$k-crd.yaml" "$crds/argocd/"
  done
  echo "$crds_version" >"$crds/.version"
  echo "✓ CRDs in $crds"
fi

echo "Control plane ready in $out ($(($(date +%s) - started))s):"
"$out/kube-apiserver" --version
"$out/kubectl" version --client | sed -n 1p
"$out/etcd" --version | sed -n 1p
"$out/kwok" --version 2>/dev/null | sed -n 1p || echo "kwok $(built_version kwok)"
"$out/prometheus" --version 2>&1 | sed -n 1p
"$out/helm" version --short
