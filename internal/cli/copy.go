package cli

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/imagecopy"
	"github.com/imgcrypt/imgcrypt/internal/imagecrypt"
	"github.com/imgcrypt/imgcrypt/internal/keys"
)

func newCopyCommand(g *globalOptions) *cobra.Command {
	r := &registryOptions{}
	k := &keyOptions{}
	var recipients []string
	var platformArg string
	var encrypt, decrypt bool
	var jobs int
	cmd := &cobra.Command{
		Use:   "copy [flags] SRC DST",
		Short: "Copy an image between registries and OCI layouts, encrypting or decrypting it",
		Long: `Copy image SRC to DST without a store: each is a registry reference (with or
without docker://) or an OCI layout as oci:DIR:NAME. With --encrypt the
layers are encrypted for the --recipient keys on the way; with --decrypt
they are decrypted with the --key keys. Blobs stream through a temporary
directory, so memory stays flat; blobs the destination registry already has
are not uploaded again. The source is never changed.`,
		Example: `  imgcrypt copy --encrypt -r jwe:team.pub registry.example.com/app:1 registry.example.com/app:1-enc
  imgcrypt copy --decrypt -k team.pem --platform linux/amd64 registry.example.com/app:1-enc oci:./out:app
  imgcrypt copy --plain-http oci:./layout:app 127.0.0.1:5000/app:1`,
		Args: usage(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if jobs < 0 {
				return usagef(cmd, "--jobs must not be negative (0 means one per CPU)")
			}
			if encrypt && decrypt {
				return usagef(cmd, "--encrypt and --decrypt exclude each other")
			}
			if encrypt && len(recipients) == 0 {
				return usagef(cmd, "--encrypt needs at least one --recipient")
			}
			if !encrypt && len(recipients) > 0 {
				return usagef(cmd, "--recipient needs --encrypt")
			}
			if decrypt && len(k.keys) == 0 {
				return usagef(cmd, "--decrypt needs at least one --key")
			}
			src, err := imagecopy.ParseEndpoint(args[0])
			if err != nil {
				return usagef(cmd, "%v", err)
			}
			dst, err := imagecopy.ParseEndpoint(args[1])
			if err != nil {
				return usagef(cmd, "%v", err)
			}
			var platform *ocispec.Platform
			if platformArg != "" {
				p, err := platforms.Parse(platformArg)
				if err != nil {
					return usagef(cmd, "invalid --platform: %v", err)
				}
				platform = &p
			}
			if err := r.prepare(cmd); err != nil {
				return err
			}
			transform, err := copyTransform(encrypt, decrypt, recipients, k, jobs)
			if err != nil {
				return err
			}
			root, err := imagecopy.Copy(cmd.Context(), src, dst, imagecopy.Options{
				Registry: r.Options, Platform: platform, Transform: transform,
			})
			if err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", dst, root.Digest)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&encrypt, "encrypt", false, "encrypt the layers for the --recipient keys")
	f.BoolVar(&decrypt, "decrypt", false, "decrypt the layers with the --key keys")
	f.StringArrayVarP(&recipients, "recipient", "r", nil, "recipient to encrypt for, with --encrypt (repeatable)")
	k.register(cmd, "private key: to decrypt with --decrypt, or of a current recipient to add recipients with --encrypt")
	f.StringVar(&platformArg, "platform", "", "copy only this platform's manifest (default: the whole image)")
	f.IntVarP(&jobs, "jobs", "j", 0, "layers to process at once (default: one per CPU)")
	r.register(cmd)
	return cmd
}

func copyTransform(encrypt, decrypt bool, recipients []string, k *keyOptions, jobs int) (imagecopy.Transform, error) {
	opts := imagecrypt.Options{Jobs: jobs}
	switch {
	case encrypt:
		ec, err := keys.EncryptConfig(recipients, k.keys, k.decRecipients, k.keysOptions())
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, cs content.Store, root ocispec.Descriptor) (ocispec.Descriptor, error) {
			return imagecrypt.Encrypt(ctx, cs, root, imagecrypt.EncryptOptions{Options: opts, Config: ec})
		}, nil
	case decrypt:
		dc, err := keys.DecryptConfig(k.keys, k.decRecipients, k.keysOptions())
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, cs content.Store, root ocispec.Descriptor) (ocispec.Descriptor, error) {
			return imagecrypt.Decrypt(ctx, cs, root, imagecrypt.DecryptOptions{Options: opts, Config: dc})
		}, nil
	}
	return nil, nil
}
