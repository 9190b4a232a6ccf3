package decoder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"

	"github.com/containers/ocicrypt/config"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/imgcrypt/imgcrypt/internal/keys"
	"github.com/imgcrypt/imgcrypt/internal/layercrypt"
)

// PayloadTypeURL is the type of the payload containerd's clients attach
// for the ocicrypt stream processors.
const PayloadTypeURL = "io.containerd.ocicrypt.v1.Payload"

// Processor is one containerd stream-processor entry for the decoder.
type Processor struct {
	ID      string
	Accepts []string
	Returns string
}

// Processors are the entries imgcrypt configures, under containerd's own
// ocicrypt IDs so that they replace the built-in ones (containerd 1.6
// always merges those) instead of competing with them. zstd layers go
// through the tar.gzip entry: the clients built into containerd (CRI
// included) attach payloads for these two IDs only, and containerd finds
// the compression of what the decoder returns by its magic bytes, whatever
// type the entry names.
var Processors = []Processor{
	{
		ID:      "io.containerd.ocicrypt.decoder.v1.tar",
		Accepts: []string{"application/vnd.oci.image.layer.v1.tar+encrypted"},
		Returns: "application/vnd.oci.image.layer.v1.tar",
	},
	{
		ID: "io.containerd.ocicrypt.decoder.v1.tar.gzip",
		Accepts: []string{
			"application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
			"application/vnd.oci.image.layer.v1.tar+zstd+encrypted",
		},
		Returns: "application/vnd.oci.image.layer.v1.tar+gzip",
	},
}

// Payload is what a client hands the decoder through containerd: the keys
// it holds (none in the Kubernetes node-key model) and the layer's
// descriptor, whose annotations carry the wrapped layer keys.
type Payload struct {
	DecryptConfig config.DecryptConfig
	Descriptor    ocispec.Descriptor
}

// ErrNoPayload means containerd started the decoder without a payload.
var ErrNoPayload = errors.New(`containerd passed no decryption payload on fd 3, so the layer's wrapped keys are unknown. ` +
	`containerd passes one only when the pulling client attaches it: use 'imgcrypt pull' or 'imgcrypt run' with --key, ` +
	`or CRI with image_decryption key_model = "node"; containerd 2.x CRI pulls through the transfer service, which attaches none: ` +
	`set use_local_image_pull = true under [plugins."io.containerd.cri.v1.images"] (imgcrypt containerd-config --config-version 3 does)`)

// Options configure one decoder run.
type Options struct {
	// KeyDirs are node-local key directories (--decryption-keys-path).
	KeyDirs []string
}

// ReadPayload reads the payload from fd 3 if containerd opened it as a
// pipe. Go may itself hold fd 3 open (a cgroup file read at start-up), so
// anything but a pipe means no payload.
func ReadPayload() ([]byte, error) {
	return readPayload(os.NewFile(3, "payload"))
}

func readPayload(f *os.File) ([]byte, error) {
	if f == nil {
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return nil, nil
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading the payload on fd 3: %w", err)
	}
	return data, nil
}

// ParsePayload decodes containerd's protobuf Any wrapping the JSON payload.
func ParsePayload(data []byte) (*Payload, error) {
	if len(data) == 0 {
		return nil, ErrNoPayload
	}
	var any anypb.Any
	if err := proto.Unmarshal(data, &any); err != nil {
		return nil, fmt.Errorf("the payload on fd 3 is not a protobuf Any: %w", err)
	}
	if any.GetTypeUrl() != PayloadTypeURL {
		return nil, fmt.Errorf("the payload on fd 3 has type %q, want %q", any.GetTypeUrl(), PayloadTypeURL)
	}
	var p Payload
	if err := json.Unmarshal(any.GetValue(), &p); err != nil {
		return nil, fmt.Errorf("the payload on fd 3 is not valid JSON: %w", err)
	}
	return &p, nil
}

// Run decrypts the layer on src into dst with the payload's keys and the
// node keys. Every error names the layer and never carries key material.
func Run(dst io.Writer, src io.Reader, payload *Payload, opts Options) error {
	desc := payload.Descriptor
	name := "layer " + desc.Digest.String()
	if !layercrypt.IsEncrypted(desc) {
		return fmt.Errorf("%s: its descriptor carries no wrapped keys; the payload's descriptor must be the encrypted layer's", name)
	}
	dc, err := decryptConfig(payload, opts.KeyDirs)
	if err != nil {
		return err
	}
	key, err := layercrypt.Unwrap(dc, desc)
	if errors.Is(err, layercrypt.ErrNoKey) {
		return fmt.Errorf("%s: %w (it is encrypted for %s); give the pulling client a matching --key, or put one in %s",
			name, err, strings.Join(layercrypt.Schemes(desc), ", "), keyDirHint(opts.KeyDirs))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := key.DecryptPipelined(dst, src); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func decryptConfig(payload *Payload, keyDirs []string) (*config.DecryptConfig, error) {
	params := map[string][][]byte{}
	maps.Copy(params, payload.DecryptConfig.Parameters)
	if len(keyDirs) == 0 {
		return &config.DecryptConfig{Parameters: params}, nil
	}
	node, err := keys.DirKeys(keyDirs...)
	if err != nil {
		return nil, err
	}
	for k, v := range node.Parameters {
		params[k] = append(params[k], v...)
	}
	return &config.DecryptConfig{Parameters: params}, nil
}

func keyDirHint(dirs []string) string {
	if len(dirs) == 0 {
		return "a directory passed with --decryption-keys-path"
	}
	return strings.Join(dirs, " or ")
}
