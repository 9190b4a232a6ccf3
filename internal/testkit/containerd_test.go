package testkit

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		// The daemons need a decoder on PATH; these tests never decrypt.
		"ctd-decoder": stubDecoder,
	})
}

// stubDecoder stands in for the decoder: it notes the media type it was
// run for in DIR/calls (DIR from --decryption-keys-path DIR) and passes the
// layer through unchanged.
func stubDecoder() {
	if len(os.Args) != 3 || os.Args[1] != "--decryption-keys-path" {
		fmt.Fprintf(os.Stderr, "ctd-decoder stub: unexpected arguments %q\n", os.Args[1:])
		os.Exit(1)
	}
	f, err := os.OpenFile(filepath.Join(os.Args[2], "calls"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		fmt.Fprintln(f, os.Getenv("STREAM_PROCESSOR_MEDIATYPE"))
		err = f.Close()
	}
	if err == nil {
		_, err = io.Copy(os.Stdout, os.Stdin)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctd-decoder stub:", err)
		os.Exit(1)
	}
}

// serviceScripts leave a running container behind on purpose, and stop one
// daemon explicitly and the others through the script's deferred cleanup.
var serviceScripts = map[string]string{
	"leftovers.txtar": `
[!containerd] skip
[!busybox] skip
mkrunnable img.tar docker.io/library/kit:1

containerd start -name a
remember
exec ctr images import img.tar
exec ctr run -d docker.io/library/kit:1 sleeper /bin/busybox sleep 600
exec ctr tasks ls
stdout 'sleeper.*RUNNING'
containerd stop -name a
checkgone

# Left running for the deferred stop.
containerd start -name b
remember
exec ctr images import img.tar
exec ctr run -d docker.io/library/kit:1 sleeper /bin/busybox sleep 600

# A daemon that died leaves its shim and container to the kill path.
containerd start -name d
remember
exec ctr images import img.tar
exec ctr run -d docker.io/library/kit:1 sleeper /bin/busybox sleep 600
killdaemon d
containerd stop -name d
checkgone

[containerd2] containerd start -version 2 -name c
[containerd2] remember
[containerd2] exec ctr images import img.tar
[containerd2] exec ctr run -d docker.io/library/kit:1 sleeper /bin/busybox sleep 600
[containerd2] exec ctr tasks ls
[containerd2] stdout 'sleeper.*RUNNING'
[containerd2] shimfrom $IMGCRYPT_CONTAINERD2_BIN
`,
	"processors.txtar": `
[!containerd] skip
[!busybox] skip
mkrunnable -layers gzip,zstd,tar plain.tar docker.io/library/kit:1
fakeencrypt plain.tar img.tar
containerd start -keys keys
exec ctr images import img.tar
exec ctr run --rm docker.io/library/kit:1 c1 /bin/cat /etc/imgcrypt-layer-1 /etc/imgcrypt-layer-2
stdout 'layer 1\nlayer 2'
grep '^application/vnd.oci.image.layer.v1.tar\+gzip\+encrypted$' keys/calls
grep '^application/vnd.oci.image.layer.v1.tar\+zstd\+encrypted$' keys/calls
grep '^application/vnd.oci.image.layer.v1.tar\+encrypted$' keys/calls

[!containerd2] stop
rm keys/calls
containerd start -version 2 -keys keys -name v2
exec ctr images import img.tar
exec ctr run --rm docker.io/library/kit:1 c1 /bin/cat /etc/imgcrypt-layer-1 /etc/imgcrypt-layer-2
stdout 'layer 1\nlayer 2'
grep '^application/vnd.oci.image.layer.v1.tar\+gzip\+encrypted$' keys/calls
grep '^application/vnd.oci.image.layer.v1.tar\+zstd\+encrypted$' keys/calls
grep '^application/vnd.oci.image.layer.v1.tar\+encrypted$' keys/calls
`,
	"registry.txtar": `
[!registry] skip
registry start
registry stop
registry start -name second
`,
}

var remembered struct {
	sync.Mutex
	dirs, namespaces []string
}

func TestServices(t *testing.T) {
	dir := t.TempDir()
	for name, script := range serviceScripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.TrimPrefix(script, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmds := Commands()
	// remember notes the current daemon, for the checks after the scripts.
	cmds["remember"] = func(ts *testscript.TestScript, neg bool, args []string) {
		remembered.Lock()
		defer remembered.Unlock()
		remembered.dirs = append(remembered.dirs, filepath.Dir(ts.Getenv("CONTAINERD_ADDRESS")))
		remembered.namespaces = append(remembered.namespaces, ts.Getenv("CONTAINERD_NAMESPACE"))
	}
	// checkgone fails if anything of the current (stopped) daemon is left.
	cmds["checkgone"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if err := leftovers(filepath.Dir(ts.Getenv("CONTAINERD_ADDRESS")), ts.Getenv("CONTAINERD_NAMESPACE")); err != nil {
			ts.Fatalf("%v", err)
		}
	}
	// shimfrom DIR checks that the current daemon's shims run from DIR.
	cmds["shimfrom"] = func(ts *testscript.TestScript, neg bool, args []string) {
		shims := 0
		for _, pid := range procsMentioning(filepath.Dir(ts.Getenv("CONTAINERD_ADDRESS"))) {
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			if err != nil || filepath.Base(exe) != shimName {
				continue
			}
			shims++
			if filepath.Dir(exe) != args[0] {
				ts.Fatalf("shim %d runs %s, want it from %s", pid, exe, args[0])
			}
		}
		if shims == 0 {
			ts.Fatalf("no shim found")
		}
	}
	// killdaemon NAME kills a daemon behind the kit's back.
	cmds["killdaemon"] = func(ts *testscript.TestScript, neg bool, args []string) {
		services.Lock()
		d, _ := services.m[serviceKey{ts, "containerd", args[0]}].(*ctdDaemon)
		services.Unlock()
		if d == nil {
			ts.Fatalf("no daemon %s", args[0])
		}
		d.proc.cmd.Process.Kill()
		<-d.proc.exited
	}
	cmds["fakeencrypt"] = cmdFakeEncrypt
	t.Run("scripts", func(t *testing.T) {
		testscript.Run(t, testscript.Params{
			Dir:                 dir,
			RequireExplicitExec: true,
			Setup: func(env *testscript.Env) error {
				env.Setenv("IMGCRYPT_CONTAINERD2_BIN", os.Getenv("IMGCRYPT_CONTAINERD2_BIN"))
				return Setup(env)
			},
			Cmds:      cmds,
			Condition: Condition,
		})
	})
	remembered.Lock()
	defer remembered.Unlock()
	for i, dir := range remembered.dirs {
		if err := leftovers(dir, remembered.namespaces[i]); err != nil {
			t.Error(err)
		}
	}
	if pids := children(); len(pids) > 0 {
		t.Errorf("child processes still running: %v", pids)
	}
}

// leftovers reports what remains of a stopped daemon.
func leftovers(dir, namespace string) error {
	var problems []string
	if pids := procsMentioning(dir); len(pids) > 0 {
		problems = append(problems, fmt.Sprintf("processes %v", pids))
	}
	if pids := cgroupProcs(namespace); len(pids) > 0 {
		problems = append(problems, fmt.Sprintf("processes in its cgroups %v", pids))
	}
	for _, root := range cgroupRoots() {
		if _, err := os.Stat(filepath.Join(root, namespace)); err == nil {
			problems = append(problems, "cgroup "+filepath.Join(root, namespace))
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), dir) {
		problems = append(problems, "mounts under "+dir)
	}
	for _, p := range []string{dir, filepath.Join("/run/containerd/runc", namespace)} {
		if _, err := os.Stat(p); err == nil {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("containerd in %s left: %s", dir, strings.Join(problems, ", "))
	}
	return nil
}

// children lists this process's children that have not exited.
func children() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) && fields[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// fakeencrypt IN OUT copies a single-manifest OCI archive, giving its
// layers encrypted media types while leaving their data plain, for the
// stub decoder to pass through.
func cmdFakeEncrypt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: fakeencrypt IN OUT")
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader([]byte(ts.ReadFile(args[0]))))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		ts.Check(err)
		data, err := io.ReadAll(tr)
		ts.Check(err)
		files[h.Name] = data
	}
	blob := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	var index ocispec.Index
	ts.Check(json.Unmarshal(files["index.json"], &index))
	var manifest ocispec.Manifest
	ts.Check(json.Unmarshal(files[blob(index.Manifests[0].Digest)], &manifest))
	for i := range manifest.Layers {
		manifest.Layers[i].MediaType += "+encrypted"
	}
	data, err := json.Marshal(manifest)
	ts.Check(err)
	index.Manifests[0].Digest, index.Manifests[0].Size = digest.FromBytes(data), int64(len(data))
	files[blob(index.Manifests[0].Digest)] = data
	files["index.json"], err = json.Marshal(index)
	ts.Check(err)

	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for name, data := range files {
		ts.Check(tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(data)
		ts.Check(err)
	}
	ts.Check(tw.Close())
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), out.Bytes(), 0o644))
}
