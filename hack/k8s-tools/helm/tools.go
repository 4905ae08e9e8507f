//go:build tools

// Package tools records helm (latest Helm 3), built by scripts/install-tools.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
