//go:build tools

// Package tools records kubeconform, built by scripts/install-tools.
package tools

import _ "github.com/yannh/kubeconform/cmd/kubeconform"
