// Command mksample writes the demo image archive, testdata/images/sample.tar:
// docker.io/library/sample:latest for linux/amd64 and linux/arm64, with a
// gzip, a gzip and a zstd layer of 64 KiB each. The output is deterministic,
// so regenerating it changes no byte.
//
// Usage:
//
//	go run ./internal/testkit/imagegen/cmd/mksample [FILE]
//
// FILE defaults to testdata/images/sample.tar; - writes standard output.
package main

import (
	"bytes"
	_ "crypto/sha256" // go-digest needs the hash registered; imagegen does not import it
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgcrypt/imgcrypt/internal/testkit/imagegen"
)

// sample is the image the demo and the README use.
var sample = imagegen.Spec{
	Name:      "docker.io/library/sample:latest",
	Platforms: []string{"linux/amd64", "linux/arm64"},
	Layers:    []string{"gzip", "gzip", "zstd"},
	LayerSize: 64 << 10,
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "mksample: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	path := filepath.Join("testdata", "images", "sample.tar")
	switch len(args) {
	case 0:
	case 1:
		path = args[0]
	default:
		return fmt.Errorf("usage: mksample [FILE]")
	}
	var buf bytes.Buffer
	if err := imagegen.Write(&buf, sample); err != nil {
		return err
	}
	if path == "-" {
		_, err := os.Stdout.Write(buf.Bytes())
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
