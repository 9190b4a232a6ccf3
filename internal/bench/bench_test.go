package bench

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/imgcrypt/imgcrypt/internal/decoder"
	"github.com/imgcrypt/imgcrypt/internal/imagecrypt"
	"github.com/imgcrypt/imgcrypt/internal/keys"
	"github.com/imgcrypt/imgcrypt/internal/store"
)

const layerSize = 256 * mib

func cipherLoop(b *testing.B, withDigest bool) {
	block, _ := aes.NewCipher(make([]byte, 32))
	stream := cipher.NewCTR(block, make([]byte, 16))
	mac := hmac.New(sha256.New, make([]byte, 32))
	sum := sha256.New()
	buf := make([]byte, mib)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		stream.XORKeyStream(buf, buf)
		mac.Write(buf)
		if withDigest {
			sum.Write(buf)
		}
	}
}

// BenchmarkBaselineCTRHMACSHA256 is the one-core rate of everything storing
// an encrypted or decrypted layer must do: AES-256-CTR, HMAC-SHA256 and the
// SHA-256 digest of the blob written.
func BenchmarkBaselineCTRHMACSHA256(b *testing.B) { cipherLoop(b, true) }

// BenchmarkBaselineCTRHMAC is the one-core rate of what the stream processor
// must do: AES-256-CTR and HMAC-SHA256 (containerd digests the output).
func BenchmarkBaselineCTRHMAC(b *testing.B) { cipherLoop(b, false) }

type fixture struct {
	store *store.Layout
	img   images.Image
	ec    *imagecrypt.EncryptOptions
	dc    *imagecrypt.DecryptOptions
}

func newFixture(b *testing.B, layers int) *fixture {
	dir := benchDir(b)
	s, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	key := newKey(b, dir)
	ec, err := keys.EncryptConfig([]string{"jwe:" + key + ".pub"}, nil, nil, keys.Options{})
	if err != nil {
		b.Fatal(err)
	}
	dc, err := keys.DecryptConfig([]string{key}, nil, keys.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return &fixture{
		store: s,
		img:   newImage(b, s, "bench", layers, layerSize),
		ec:    &imagecrypt.EncryptOptions{Config: ec},
		dc:    &imagecrypt.DecryptOptions{Config: dc},
	}
}

// dropLayers deletes the layer blobs of the image at root, so that the next
// run must write them again rather than find them stored.
func (f *fixture) dropLayers(b *testing.B, root ocispec.Descriptor) {
	ctx := context.Background()
	m, err := images.Manifest(ctx, f.store.Content(), root, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range m.Layers {
		if err := f.store.Content().Delete(ctx, l.Digest); err != nil {
			b.Fatal(err)
		}
	}
}

func benchEncrypt(b *testing.B, layers, jobs int) {
	f := newFixture(b, layers)
	f.ec.Jobs = jobs
	ctx := context.Background()
	b.SetBytes(int64(layers) * layerSize)
	b.ResetTimer()
	for range b.N {
		out, err := imagecrypt.Encrypt(ctx, f.store.Content(), f.img.Target, *f.ec)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.dropLayers(b, out)
		b.StartTimer()
	}
}

func benchDecrypt(b *testing.B, layers, jobs int) {
	f := newFixture(b, layers)
	f.dc.Jobs = jobs
	ctx := context.Background()
	enc, err := imagecrypt.Encrypt(ctx, f.store.Content(), f.img.Target, *f.ec)
	if err != nil {
		b.Fatal(err)
	}
	f.dropLayers(b, f.img.Target)
	b.SetBytes(int64(layers) * layerSize)
	b.ResetTimer()
	for range b.N {
		out, err := imagecrypt.Decrypt(ctx, f.store.Content(), enc, *f.dc)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.dropLayers(b, out)
		b.StartTimer()
	}
}

// BenchmarkEncrypt1Layer encrypts one 256 MiB layer in the embedded store
// with the default jobs (one per CPU), so hashing and writing get a core.
func BenchmarkEncrypt1Layer(b *testing.B) { benchEncrypt(b, 1, 0) }

// BenchmarkEncrypt1LayerOneJob encrypts one 256 MiB layer on one goroutine:
// the per-core rate that parallel layers scale from.
func BenchmarkEncrypt1LayerOneJob(b *testing.B) { benchEncrypt(b, 1, 1) }

// BenchmarkEncrypt2Layers encrypts two 256 MiB layers at once, on two cores.
func BenchmarkEncrypt2Layers(b *testing.B) { benchEncrypt(b, 2, 2) }

// BenchmarkDecrypt1Layer decrypts one 256 MiB layer in the embedded store.
func BenchmarkDecrypt1Layer(b *testing.B) { benchDecrypt(b, 1, 0) }

// BenchmarkDecrypt1LayerOneJob decrypts one 256 MiB layer on one goroutine.
func BenchmarkDecrypt1LayerOneJob(b *testing.B) { benchDecrypt(b, 1, 1) }

// BenchmarkDecrypt2Layers decrypts two 256 MiB layers at once, on two cores.
func BenchmarkDecrypt2Layers(b *testing.B) { benchDecrypt(b, 2, 2) }

// decoderInput is an encrypted layer and the payload containerd would pass.
func decoderInput(b *testing.B, size int64) (layer, payload []byte) {
	f := newFixture(b, 0)
	ctx := context.Background()
	img := newImage(b, f.store, "one", 1, size)
	enc, err := imagecrypt.Encrypt(ctx, f.store.Content(), img.Target, *f.ec)
	if err != nil {
		b.Fatal(err)
	}
	m, err := images.Manifest(ctx, f.store.Content(), enc, nil)
	if err != nil {
		b.Fatal(err)
	}
	layer, err = content.ReadBlob(ctx, f.store.Content(), m.Layers[0])
	if err != nil {
		b.Fatal(err)
	}
	value, err := json.Marshal(decoder.Payload{DecryptConfig: *f.dc.Config, Descriptor: m.Layers[0]})
	if err != nil {
		b.Fatal(err)
	}
	payload, err = proto.Marshal(&anypb.Any{TypeUrl: decoder.PayloadTypeURL, Value: value})
	if err != nil {
		b.Fatal(err)
	}
	return layer, payload
}

// runDecoder runs program as containerd runs a stream processor: the layer
// written into a stdin pipe, the payload on an fd 3 pipe, stdout drained
// from a pipe, each in 1 MiB steps as containerd's copy loops do.
func runDecoder(b *testing.B, program string, layer, payload []byte) {
	cmd := exec.Command(program)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	pr, pw, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{pr}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pr.Close()
	go func() {
		pw.Write(payload)
		pw.Close()
	}()
	go func() {
		for rest := layer; len(rest) > 0; {
			n, err := stdin.Write(rest[:min(len(rest), mib)])
			if err != nil {
				break
			}
			rest = rest[n:]
		}
		stdin.Close()
	}()
	if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{stdout}, make([]byte, mib)); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
}

// decoderPath links this test binary as ctd-decoder in a temporary dir.
func decoderPath(b *testing.B) string {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "ctd-decoder")
	if err := os.Symlink(self, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkDecoder256MiB decrypts a 256 MiB layer through the stream
// processor, pipes on every side, process start included.
func BenchmarkDecoder256MiB(b *testing.B) {
	layer, payload := decoderInput(b, layerSize)
	program := decoderPath(b)
	b.SetBytes(layerSize)
	b.ResetTimer()
	for range b.N {
		runDecoder(b, program, layer, payload)
	}
}

// BenchmarkEncryptPeakRSS1GiB runs 'imgcrypt encrypt' on a 1 GiB layer and
// reports the process's peak resident memory.
//
// The peak is read from /proc (VmHWM) while the command runs, not from
// wait4's ru_maxrss: Linux folds the parent's peak into a child's maxrss at
// exec, so that would report this benchmark process's memory instead.
func BenchmarkEncryptPeakRSS1GiB(b *testing.B) {
	dir := benchDir(b)
	s, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	newImage(b, s, "docker.io/library/big:latest", 1, 1<<30)
	s.Close()
	key := newKey(b, dir)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	program := filepath.Join(dir, "imgcrypt")
	if err := os.Symlink(self, program); err != nil {
		b.Fatal(err)
	}
	var peak int64
	b.SetBytes(1 << 30)
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(program, "--store", filepath.Join(dir, "store"), "--quiet", "encrypt", "-r", "jwe:"+key+".pub", "big", "big:enc")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		hwm, err := watchHWM(cmd)
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, hwm)
	}
	b.ReportMetric(float64(peak)/1024, "peakRSS-MiB")
}

// BenchmarkDecoderStartup runs the stream processor on an empty layer:
// process start, payload, key unwrap and exit.
func BenchmarkDecoderStartup(b *testing.B) {
	layer, payload := decoderInput(b, 0)
	program := decoderPath(b)
	b.ResetTimer()
	for range b.N {
		runDecoder(b, program, layer, payload)
	}
}

// bareProgram is the smallest Go program that does what any decoder must:
// read the payload on fd 3 and copy stdin to stdout.
const bareProgram = `package main

import (
	"io"
	"os"
)

func main() {
	io.ReadAll(os.NewFile(3, "payload"))
	io.Copy(os.Stdout, os.Stdin)
}
`

// BenchmarkBaselineStartup runs bareProgram the same way as
// BenchmarkDecoderStartup runs the decoder.
func BenchmarkBaselineStartup(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(bareProgram), 0o644); err != nil {
		b.Fatal(err)
	}
	program := filepath.Join(dir, "bare")
	build := exec.Command("go", "build", "-o", program, "main.go")
	build.Dir = dir
	build.Env = append(os.Environ(), "GO111MODULE=off")
	if out, err := build.CombinedOutput(); err != nil {
		b.Skipf("cannot build the bare program: %v\n%s", err, out)
	}
	layer, payload := decoderInput(b, 0)
	b.ResetTimer()
	for range b.N {
		runDecoder(b, program, layer, payload)
	}
}

// watchHWM waits for cmd and returns the highest VmHWM (KiB) it saw in
// /proc while cmd ran.
func watchHWM(cmd *exec.Cmd) (int64, error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak int64
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return peak, err
		case <-tick.C:
			data, err := os.ReadFile(status)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(data), "\n") {
				if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					var kib int64
					fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kib)
					peak = max(peak, kib)
				}
			}
		}
	}
}
