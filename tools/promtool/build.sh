#!/usr/bin/env bash
# Builds promtool (Prometheus' rule checker and rule unit-test runner) from the Go
# module pinned in go.mod beside this script, into a cache folder keyed by that pin,
# and beside it chartcheck (chartcheck/ here): the PromQL metric-name lister and the
# strict ServiceMonitor/PodMonitor/PrometheusRule decoder the chart tests use.
#
#   build.sh          build when missing; the last line of stdout is the promtool path
#   build.sh --check  build nothing; print the path and exit 0 when it is built,
#                     exit 1 with a message on stderr otherwise
#
# Cache: ${TASKIQ_FLEET_CACHE:-$HOME/.cache/taskiq-fleet}/promtool/<version>-<key>/.
# Safe to run at the start of every test run: a finished build is a quick no-op.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="${1:-build}"
case "$mode" in
  build | --check) ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# The same toolchain, module graph and flags on every machine: no toolchain download,
# no go.mod rewrite, no VCS stamp from the surrounding work tree.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
module=github.com/prometheus/prometheus

# The Prometheus release is read from go.mod (module v0.309.1 is Prometheus 3.9.1),
# so the pin lives in one place.
module_version="$(awk -v m="$module" '$1 == m { print $2 }' "$here/go.mod")"
if [[ -z "$module_version" ]]; then
  echo "$here/go.mod does not require $module" >&2
  exit 1
fi
IFS=. read -r _ minor patch <<<"${module_version#v}"
release="$((minor / 100)).$((minor % 100)).$patch"

# The key covers every input that changes the binary: the module files, this
# script's flags and the Go toolchain doing the build.
key="$({ cat "$here/build.sh" "$here/go.mod" "$here/go.sum" "$here"/chartcheck/*.go
  go env GOVERSION GOOS GOARCH; } |
  sha256sum | cut -c1-12)"
out_dir="${TASKIQ_FLEET_CACHE:-$HOME/.cache/taskiq-fleet}/promtool/$release-$key"
binary="$out_dir/promtool"
stamp="$out_dir/complete"

if [[ -f "$stamp" ]]; then
  echo "$binary"
  exit 0
fi
if [[ "$mode" == "--check" ]]; then
  echo "promtool $release is not built in $out_dir; run: bash $here/build.sh" >&2
  exit 1
fi

mkdir -p "$out_dir"
# Two runs at once (parallel sessions) must not build into the same folder.
exec 9>"$out_dir/lock"
flock 9
if [[ -f "$stamp" ]]; then
  echo "$binary"
  exit 0
fi

build_one() {
  local name="$1" package="$2" ldflags="$3" started=$SECONDS
  echo "building $name ($package)" >&2
  (cd "$here" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out_dir/.$name.tmp" "$package")
  mv "$out_dir/.$name.tmp" "$out_dir/$name"
  echo "built $name in $((SECONDS - started)) s" >&2
}
echo "promtool $release from $module $module_version" >&2
build_one promtool "$module/cmd/promtool" "-X github.com/prometheus/common/version.Version=$release"
build_one chartcheck ./chartcheck ""
touch "$stamp"
echo "$binary"
