package testkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// crictlEnv names the directory where hack/test-deps.sh builds crictl, the
// Kubernetes CRI client the cri_* scripts pull images with.
const crictlEnv = "IMGCRYPT_CRICTL_BIN"

// crictlCondition answers [crictl]: $IMGCRYPT_CRICTL_BIN holds crictl, and
// a CRI-enabled containerd can be started (root, containerd, runc).
func crictlCondition() bool {
	dir := os.Getenv(crictlEnv)
	return dir != "" && isExecutable(filepath.Join(dir, "crictl")) && containerdCondition()
}

// criOptions is what 'containerd start -cri' asks of the CRI plugin.
type criOptions struct {
	// localPull sets use_local_image_pull on containerd 2.x: without it,
	// CRI pulls through the transfer service, which attaches no
	// decryption payload.
	localPull bool
}

// criConfig writes the CRI part of a daemon's configuration: the image
// service with the node key model, pulling from the script's plain-HTTP
// registries, the snapshotter the kit chose, and CNI pointed at empty
// private directories (pulls need no network; the plugin logs that it has
// no CNI config and carries on). The runtime side is left at its defaults:
// the scripts never start pods.
func (d *ctdDaemon) criConfig(b *strings.Builder) {
	q := strconv.Quote
	hosts := filepath.Join(d.dir, "certs.d")
	cniBin, cniConf := filepath.Join(d.dir, "cni", "bin"), filepath.Join(d.dir, "cni", "net.d")
	if d.version == "2" {
		const images = `plugins."io.containerd.cri.v1.images"`
		fmt.Fprintf(b, "[%s]\n  snapshotter = %s\n  use_local_image_pull = %t\n", images, q(d.snapshotter), d.cri.localPull)
		fmt.Fprintf(b, "  [%s.image_decryption]\n    key_model = \"node\"\n", images)
		fmt.Fprintf(b, "  [%s.registry]\n    config_path = %s\n\n", images, q(hosts))
		fmt.Fprintf(b, "[plugins.\"io.containerd.cri.v1.runtime\".cni]\n  bin_dirs = [%s]\n  conf_dir = %s\n\n", q(cniBin), q(cniConf))
		fmt.Fprintf(b, "[plugins.\"io.containerd.grpc.v1.cri\"]\n  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n\n")
		return
	}
	const cri = `plugins."io.containerd.grpc.v1.cri"`
	fmt.Fprintf(b, "[%s]\n  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n", cri)
	fmt.Fprintf(b, "  [%s.containerd]\n    snapshotter = %s\n", cri, q(d.snapshotter))
	fmt.Fprintf(b, "  [%s.cni]\n    bin_dir = %s\n    conf_dir = %s\n", cri, q(cniBin), q(cniConf))
	fmt.Fprintf(b, "  [%s.image_decryption]\n    key_model = \"node\"\n", cri)
	fmt.Fprintf(b, "  [%s.registry]\n    config_path = %s\n\n", cri, q(hosts))
}

// writeRegistryHosts writes a hosts.toml under the daemon's config_path
// for each plain-HTTP registry the script is running, so that CRI pulls
// from it over http://. containerd reads these files at each pull.
func (d *ctdDaemon) writeRegistryHosts(ts *testscript.TestScript) error {
	for _, dir := range []string{"cni/bin", "cni/net.d", "certs.d"} {
		if err := os.MkdirAll(filepath.Join(d.dir, dir), 0o700); err != nil {
			return err
		}
	}
	services.Lock()
	var regs []*ociRegistry
	for k, v := range services.m {
		if r, ok := v.(*ociRegistry); ok && k.ts == ts && k.kind == "registry" && r.scheme() == "http" {
			regs = append(regs, r)
		}
	}
	services.Unlock()
	for _, r := range regs {
		dir := filepath.Join(d.dir, "certs.d", r.host)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		url := strconv.Quote("http://" + r.host)
		toml := fmt.Sprintf("server = %s\n\n[host.%s]\n  capabilities = [\"pull\", \"resolve\"]\n", url, url)
		if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(toml), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// waitCRI fails the script at once if a CRI plugin did not load, and
// otherwise waits until the CRI image service answers (containerd 1.6
// refuses requests until the plugin has finished starting).
func (d *ctdDaemon) waitCRI(ts *testscript.TestScript) {
	c, err := d.client()
	ts.Check(err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	resp, err := c.IntrospectionService().Plugins(ctx)
	cancel()
	ts.Check(err)
	conn, ok := c.Conn().(*grpc.ClientConn)
	if !ok {
		ts.Fatalf("containerd %s: the client's connection is a %T, not gRPC", d.name, c.Conn())
	}
	for _, p := range resp.GetPlugins() {
		if strings.Contains(p.GetType(), "cri") && p.GetInitErr() != nil {
			ts.Fatalf("containerd %s: CRI plugin %s.%s did not load: %s\n%s",
				d.name, p.GetType(), p.GetID(), p.GetInitErr().GetMessage(), d.proc.logTail(30))
		}
	}
	ts.Check(d.proc.waitReady("containerd "+d.name+" CRI image service", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		// An empty ListImagesRequest; the reply's fields are not needed.
		return conn.Invoke(ctx, "/runtime.v1.ImageService/ListImages", &emptypb.Empty{}, &emptypb.Empty{})
	}))
}

// pointCrictl puts $IMGCRYPT_CRICTL_BIN first in the script's PATH, so
// that scripts run crictl like any other tool, and points crictl at this
// daemon with a config file ($WORK/crictl-NAME.yaml, named by
// $CRI_CONFIG_FILE) that also spares it a warning about /etc/crictl.yaml.
func (d *ctdDaemon) pointCrictl(ts *testscript.TestScript) {
	if dir := os.Getenv(crictlEnv); dir != "" {
		path := ts.Getenv("PATH")
		if !strings.HasPrefix(path, dir+string(os.PathListSeparator)) {
			ts.Setenv("PATH", dir+string(os.PathListSeparator)+path)
		}
	}
	conf := ts.MkAbs("crictl-" + d.name + ".yaml")
	endpoint := strconv.Quote("unix://" + d.address)
	ts.Check(os.WriteFile(conf, []byte(fmt.Sprintf("runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 10\n", endpoint, endpoint)), 0o644))
	ts.Setenv("CRI_CONFIG_FILE", conf)
}
