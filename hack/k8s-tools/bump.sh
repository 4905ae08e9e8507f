#!/usr/bin/env bash
# Pins another Kubernetes release: rewrites go.mod's require + replace block from that
# release's own go.mod (each ./staging/... module -> its published v0.Y.Z tag), then tidies.
#   hack/k8s-tools/bump.sh v1.34.4
# Check first that the Go proxy serves every staging module at v0.Y.Z (go list -m k8s.io/kms@v0.Y.Z ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
K=${1:?usage: bump.sh v1.Y.Z}
[[ $K =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "not a v1.Y.Z version: $K" >&2; exit 1; }
S="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
export GOFLAGS=-mod=mod
modfile=$(go mod download -json "k8s.io/kubernetes@$K" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
[[ -f $modfile ]] || { echo "cannot download k8s.io/kubernetes@$K" >&2; exit 1; }
go mod edit -require="k8s.io/kubernetes@$K"
sed -n '/^replace (/,/^)/p' "$modfile" | awk '/=> *\.\/staging/ { print $1 }' | while read -r m; do
  go list -m "$m@$S" >/dev/null 2>&1 || echo "warning: the Go proxy does not serve $m@$S" >&2
  go mod edit -replace="$m=$m@$S"
done
go mod tidy
echo "pinned k8s.io/kubernetes $K (staging $S); update the comment at the top of go.mod" >&2
