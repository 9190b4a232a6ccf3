package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/containers/ocicrypt/config"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/daemon"
	"github.com/imgcrypt/imgcrypt/internal/imagecrypt"
	"github.com/imgcrypt/imgcrypt/internal/keys"
)

// daemonOptions are the flags of commands that unpack into containerd.
type daemonOptions struct {
	keyOptions
	platform    string
	snapshotter string
}

func (o *daemonOptions) register(cmd *cobra.Command) {
	o.keyOptions.register(cmd, "private key for the image's encrypted layers (repeatable; FILE[:PASSWORD])")
	f := cmd.Flags()
	f.StringVar(&o.platform, "platform", defaultPlatform(), "platform to unpack")
	f.StringVar(&o.snapshotter, "snapshotter", envOr("CONTAINERD_SNAPSHOTTER", "overlayfs"), "containerd snapshotter ($CONTAINERD_SNAPSHOTTER)")
}

func defaultPlatform() string { return platforms.DefaultString() }

// decryptConfig parses the keys; none gives an empty config, which leaves
// decryption to the stream processor's node keys.
func (o *daemonOptions) decryptConfig() (*config.DecryptConfig, error) {
	if len(o.keys) == 0 {
		return &config.DecryptConfig{Parameters: map[string][][]byte{}}, nil
	}
	return keys.DecryptConfig(o.keys, o.decRecipients, o.keysOptions())
}

func newRunCommand(g *globalOptions) *cobra.Command {
	o := &daemonOptions{}
	var skipAuth, remove bool
	cmd := &cobra.Command{
		Use:   "run [flags] NAME ID [CMD [ARG...]]",
		Short: "Run an encrypted image with containerd",
		Long: `Run image NAME from containerd's store as container ID with runc, and exit with
its exit code. Before anything starts, the keys are checked against every
encrypted layer of the image for the platform: without a matching key the
command fails with exit code 3 ("not authorized"). --skip-decrypt-auth skips
that check, for the node-key model where the stream processor holds the keys.`,
		Example: `  imgcrypt --address /run/containerd/containerd.sock run --rm --key mykey app:enc app1
  imgcrypt run --rm --skip-decrypt-auth app:enc app2 /bin/sh -c 'echo hello'`,
		Args: usage(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.daemonStore(cmd.Context(), "run")
			if err != nil {
				return err
			}
			defer s.Close()
			if len(o.keys) == 0 && !skipAuth {
				return usagef(cmd, "give the image's keys with --key, or --skip-decrypt-auth to rely on the node keys")
			}
			dc, err := o.decryptConfig()
			if err != nil {
				return err
			}
			img, err := findImage(cmd.Context(), s.Images(), args[0])
			if err != nil {
				return err
			}
			code, err := daemon.Run(cmd.Context(), s, img, args[1], daemon.RunOptions{
				Platform: o.platform, Snapshotter: o.snapshotter, Args: args[2:], Remove: remove,
				Decrypt: dc, Authorize: !skipAuth,
				Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitStatusError{code: code}
			}
			return nil
		},
	}
	o.register(cmd)
	// Flags after NAME belong to the container's command.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().BoolVar(&skipAuth, "skip-decrypt-auth", false, "do not check the keys first (node-key model)")
	cmd.Flags().BoolVar(&remove, "rm", false, "remove the container and its snapshot when it exits")
	return cmd
}

// exitStatusError carries a container's non-zero exit code out as ours.
type exitStatusError struct{ code int }

func (e *exitStatusError) Error() string {
	return fmt.Sprintf("container exited with status %d", e.code)
}

// unpackImported unpacks freshly imported images into the daemon when keys
// (or plain layers) allow it.
func unpackImported(ctx context.Context, s imageStore, o *daemonOptions, names []string, stderr io.Writer) error {
	ds, ok := s.(*daemon.Store)
	if !ok {
		return nil
	}
	dc, err := o.decryptConfig()
	if err != nil {
		return err
	}
	for _, name := range names {
		img, err := ds.Images().Get(ctx, name)
		if err != nil {
			return err
		}
		encrypted, err := isEncryptedImage(ctx, ds, img, o.platform)
		if err != nil {
			return err
		}
		if encrypted && len(o.keys) == 0 {
			fmt.Fprintf(stderr, "%s is encrypted: stored but not unpacked (give --key to unpack)\n", name)
			continue
		}
		if encrypted {
			if err := daemon.Authorize(ctx, ds.Client(), img, o.platform, dc); err != nil {
				return err
			}
		}
		if err := daemon.Unpack(ctx, ds.Client(), img, o.platform, o.snapshotter, dc); err != nil {
			return err
		}
	}
	return nil
}

// isEncryptedImage reports whether any layer of img for platform is encrypted.
func isEncryptedImage(ctx context.Context, s imageStore, img images.Image, platform string) (bool, error) {
	p, err := platforms.Parse(platform)
	if err != nil {
		return false, err
	}
	layers, err := imagecrypt.Layers(ctx, s.Content(), img.Target, imagecrypt.Filter{Platforms: []ocispec.Platform{p}})
	if err != nil {
		return false, err
	}
	for _, l := range layers {
		if len(l.Encryption) > 0 {
			return true, nil
		}
	}
	return false, nil
}
