package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/keys"
)

// DecoderName is the name under which imgcrypt is containerd's stream
// processor: the basename of a symlink, or imgcrypt's first argument.
const DecoderName = "ctd-decoder"

// isDecoder decides the personality from argv alone, before any flag is
// parsed, so the stream processor never builds the user-facing CLI.
func isDecoder(args []string) bool {
	return len(args) > 0 && filepath.Base(args[0]) == DecoderName
}

// Main runs imgcrypt with os.Args-style args and returns the exit code.
func Main(args []string) int {
	if len(args) == 2 && args[1] == holdOutputArg {
		time.Sleep(holdDuration)
		return ExitOK
	}
	// containerd and ocicrypt log through logrus; their warnings (such as
	// fsverity being unsupported) are noise on a command line.
	logrus.SetLevel(logrus.ErrorLevel)
	if isDecoder(args) {
		return runDecoder(args[1:], os.Stdin, os.Stdout, os.Stderr)
	}
	if len(args) > 1 && args[1] == DecoderName {
		return runDecoder(args[2:], os.Stdin, os.Stdout, os.Stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args[1:], os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "imgcrypt: interrupted; no image was left half-written")
		return ExitInterrupted
	}
	var status *exitStatusError
	if errors.As(err, &status) {
		return status.code // the container said what it had to say
	}
	// Errors relayed from the stream processor through containerd keep its
	// trailing newline; one line is one line.
	msg := strings.TrimRight(err.Error(), "\n ")
	var usage *usageError
	if errors.As(err, &usage) {
		fmt.Fprintf(stderr, "imgcrypt: %s (see '%s --help')\n", msg, usage.command)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "imgcrypt: %s\n", msg)
	return exitCode(err)
}

// version is set at build time with -ldflags "-X ...cli.version=...".
var version = "dev"

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "imgcrypt",
		Short: "Encrypt and decrypt container images",
		Long: `imgcrypt encrypts and decrypts the layers of container images in the
ocicrypt format that containerd, skopeo and nerdctl use.

Images live in an embedded store, an OCI image layout directory that needs no
daemon: --store DIR, else $IMGCRYPT_STORE, else $XDG_DATA_HOME/imgcrypt
(~/.local/share/imgcrypt).

Reached through a symlink named ctd-decoder (or as 'imgcrypt ctd-decoder'),
imgcrypt is containerd's stream processor for encrypted layers.`,
		Example: `  imgcrypt keygen mykey
  imgcrypt import alpine.tar
  imgcrypt encrypt --recipient jwe:mykey.pub alpine:latest alpine:enc
  imgcrypt layerinfo alpine:enc
  imgcrypt decrypt --key mykey alpine:enc alpine:dec
  imgcrypt export out.tar alpine:enc`,
		Version:           version,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              noArgs,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.keyProviderConfig == "" {
			return nil
		}
		// Before any key is parsed: provider: keys name registered providers.
		return keys.LoadProviderConfig(g.keyProviderConfig)
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{command: cmd.CommandPath(), err: err}
	})
	g.register(root)
	root.AddCommand(
		newKeygenCommand(),
		newEncryptCommand(g),
		newDecryptCommand(g),
		newLayerinfoCommand(g),
		newImagesCommand(g),
		newTagCommand(g),
		newRmiCommand(g),
		newPruneCommand(g),
		newImportCommand(g),
		newExportCommand(g),
		newPullCommand(g),
		newPushCommand(g),
		newCopyCommand(g),
		newLoginCommand(),
		newLogoutCommand(),
		newRunCommand(g),
		newContainerdConfigCommand(),
		newNodeKeyCommand(),
		newHSMCommand(),
		newDecoderCommand(),
	)
	return root
}
