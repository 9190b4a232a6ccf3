package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// flipbyte FILE OFFSET inverts every bit of the byte at OFFSET in FILE (a
// negative OFFSET counts from the end), e.g. to tamper with a stored blob.
// FILE must be writable: store blobs are read-only, chmod them first. The
// path is cleaned lexically, so $CONTAINERD_ADDRESS/../root/... names the
// private daemon's directory although its socket is not a directory.
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	path := filepath.Clean(ts.MkAbs(args[0]))
	off, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	ts.Check(err)
	defer f.Close()
	fi, err := f.Stat()
	ts.Check(err)
	if off < 0 {
		off += fi.Size()
	}
	if off < 0 || off >= fi.Size() {
		ts.Fatalf("flipbyte: offset %s outside %s (%d bytes)", args[1], args[0], fi.Size())
	}
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	ts.Check(err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	ts.Check(err)
}

// envfrom VAR FILE [REGEXP] sets VAR to the first line of FILE or, with
// REGEXP, to its first match in FILE (its first group if it has one), so
// that later commands can name what an earlier one printed (e.g. a layer
// digest from 'cp stdout'). It fails when REGEXP does not match.
func cmdEnvFrom(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: envfrom VAR FILE [REGEXP]")
	}
	data := ts.ReadFile(args[1])
	var val string
	if len(args) == 2 {
		val, _, _ = strings.Cut(data, "\n")
	} else {
		re, err := regexp.Compile(args[2])
		ts.Check(err)
		m := re.FindStringSubmatch(data)
		if m == nil {
			ts.Fatalf("envfrom: no match for %q in %s", args[2], args[1])
		}
		val = m[0]
		if len(m) > 1 {
			val = m[1]
		}
	}
	ts.Setenv(args[0], val)
	fmt.Fprintf(ts.Stdout(), "%s\n", val)
}
