package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/decoder"
)

func newDecoderCommand() *cobra.Command {
	var opts decoder.Options
	cmd := &cobra.Command{
		Use:   DecoderName + " [--decryption-keys-path DIR]...",
		Short: "Act as containerd's stream processor for encrypted layers",
		Long: `Decrypt one encrypted layer for containerd: the layer arrives on standard
input, the decryption payload on file descriptor 3, and the plain layer
leaves on standard output. Keys come from the payload and from every file in
the --decryption-keys-path directories that is a key (other files are
skipped). containerd runs this through a symlink named ctd-decoder; see
docs/containerd.md for the configuration.`,
		Example: `  # /etc/containerd/config.toml (containerd 1.x)
  [stream_processors."io.containerd.ocicrypt.decoder.v1.tar.gzip"]
    accepts = ["application/vnd.oci.image.layer.v1.tar+gzip+encrypted"]
    returns = "application/vnd.oci.image.layer.v1.tar+gzip"
    path = "ctd-decoder"
    args = ["--decryption-keys-path", "/etc/containerd/ocicrypt/keys"]`,
		Args:          usage(cobra.NoArgs),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := decoder.ReadPayload()
			if err != nil {
				return err
			}
			payload, err := decoder.ParsePayload(data)
			if err != nil {
				return err
			}
			decoder.GrowPipes(os.Stdin, os.Stdout)
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 256<<10)
			if err := decoder.Run(out, cmd.InOrStdin(), payload, opts); err != nil {
				return err
			}
			return out.Flush()
		},
	}
	cmd.Flags().StringArrayVar(&opts.KeyDirs, "decryption-keys-path", nil, "directory of node-local private keys (repeatable)")
	return cmd
}

// runDecoder runs the stream-processor personality. stdout carries layer
// bytes only; every diagnostic goes to stderr.
func runDecoder(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := newDecoderCommand()
	cmd.Use = DecoderName
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{command: DecoderName, err: err}
	})
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", DecoderName, err)
		return exitCode(err)
	}
	return ExitOK
}
