package testkit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"

	"github.com/imgcrypt/imgcrypt/internal/decoder"
)

// Where the daemons come from: Debian's containerd 1.6 package, and a
// containerd 2.x that hack/test-deps.sh builds into the directory named by
// $IMGCRYPT_CONTAINERD2_BIN (with its runc shim beside it).
const (
	debianContainerd = "/usr/bin/containerd"
	debianShim       = "/usr/bin/containerd-shim-runc-v2"
	containerd2Env   = "IMGCRYPT_CONTAINERD2_BIN"
	shimName         = "containerd-shim-runc-v2"
)

// readyTimeout bounds how long a service may take to answer after start.
const readyTimeout = 30 * time.Second

// hasRunc reports whether runc is installed where containerd's shims look.
func hasRunc() bool {
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"} {
		if isExecutable(p) {
			return true
		}
	}
	return false
}

// containerdCondition answers [containerd]: Debian's containerd 1.6 and runc
// are installed and we are root, so a script can start and use a daemon.
func containerdCondition() bool {
	return os.Geteuid() == 0 && isExecutable(debianContainerd) && isExecutable(debianShim) && hasRunc()
}

// containerd2Condition answers [containerd2]: $IMGCRYPT_CONTAINERD2_BIN holds
// containerd 2.x and its runc shim (and, as for [containerd], we are root
// and runc is installed).
func containerd2Condition() bool {
	dir := os.Getenv(containerd2Env)
	return dir != "" && os.Geteuid() == 0 && hasRunc() &&
		isExecutable(filepath.Join(dir, "containerd")) && isExecutable(filepath.Join(dir, shimName))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// lookPathIn finds an executable like exec.LookPath, but in the given PATH
// (a script's, which testscript keeps apart from the process environment).
func lookPathIn(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("%s not found in PATH %s", name, path)
}

// services holds what each script started, by kind and name, so that stop
// commands can find it. Scripts run in parallel: hence the lock.
var services = struct {
	sync.Mutex
	m map[serviceKey]any
}{m: map[serviceKey]any{}}

type serviceKey struct {
	ts         *testscript.TestScript
	kind, name string
}

func putService(ts *testscript.TestScript, kind, name string, v any) bool {
	services.Lock()
	defer services.Unlock()
	k := serviceKey{ts, kind, name}
	if _, ok := services.m[k]; ok {
		return false
	}
	services.m[k] = v
	return true
}

func takeService(ts *testscript.TestScript, kind, name string) any {
	services.Lock()
	defer services.Unlock()
	k := serviceKey{ts, kind, name}
	v := services.m[k]
	delete(services.m, k)
	return v
}

// process is a service's main process and what it logs to.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has been waited for
	waitErr error
	logPath string
	logFile *os.File
}

// startProcess starts cmd with its output appended to logPath. The process
// gets SIGTERM if the test binary dies (a timeout or an interrupt) before
// the script's deferred stop could run.
func startProcess(cmd *exec.Cmd, logPath string) (*process, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	// Pdeathsig fires when the creating thread exits: keep the goroutine on
	// one thread for the fork; unlocked threads are never torn down.
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		lf.Close()
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), logPath: logPath, logFile: lf}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// running reports whether the process has not exited yet.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *process) stop(grace time.Duration) {
	if p.running() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(grace):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	p.logFile.Close()
}

// logTail returns the last n lines of the process's log, for error messages.
func (p *process) logTail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("last lines of %s:\n%s", p.logPath, strings.Join(lines, "\n"))
}

// waitReady calls ready every 50 ms until it succeeds, the process exits
// or the deadline passes, and returns the reason it gave up.
func (p *process) waitReady(what string, ready func() error) error {
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = ready(); last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%v)\n%s", what, p.waitErr, p.logTail(30))
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v\n%s", what, readyTimeout, last, p.logTail(30))
		}
	}
}

// ctdDaemon is one private containerd started by a script.
type ctdDaemon struct {
	name, version string
	dir           string // short temp dir: root, state, socket, config
	address       string
	namespace     string
	snapshotter   string
	proc          *process
	cri           *criOptions // nil: the CRI plugin is disabled
}

// containerd start [-version 1.6|2] [-keys DIR] [-name N] [-env K=V]...
// [-cri [-local-pull]] starts a private daemon and points the script at it
// ($CONTAINERD_ADDRESS, $CONTAINERD_NAMESPACE, $CONTAINERD_SNAPSHOTTER);
// containerd stop [-name N] stops it (it is stopped at the end of the
// script anyway).
//
// With -cri the daemon also serves the Kubernetes CRI on its socket, as a
// node's containerd does: image_decryption key_model "node", the
// script's plain-HTTP registries (start them first) reachable through
// hosts.toml files, images in the k8s.io namespace, and crictl
// ($IMGCRYPT_CRICTL_BIN) on the script's PATH with $CRI_CONFIG_FILE
// pointing it at the daemon. -local-pull sets use_local_image_pull on
// containerd 2.x.
func cmdContainerd(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "usage: containerd start [-version 1.6|2] [-keys DIR] [-name N] [-env K=V]... [-cri [-local-pull]] | containerd stop [-name N]"
	if neg {
		ts.Fatalf("unsupported: ! containerd")
	}
	if len(args) == 0 {
		ts.Fatalf("%s", usage)
	}
	fs := flag.NewFlagSet("containerd "+args[0], flag.ContinueOnError)
	name := fs.String("name", "default", "name of the daemon in this script")
	switch args[0] {
	case "start":
		version := fs.String("version", "1.6", "containerd version: 1.6 (Debian) or 2 ($"+containerd2Env+")")
		keys := fs.String("keys", "", "decoder key directory (default $WORK/ctd-keys)")
		var env []string
		fs.Func("env", "K=V for the stream processors' environment (repeatable)", func(s string) error {
			if !strings.Contains(s, "=") {
				return fmt.Errorf("want K=V, got %q", s)
			}
			env = append(env, s)
			return nil
		})
		withCRI := fs.Bool("cri", false, "enable the CRI plugin (node key model)")
		localPull := fs.Bool("local-pull", false, "with -cri on containerd 2.x: use_local_image_pull = true")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
			ts.Fatalf("%s", usage)
		}
		var cri *criOptions
		switch {
		case *withCRI:
			cri = &criOptions{localPull: *localPull}
		case *localPull:
			ts.Fatalf("containerd start: -local-pull needs -cri")
		}
		startContainerd(ts, *name, *version, *keys, env, cri)
	case "stop":
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
			ts.Fatalf("%s", usage)
		}
		d, _ := takeService(ts, "containerd", *name).(*ctdDaemon)
		if d == nil {
			ts.Fatalf("containerd %s is not running", *name)
		}
		d.stop(ts)
	default:
		ts.Fatalf("%s", usage)
	}
}

func startContainerd(ts *testscript.TestScript, name, version, keys string, procEnv []string, cri *criOptions) {
	var bin, shimDir, configVersion string
	switch version {
	case "1.6", "1":
		version, bin, configVersion = "1.6", debianContainerd, "2"
	case "2", "2.x":
		dir := os.Getenv(containerd2Env)
		if dir == "" {
			ts.Fatalf("containerd -version 2: $%s is not set (hack/test-deps.sh prints it)", containerd2Env)
		}
		version, bin, shimDir, configVersion = "2", filepath.Join(dir, "containerd"), dir, "3"
	default:
		ts.Fatalf("containerd: unknown -version %q (want 1.6 or 2)", version)
	}
	if cri != nil && cri.localPull && version != "2" {
		ts.Fatalf("containerd start: -local-pull is a containerd 2.x setting (1.6 always pulls locally)")
	}
	decoder, err := lookPathIn("ctd-decoder", ts.Getenv("PATH"))
	ts.Check(err)
	if keys == "" {
		keys = "ctd-keys"
	}
	keys = ts.MkAbs(keys)
	ts.Check(os.MkdirAll(keys, 0o700))
	ts.Check(os.Chmod(keys, 0o700))

	// The socket path must stay short: the daemon lives in /tmp/ctdNNN, not
	// under $WORK.
	dir, err := os.MkdirTemp("", "ctd")
	ts.Check(err)
	d := &ctdDaemon{
		name:      name,
		version:   version,
		dir:       dir,
		address:   filepath.Join(dir, "s"),
		namespace: "imgcrypt-" + filepath.Base(dir), // unique: cgroups and runc state are global
		cri:       cri,
	}
	if !putService(ts, "containerd", name, d) {
		os.Remove(dir)
		ts.Fatalf("containerd %s is already running", name)
	}
	ts.Defer(func() {
		if takeService(ts, "containerd", name) == d {
			d.stop(ts)
		}
	})
	d.snapshotter = "native"
	if overlayWorks(dir) {
		d.snapshotter = "overlayfs"
	}
	if cri != nil {
		ts.Check(d.writeRegistryHosts(ts))
	}
	configPath := filepath.Join(dir, "config.toml")
	ts.Check(os.WriteFile(configPath, []byte(d.config(configVersion, decoder, keys, procEnv)), 0o600))

	// The daemon runs with the script's PATH (ctd-decoder, runc), after the
	// 2.x shim so that a 2.x daemon does not pick Debian's 1.6 shim.
	path := ts.Getenv("PATH") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if shimDir != "" {
		path = shimDir + ":" + path
	}
	cmd := exec.Command(bin, "--config", configPath)
	cmd.Env = append(os.Environ(), "PATH="+path, "TMPDIR="+dir,
		"OCICRYPT_KEYPROVIDER_CONFIG="+ts.Getenv("OCICRYPT_KEYPROVIDER_CONFIG"),
		"OCICRYPT_CONFIG="+ts.Getenv("OCICRYPT_CONFIG"))
	cmd.Dir = dir
	d.proc, err = startProcess(cmd, ts.MkAbs("containerd-"+name+".log"))
	ts.Check(err)

	var server string
	err = d.proc.waitReady("containerd "+name, func() error {
		if _, err := os.Stat(d.address); err != nil {
			return err
		}
		c, err := d.client()
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		v, err := c.Version(ctx)
		server = v.Version
		return err
	})
	ts.Check(err)
	if cri != nil {
		d.waitCRI(ts)
		d.pointCrictl(ts)
	}
	ts.Logf("containerd %s: %s (%s) on %s, namespace %s, snapshotter %s, cri %t, log %s",
		name, server, bin, d.address, d.namespace, d.snapshotter, cri != nil, d.proc.logPath)
	ts.Setenv("CONTAINERD_ADDRESS", d.address)
	ts.Setenv("CONTAINERD_NAMESPACE", d.namespace)
	ts.Setenv("CONTAINERD_SNAPSHOTTER", d.snapshotter)
}

func (d *ctdDaemon) client() (*containerd.Client, error) {
	return containerd.New(d.address, containerd.WithDefaultNamespace(d.namespace), containerd.WithTimeout(2*time.Second))
}

// config writes the daemon's configuration: private paths for everything
// the daemon would otherwise share with the host, no CRI unless asked for
// (and no NRI on 2.x), and the ocicrypt stream processors running
// ctd-decoder.
func (d *ctdDaemon) config(configVersion, decoderPath, keys string, env []string) string {
	var b strings.Builder
	q := strconv.Quote
	list := func(ss []string) string {
		qs := make([]string, len(ss))
		for i, s := range ss {
			qs[i] = q(s)
		}
		return "[" + strings.Join(qs, ", ") + "]"
	}
	var disabled []string
	if d.cri == nil {
		disabled = append(disabled, "io.containerd.grpc.v1.cri")
		if d.version == "2" {
			disabled = append(disabled, "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime",
				"io.containerd.podsandbox.controller.v1.podsandbox")
		}
	}
	if d.version == "2" {
		disabled = append(disabled, "io.containerd.nri.v1.nri")
	}
	fmt.Fprintf(&b, "version = %s\n", configVersion)
	fmt.Fprintf(&b, "root = %s\nstate = %s\n", q(filepath.Join(d.dir, "root")), q(filepath.Join(d.dir, "state")))
	fmt.Fprintf(&b, "disabled_plugins = %s\n\n", list(disabled))
	fmt.Fprintf(&b, "[grpc]\n  address = %s\n\n", q(d.address))
	fmt.Fprintf(&b, "[debug]\n  level = \"info\"\n\n")
	fmt.Fprintf(&b, "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = %s\n\n", q(filepath.Join(d.dir, "opt")))
	if d.version == "2" {
		fmt.Fprintf(&b, "[plugins.\"io.containerd.image-verifier.v1.bindir\"]\n  bin_dir = %s\n\n", q(filepath.Join(d.dir, "verifiers")))
		if d.snapshotter != "overlayfs" {
			fmt.Fprintf(&b, "[plugins.\"io.containerd.transfer.v1.local\"]\n  unpack_config = [{platform = %s, snapshotter = %s}]\n\n",
				q(runtime.GOOS+"/"+runtime.GOARCH), q(d.snapshotter))
		}
	}
	if d.cri != nil {
		d.criConfig(&b)
	}
	env = append([]string{"OCICRYPT_KEYPROVIDER_CONFIG="}, env...)
	// The same entries 'imgcrypt containerd-config' prints.
	for _, p := range decoder.Processors {
		fmt.Fprintf(&b, "[stream_processors.%s]\n", q(p.ID))
		fmt.Fprintf(&b, "  accepts = %s\n  returns = %s\n", list(p.Accepts), q(p.Returns))
		fmt.Fprintf(&b, "  path = %s\n  args = %s\n  env = %s\n\n", q(decoderPath), list([]string{"--decryption-keys-path", keys}), list(env))
	}
	return b.String()
}

// stop removes what the daemon ran and stopped: its containers and tasks
// (through the API, so the shims exit cleanly), the daemon itself, then
// whatever survived it (shims, container processes), its mounts, cgroups
// and runc state, and its directory.
func (d *ctdDaemon) stop(ts *testscript.TestScript) {
	if d.proc != nil && d.proc.running() {
		if err := d.deleteContainers(); err != nil {
			ts.Logf("containerd %s: cleaning up containers: %v", d.name, err)
		}
		d.proc.stop(10 * time.Second)
	} else if d.proc != nil {
		d.proc.logFile.Close()
	}
	killed := killProcesses(d.strays())
	if killed > 0 {
		ts.Logf("containerd %s: killed %d leftover processes", d.name, killed)
	}
	for _, err := range unmountUnder(d.dir) {
		ts.Logf("containerd %s: %v", d.name, err)
	}
	removeCgroups(d.namespace)
	os.RemoveAll(filepath.Join("/run/containerd/runc", d.namespace))
	d.removeShimSockets()
	if err := os.RemoveAll(d.dir); err != nil {
		ts.Logf("containerd %s: %v", d.name, err)
	}
}

// deleteContainers kills every task and deletes every container in every
// namespace of the daemon.
func (d *ctdDaemon) deleteContainers() error {
	c, err := d.client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range nss {
		ctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := c.Containers(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ctr := range ctrs {
			if task, err := ctr.Task(ctx, nil); err == nil {
				if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
					errs = append(errs, fmt.Errorf("task %s: %w", ctr.ID(), err))
				}
			}
			if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
				errs = append(errs, fmt.Errorf("container %s: %w", ctr.ID(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeShimSockets removes the sockets of shims that were killed: they
// live in the host's /run/containerd/s, named by a hash of the daemon's
// socket, the namespace and the task ID (the task directories under the
// daemon's state say which exist).
func (d *ctdDaemon) removeShimSockets() {
	tasks, _ := filepath.Glob(filepath.Join(d.dir, "state", "io.containerd.runtime.v2.task", "*", "*"))
	for _, t := range tasks {
		ns, id := filepath.Base(filepath.Dir(t)), filepath.Base(t)
		for _, p := range []string{filepath.Join(d.address, ns, id), filepath.Join(d.address, ns, id, "debug")} {
			os.Remove(fmt.Sprintf("/run/containerd/s/%x", sha256.Sum256([]byte(p))))
		}
	}
}

// strays lists processes the daemon left behind: shims (their command
// lines name the daemon's socket, under its directory) and the processes
// in its namespace's cgroups.
func (d *ctdDaemon) strays() []int {
	pids := procsMentioning(d.dir)
	for _, p := range cgroupProcs(d.namespace) {
		if !slices.Contains(pids, p) {
			pids = append(pids, p)
		}
	}
	return pids
}

// procsMentioning lists the processes whose command line contains s.
func procsMentioning(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cgroupRoots are the cgroup v1 hierarchies (or the v2 unified one).
func cgroupRoots() []string {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.procs"); err == nil {
		roots = append(roots, "/sys/fs/cgroup")
	}
	return roots
}

// cgroupProcs lists the processes in the cgroups below /NAMESPACE, where
// containerd's clients put a namespace's containers by default.
func cgroupProcs(namespace string) []int {
	var pids []int
	for _, root := range cgroupRoots() {
		filepath.WalkDir(filepath.Join(root, namespace), func(p string, e os.DirEntry, err error) error {
			if err != nil || e.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(pids, pid) {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removeCgroups removes the (now empty) cgroups below /NAMESPACE, deepest first.
func removeCgroups(namespace string) {
	for _, root := range cgroupRoots() {
		var dirs []string
		filepath.WalkDir(filepath.Join(root, namespace), func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, dir := range slices.Backward(dirs) {
			unix.Rmdir(dir)
		}
	}
}

// killProcesses sends SIGKILL to pids, waits up to 5 s for them to go, and
// returns how many it signalled.
func killProcesses(pids []int) int {
	n := 0
	for _, pid := range pids {
		if unix.Kill(pid, unix.SIGKILL) == nil {
			n++
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if unix.Kill(pid, 0) != nil || isZombie(pid) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return n
}

func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) []error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var errs []error
	for _, mp := range points {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errs
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// overlayWorks tries an overlay mount in dir, as the overlayfs snapshotter
// would, and cleans up after itself.
func overlayWorks(dir string) bool {
	probe := filepath.Join(dir, "overlay-probe")
	defer os.RemoveAll(probe)
	var paths []string
	for _, sub := range []string{"lower", "upper", "work", "merged"} {
		p := filepath.Join(probe, sub)
		if os.MkdirAll(p, 0o700) != nil {
			return false
		}
		paths = append(paths, p)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", paths[0], paths[1], paths[2])
	if unix.Mount("overlay", paths[3], "overlay", 0, opts) != nil {
		return false
	}
	unix.Unmount(paths[3], unix.MNT_DETACH)
	return true
}
