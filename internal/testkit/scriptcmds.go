package testkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rogpeppe/go-internal/testscript"
)

// filemode FILE prints the permission bits of FILE in octal (e.g. 600).
func cmdFileMode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: filemode FILE")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%o\n", fi.Mode().Perm())
}

// exitcode N PROG [ARG...] runs PROG like exec and fails unless it exits
// with code N. Its stdout and stderr stay available to stdout/stderr/cmp.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARG...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with code %d, want %d", args[1], got, want)
	}
}

// countfiles DIR prints how many regular files are under DIR.
func cmdCountFiles(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: countfiles DIR")
	}
	n := 0
	ts.Check(filepath.WalkDir(ts.MkAbs(args[0]), func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	}))
	fmt.Fprintf(ts.Stdout(), "%d\n", n)
}

// linkbin DIR NAME... creates DIR holding symlinks to the programs NAME
// found in the script's PATH, so that PATH=DIR hides every other program.
func cmdLinkBin(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: linkbin DIR NAME...")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	for _, name := range args[1:] {
		var found string
		for _, p := range filepath.SplitList(ts.Getenv("PATH")) {
			cand := filepath.Join(p, name)
			if fi, err := os.Stat(cand); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				found = cand
				break
			}
		}
		if found == "" {
			ts.Fatalf("linkbin: %s not found in PATH", name)
		}
		ts.Check(os.Symlink(found, filepath.Join(dir, name)))
	}
}

// jsoneach FILE KEY prints field KEY of every element of the JSON array in
// FILE, one per line (e.g. the digests of 'layerinfo --format json').
func cmdJSONEach(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsoneach FILE KEY")
	}
	var arr []map[string]any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &arr))
	for _, el := range arr {
		switch v := el[args[1]].(type) {
		case string:
			fmt.Fprintln(ts.Stdout(), v)
		default:
			out, _ := json.Marshal(v)
			fmt.Fprintln(ts.Stdout(), string(out))
		}
	}
}

// sharelayers STORE NAME rewrites the multi-platform image NAME in the OCI
// layout STORE so that its second platform uses the layers (and diff_ids)
// of its first: one layer blob then belongs to two platforms.
func cmdShareLayers(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sharelayers STORE NAME")
	}
	dir := ts.MkAbs(args[0])
	blobPath := func(d digest.Digest) string { return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded()) }
	read := func(d digest.Digest, v any) {
		data, err := os.ReadFile(blobPath(d))
		ts.Check(err)
		ts.Check(json.Unmarshal(data, v))
	}
	write := func(mediaType string, v any) ocispec.Descriptor {
		data, err := json.Marshal(v)
		ts.Check(err)
		d := digest.FromBytes(data)
		ts.Check(os.WriteFile(blobPath(d), data, 0o644))
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
	}

	var top ocispec.Index
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	ts.Check(err)
	ts.Check(json.Unmarshal(data, &top))
	entry := -1
	for i, m := range top.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] == args[1] {
			entry = i
		}
	}
	if entry < 0 {
		ts.Fatalf("sharelayers: %s not in %s", args[1], args[0])
	}
	var idx ocispec.Index
	read(top.Manifests[entry].Digest, &idx)
	if len(idx.Manifests) < 2 {
		ts.Fatalf("sharelayers: %s has fewer than two platforms", args[1])
	}
	var m0, m1 ocispec.Manifest
	var c0, c1 ocispec.Image
	read(idx.Manifests[0].Digest, &m0)
	read(idx.Manifests[1].Digest, &m1)
	read(m0.Config.Digest, &c0)
	read(m1.Config.Digest, &c1)
	c1.RootFS.DiffIDs = c0.RootFS.DiffIDs
	m1.Config = write(m1.Config.MediaType, c1)
	m1.Layers = m0.Layers
	d1 := write(idx.Manifests[1].MediaType, m1)
	idx.Manifests[1].Digest, idx.Manifests[1].Size = d1.Digest, d1.Size
	di := write(top.Manifests[entry].MediaType, idx)
	top.Manifests[entry].Digest, top.Manifests[entry].Size = di.Digest, di.Size
	data, err = json.Marshal(top)
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(dir, "index.json"), data, 0o644))
}

// manifest STORE NAME [PLATFORM] prints the raw JSON of the image NAME (as
// its org.opencontainers.image.ref.name in STORE/index.json says): its
// manifest, or its index unless PLATFORM names one of the index's manifests.
func cmdManifest(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: manifest STORE NAME [PLATFORM]")
	}
	dir := ts.MkAbs(args[0])
	readBlob := func(d digest.Digest) []byte {
		data, err := os.ReadFile(filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded()))
		ts.Check(err)
		return data
	}
	var top ocispec.Index
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	ts.Check(err)
	ts.Check(json.Unmarshal(data, &top))
	var desc *ocispec.Descriptor
	for i, m := range top.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] == args[1] {
			desc = &top.Manifests[i]
		}
	}
	if desc == nil {
		ts.Fatalf("manifest: %s not in %s", args[1], args[0])
	}
	blob := readBlob(desc.Digest)
	if len(args) == 3 {
		var idx ocispec.Index
		ts.Check(json.Unmarshal(blob, &idx))
		found := false
		for _, m := range idx.Manifests {
			if m.Platform != nil && platformString(m.Platform) == args[2] {
				blob, found = readBlob(m.Digest), true
				break
			}
		}
		if !found {
			ts.Fatalf("manifest: %s has no %s manifest", args[1], args[2])
		}
	}
	ts.Stdout().Write(blob)
	fmt.Fprintln(ts.Stdout())
}

func platformString(p *ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// waitentry DIR waits (up to 10 s) until directory DIR has an entry, e.g.
// until a background command has started writing into store/ingest.
func cmdWaitEntry(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitentry DIR")
	}
	dir := ts.MkAbs(args[0])
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	ts.Fatalf("waitentry: %s stayed empty for 10s", args[0])
}
