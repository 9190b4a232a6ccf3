// Package testkit is what the testscript suite needs beyond the binary
// itself: the environment every script starts in, custom commands that
// build test images and inspect stores, and conditions for optional tools.
// It is test-only.
package testkit

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/imgcrypt/imgcrypt/internal/testkit/imagegen"
	"github.com/imgcrypt/imgcrypt/internal/testkit/keyprovider"
)

// KeyProviderMain runs the test key provider (the "cmd" kind of ocicrypt
// key provider) and returns its exit code.
func KeyProviderMain() int { return keyprovider.Main() }

// Setup gives every script a private store, home and gpg home.
func Setup(env *testscript.Env) error {
	home := filepath.Join(env.WorkDir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	env.Setenv("HOME", home)
	env.Setenv("XDG_DATA_HOME", "")
	env.Setenv("IMGCRYPT_STORE", filepath.Join(env.WorkDir, "store"))
	env.Setenv("GNUPGHOME", filepath.Join(home, ".gnupg"))
	env.Setenv("OCICRYPT_KEYPROVIDER_CONFIG", "")
	return nil
}

// Commands are the custom script commands.
func Commands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"mkimage":     cmdMkimage,
		"jsonfield":   cmdJSONField,
		"filemode":    cmdFileMode,
		"exitcode":    cmdExitCode,
		"countfiles":  cmdCountFiles,
		"linkbin":     cmdLinkBin,
		"jsoneach":    cmdJSONEach,
		"sharelayers": cmdShareLayers,
		"manifest":    cmdManifest,
		"waitentry":   cmdWaitEntry,
		"containerd":  cmdContainerd,
		"registry":    cmdRegistry,
		"mkrunnable":  cmdMkrunnable,
		"flipbyte":    cmdFlipByte,
		"envfrom":     cmdEnvFrom,
		"keyprovider": cmdKeyProvider,
	}
}

// Condition answers [gpg], [skopeo] and [openssl] (the tool is installed).
func Condition(cond string) (bool, error) {
	switch cond {
	case "gpg", "skopeo", "openssl":
		_, err := exec.LookPath(cond)
		return err == nil, nil
	case "containerd": // root, Debian's containerd 1.6 and runc
		return containerdCondition(), nil
	case "containerd2": // also containerd 2.x in $IMGCRYPT_CONTAINERD2_BIN
		return containerd2Condition(), nil
	case "registry": // Debian's docker-registry
		return registryCondition(), nil
	case "busybox": // a static /bin/busybox for runnable images
		return busyboxCondition(), nil
	case "softhsm": // a cgo build and SoftHSM's PKCS#11 module
		return softHSMCondition(), nil
	case "crictl": // crictl in $IMGCRYPT_CRICTL_BIN, for the CRI scripts
		return crictlCondition(), nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// mkimage [-docker] [-platforms p1,p2] [-layers gzip,zstd,tar] [-size N] FILE NAME
// writes a small deterministic image archive.
func cmdMkimage(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! mkimage")
	}
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	docker := fs.Bool("docker", false, "write a docker save archive")
	plats := fs.String("platforms", "linux/amd64", "comma-separated platforms")
	layers := fs.String("layers", "gzip", "comma-separated layer compressions")
	size := fs.Int("size", 0, "filler bytes per layer")
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
		ts.Fatalf("usage: mkimage [-docker] [-platforms p,...] [-layers gzip,zstd,tar] [-size N] FILE NAME")
	}
	var buf bytes.Buffer
	err := imagegen.Write(&buf, imagegen.Spec{
		Name:      fs.Arg(1),
		Platforms: strings.Split(*plats, ","),
		Layers:    strings.Split(*layers, ","),
		LayerSize: *size,
		Docker:    *docker,
	})
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(fs.Arg(0)), buf.Bytes(), 0o644))
}

// jsonfield FILE PATH... prints the value at a path of keys and indexes
// (e.g. manifests 0 digest) in a JSON file, for scripts to compare.
func cmdJSONField(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: jsonfield FILE KEY|INDEX...")
	}
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &v))
	for _, k := range args[1:] {
		switch node := v.(type) {
		case map[string]any:
			v = node[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(node) {
				ts.Fatalf("jsonfield: bad index %q", k)
			}
			v = node[i]
		default:
			ts.Fatalf("jsonfield: %q: not an object or array", k)
		}
	}
	if s, ok := v.(string); ok {
		fmt.Fprintln(ts.Stdout(), s)
		return
	}
	out, _ := json.Marshal(v)
	fmt.Fprintln(ts.Stdout(), string(out))
}
