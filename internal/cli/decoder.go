package cli

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

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
			// Chunks are large already; no buffering between them and the pipe.
			return decoder.Run(cmd.OutOrStdout(), cmd.InOrStdin(), payload, opts)
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
		holdOutput(os.Stdout)
		return exitCode(err)
	}
	return ExitOK
}

// holdOutputArg makes imgcrypt a short-lived child that only keeps the
// decoder's stdout open. containerd (core/diff/apply, 1.6 to 2.4) reads a
// stream processor's output to its end and then asks for the exit status
// without waiting for it: when stdout closes together with the failed
// decoder, the status is often not in yet, and containerd reports "wrong
// diff id" instead of the decoder's message. With the child holding stdout
// a moment longer, the status arrives first.
const holdOutputArg = "__hold-output"

// holdDuration is far longer than containerd needs to reap the decoder,
// and short enough to go unnoticed in a failed unpack.
const holdDuration = 300 * time.Millisecond

// holdOutput starts the child when stdout is a pipe (containerd's case).
func holdOutput(stdout *os.File) {
	fi, err := stdout.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	// The child's stderr is not containerd's pipe, or containerd would wait
	// for the child too before reading the status.
	child := &exec.Cmd{Path: self, Args: []string{"imgcrypt", holdOutputArg}, Stdout: stdout}
	if child.Start() == nil {
		child.Process.Release()
	}
}
