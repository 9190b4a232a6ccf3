package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/decoder"
)

func newContainerdConfigCommand() *cobra.Command {
	var version int
	var keyDir, path string
	cmd := &cobra.Command{
		Use:   "containerd-config [flags]",
		Short: "Print the stream-processor configuration for containerd",
		Long: `Print the [stream_processors] section that makes containerd decrypt
encrypted tar, tar+gzip and tar+zstd layers with imgcrypt's ctd-decoder.
It reuses containerd's built-in processor IDs, so it replaces their defaults;
zstd layers share the tar.gzip entry, the only other ID containerd's own
clients (CRI) attach decryption payloads for.
Append it to /etc/containerd/config.toml and restart containerd; see
docs/containerd.md.`,
		Example: `  imgcrypt containerd-config >> /etc/containerd/config.toml          # containerd 1.x
  imgcrypt containerd-config --config-version 3 --keys /etc/imgcrypt/keys`,
		Args: usage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if version != 2 && version != 3 {
				return usagef(cmd, "--config-version must be 2 (containerd 1.x) or 3 (containerd 2.x)")
			}
			if path == "" {
				path = installedDecoder()
			}
			fmt.Fprint(cmd.OutOrStdout(), streamProcessorsTOML(version, path, keyDir))
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&version, "config-version", 2, "containerd config version: 2 (containerd 1.x) or 3 (containerd 2.x)")
	f.StringVar(&keyDir, "keys", "/etc/containerd/ocicrypt/keys", "node key directory the decoder reads")
	f.StringVar(&path, "decoder", "", "path of the ctd-decoder program (default: beside this binary)")
	return cmd
}

// installedDecoder is the ctd-decoder symlink beside this binary when there
// is one, else the bare name containerd looks up in its PATH.
func installedDecoder() string {
	self, err := os.Executable()
	if err != nil {
		return DecoderName
	}
	candidate := filepath.Join(filepath.Dir(self), DecoderName)
	if _, err := os.Stat(candidate); err == nil {
		return candidate
	}
	return DecoderName
}

func streamProcessorsTOML(version int, path, keyDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# imgcrypt stream processors (containerd config version %d)\n", version)
	if version == 3 {
		b.WriteString(`# containerd 2.x CRI pulls through the transfer service, which attaches no
# decryption payload: encrypted images only unpack with the local pull path.
[plugins."io.containerd.cri.v1.images"]
  use_local_image_pull = true

`)
	}
	for _, p := range decoder.Processors {
		fmt.Fprintf(&b, "[stream_processors.%q]\n", p.ID)
		fmt.Fprintf(&b, "  accepts = [%s]\n", quoteList(p.Accepts))
		fmt.Fprintf(&b, "  returns = %q\n", p.Returns)
		fmt.Fprintf(&b, "  path = %q\n", path)
		fmt.Fprintf(&b, "  args = [\"--decryption-keys-path\", %q]\n", keyDir)
		fmt.Fprintf(&b, "  env = [\"OCICRYPT_KEYPROVIDER_CONFIG=/etc/containerd/ocicrypt/ocicrypt_keyprovider.conf\"]\n\n")
	}
	return b.String()
}

func quoteList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = strconv.Quote(s)
	}
	return strings.Join(quoted, ", ")
}
