// Command mksample writes the demo image archive, testdata/images/sample.tar:
// docker.io/library/sample:latest for linux/amd64 and linux/arm64, with a
// gzip, a gzip and a zstd layer of 64 KiB each. The output is deterministic,
// so regenerating it changes no byte.
//
// Usage:
//
//	go run ./internal/testkit/imagegen/cmd/mksample [-name N] [-layers tar,...] [-size BYTES] [FILE]
//
// FILE defaults to testdata/images/sample.tar; - writes standard output.
// The flags make other images, such as the large one hack/bench-registry.sh
// moves; they default to the sample's.
package main

import (
	"bytes"
	_ "crypto/sha256" // go-digest needs the hash registered; imagegen does not import it
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
	fs := flag.NewFlagSet("mksample", flag.ContinueOnError)
	spec := sample
	fs.StringVar(&spec.Name, "name", spec.Name, "image name")
	layers := fs.String("layers", strings.Join(spec.Layers, ","), "layer compressions: gzip, zstd or tar")
	plats := fs.String("platforms", strings.Join(spec.Platforms, ","), "platforms")
	fs.IntVar(&spec.LayerSize, "size", spec.LayerSize, "filler bytes per layer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	spec.Layers = strings.Split(*layers, ",")
	spec.Platforms = strings.Split(*plats, ",")
	path := filepath.Join("testdata", "images", "sample.tar")
	switch fs.NArg() {
	case 0:
	case 1:
		path = fs.Arg(0)
	default:
		return fmt.Errorf("usage: mksample [-name N] [-layers L] [-platforms P] [-size BYTES] [FILE]")
	}
	var buf bytes.Buffer
	if err := imagegen.Write(&buf, spec); err != nil {
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
