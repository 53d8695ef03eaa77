//go:build tools

// Keeps etcd's server command in this module's graph so `go mod tidy` records its dependencies.
package tools

import _ "go.etcd.io/etcd/server/v3"
