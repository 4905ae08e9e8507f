// Command etcd is the etcd server (go.etcd.io/etcd/server/v3/etcdmain), built from
// the Go module proxy by scripts/install-tools for the local control plane.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
