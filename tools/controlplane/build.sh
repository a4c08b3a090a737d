#!/usr/bin/env bash
# Builds the binaries of the test control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok, helm) from the Go
# modules pinned beside this script, into a cache folder keyed by those pins.
#
#   build.sh          build what is missing; the last line of stdout is the bin folder
#   build.sh --check  build nothing; print the bin folder and exit 0 when it is
#                     complete, exit 1 with a message on stderr otherwise
#
# Cache root: ${TASKIQ_FLEET_CACHE:-$HOME/.cache/taskiq-fleet}/controlplane.
# Safe to run at the start of every test run: a finished build is a quick no-op.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="${1:-build}"
case "$mode" in
  build | --check) ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# The same toolchain, module graph and flags on every machine: no toolchain
# download, no go.mod rewrite, no VCS stamp from the surrounding work tree.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
# shellcheck source=versions.env
source "$here/versions.env"

# The key covers every input that changes the binaries: the pins, the module
# files, this script's build flags and the Go toolchain doing the build.
key_inputs() {
  local f
  for f in versions.env build.sh go.mod go.sum etcd/go.mod etcd/go.sum \
    kwok/go.mod kwok/go.sum helm/go.mod helm/go.sum; do
    printf '== %s\n' "$f"
    cat "$here/$f"
  done
  go env GOVERSION GOOS GOARCH
}
key="$(key_inputs | sha256sum | cut -c1-16)"
cache_root="${TASKIQ_FLEET_CACHE:-$HOME/.cache/taskiq-fleet}/controlplane"
out_dir="$cache_root/$key"
bin_dir="$out_dir/bin"
stamp="$out_dir/complete"

if [[ -f "$stamp" ]]; then
  echo "$bin_dir"
  exit 0
fi
if [[ "$mode" == "--check" ]]; then
  echo "control-plane binaries are not built in $bin_dir; run: bash $here/build.sh" >&2
  exit 1
fi

mkdir -p "$bin_dir"
# Two runs at once (parallel sessions) must not build into the same folder.
exec 9>"$out_dir/lock"
flock 9
if [[ -f "$stamp" ]]; then
  echo "$bin_dir"
  exit 0
fi

# A go.mod edited without versions.env (or the reverse) would build other
# versions than the ones the key and the version flags claim.
require_pin() {
  local module_dir="$1" module="$2" want="$3" got
  got="$(cd "$here/$module_dir" && go list -m -f '{{.Version}}' "$module")"
  if [[ "$got" != "$want" ]]; then
    echo "$module_dir/go.mod requires $module $got but versions.env pins $want" >&2
    exit 1
  fi
}
require_pin . k8s.io/kubernetes "$KUBERNETES_VERSION"
require_pin . k8s.io/client-go "$KUBERNETES_STAGING_VERSION"
require_pin etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
require_pin kwok sigs.k8s.io/kwok "$KWOK_VERSION"
require_pin helm helm.sh/helm/v3 "$HELM_VERSION"

kube_minor="${KUBERNETES_VERSION#v1.}"
kube_minor="${kube_minor%%.*}"
kube_version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_version_flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION"
  kube_version_flags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
  kube_version_flags+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=clean"
  kube_version_flags+=" -X $pkg.buildDate=$KUBERNETES_BUILD_DATE"
done

# One binary at a time: linking kube-apiserver alone takes several GB and both cores.
build_one() {
  local name="$1" module_dir="$2" package="$3" extra_ldflags="$4" started
  if [[ -x "$bin_dir/$name" ]]; then
    return
  fi
  started=$SECONDS
  echo "building $name ($package)" >&2
  (cd "$here/$module_dir" &&
    go build -trimpath -ldflags "-s -w $extra_ldflags" -o "$bin_dir/.$name.tmp" "$package")
  mv "$bin_dir/.$name.tmp" "$bin_dir/$name"
  echo "built $name in $((SECONDS - started)) s" >&2
}
build_one etcd etcd go.etcd.io/etcd/server/v3 ""
build_one kwok kwok sigs.k8s.io/kwok/cmd/kwok ""
build_one helm helm helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build_one "$cmd" . "k8s.io/kubernetes/cmd/$cmd" "$kube_version_flags"
done

# A wrong -X path is silently ignored by the linker: check what the binaries report.
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  reported="$("$bin_dir/$cmd" --version)"
  if [[ "$reported" != "Kubernetes $KUBERNETES_VERSION" ]]; then
    echo "$cmd reports '$reported', expected 'Kubernetes $KUBERNETES_VERSION'" >&2
    exit 1
  fi
done
reported="$("$bin_dir/kubectl" version --client)"
if [[ "$reported" != "Client Version: $KUBERNETES_VERSION"* ]]; then
  echo "kubectl reports '$reported', expected 'Client Version: $KUBERNETES_VERSION'" >&2
  exit 1
fi

cp "$here/versions.env" "$out_dir/versions.env"
touch "$stamp"
echo "$bin_dir"
