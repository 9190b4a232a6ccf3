package testkit

import (
	"bytes"
	"debug/elf"
	"flag"
	"os"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/imgcrypt/imgcrypt/internal/testkit/imagegen"
)

// busyboxPath is where Debian's busybox-static installs its binary.
const busyboxPath = "/bin/busybox"

// busyboxCondition answers [busybox]: /bin/busybox exists and is statically
// linked, so it runs inside an image that holds nothing else.
func busyboxCondition() bool {
	f, err := elf.Open(busyboxPath)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// mkrunnable [-platforms p1,p2] [-layers gzip,zstd,tar] FILE NAME writes an
// OCI archive of an image containerd can run: layer 0 holds /bin/busybox
// (with sh, echo, cat and ls), every layer N holds /etc/imgcrypt-layer-N
// ("layer N"), and the command prints "hello from imgcrypt". The default
// is two gzip layers.
func cmdMkrunnable(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! mkrunnable")
	}
	fs := flag.NewFlagSet("mkrunnable", flag.ContinueOnError)
	plats := fs.String("platforms", "linux/amd64", "comma-separated platforms")
	layers := fs.String("layers", "gzip,gzip", "comma-separated layer compressions")
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
		ts.Fatalf("usage: mkrunnable [-platforms p,...] [-layers gzip,zstd,tar] FILE NAME")
	}
	if !busyboxCondition() {
		ts.Fatalf("mkrunnable: needs a static %s (Debian's busybox-static); guard the script with [busybox]", busyboxPath)
	}
	busybox, err := os.ReadFile(busyboxPath)
	ts.Check(err)
	var buf bytes.Buffer
	ts.Check(imagegen.WriteRunnable(&buf, imagegen.RunnableSpec{
		Name:      fs.Arg(1),
		Platforms: strings.Split(*plats, ","),
		Layers:    strings.Split(*layers, ","),
		Busybox:   busybox,
	}))
	ts.Check(os.WriteFile(ts.MkAbs(fs.Arg(0)), buf.Bytes(), 0o644))
}
