//go:build tools

// Keeps prometheus and promtool in this module's graph so `go mod tidy` records their dependencies and
// go.sum pins every one of them, the way the Kubernetes wrapper beside it does.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
