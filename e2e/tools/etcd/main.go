// Command etcd is the etcd server built from go.etcd.io/etcd/server/v3 for
// Sidelight's e2e control plane (see e2e/build-binaries).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
