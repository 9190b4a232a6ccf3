// Command imgcrypt encrypts and decrypts container images; reached through a
// ctd-decoder symlink it is containerd's stream processor for encrypted layers.
package main

import (
	"os"

	"github.com/imgcrypt/imgcrypt/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args))
}
