package cli

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/imagecrypt"
	"github.com/imgcrypt/imgcrypt/internal/keys"
)

type encryptOptions struct {
	keyOptions
	selectOptions
	recipients []string
	replace    bool
}

func newEncryptCommand(g *globalOptions) *cobra.Command {
	o := &encryptOptions{}
	cmd := &cobra.Command{
		Use:   "encrypt [flags] SRC [DST]",
		Short: "Encrypt the layers of an image",
		Long: `Encrypt the layers of image SRC for the given recipients and store the result
as DST, or replace SRC when DST is not given. The source image is never
changed when DST is given, and is replaced atomically when it is not.

Recipients:
  jwe:FILE        RSA or EC public key (PEM, DER or JWK)
  pkcs7:FILE      x509 certificate
  pgp:NAME        gpg user or e-mail in the gpg keyring (needs gpg)
  pkcs11:FILE     pkcs11 key yaml or public key
  provider:NAME[:PARAMS]  an ocicrypt key provider (OCICRYPT_KEYPROVIDER_CONFIG)

Layers already encrypted keep their data; with --key of a current recipient
the new recipients are added to them, or with --replace-recipients they
replace the current ones. A recipient so removed can no longer unwrap the
layer key from the image, but the data is not re-encrypted: anyone who kept
the layer key can still read it.`,
		Example: `  imgcrypt encrypt --recipient jwe:mykey.pub alpine alpine:enc
  imgcrypt encrypt -r jwe:alice.pub -r pkcs7:bob.crt --platform linux/arm64 app:1.0 app:1.0-enc
  imgcrypt encrypt -r jwe:mykey.pub --layer -1 app:1.0          # only the top layer, in place
  imgcrypt encrypt --key alice.pem -r jwe:carol.pub app:1.0-enc  # add a recipient
  imgcrypt encrypt --key alice.pem -r jwe:carol.pub --replace-recipients app:1.0-enc  # only carol`,
		Args: usage(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(o.recipients) == 0 {
				return usagef(cmd, "at least one --recipient is required")
			}
			filter, err := o.filter(cmd)
			if err != nil {
				return err
			}
			ec, err := keys.EncryptConfig(o.recipients, o.keys, o.decRecipients, o.keysOptions())
			if err != nil {
				return err
			}
			return transformImage(cmd, g, args, "encrypting", func(ctx context.Context, s imageStore, img images.Image, progress imagecrypt.Progress) (images.Image, error) {
				target, err := imagecrypt.Encrypt(ctx, s.Content(), img.Target, imagecrypt.EncryptOptions{
					Options: imagecrypt.Options{Filter: filter, Jobs: o.jobs, Progress: progress},
					Config:  ec, ReplaceRecipients: o.replace,
				})
				img.Target = target
				return img, err
			})
		},
	}
	cmd.Flags().StringArrayVarP(&o.recipients, "recipient", "r", nil, "recipient to encrypt for (repeatable; see above)")
	cmd.Flags().BoolVar(&o.replace, "replace-recipients", false, "make encrypted layers' recipients exactly the --recipient ones")
	o.keyOptions.register(cmd, "private key of a current recipient, to add recipients to encrypted layers (FILE[:PASSWORD])")
	o.selectOptions.register(cmd, true)
	return cmd
}

// transformImage runs fn on image args[0] and stores the result as args[1],
// or in place. The record is written only after every blob is stored, so a
// failure or interrupt leaves both names as they were.
func transformImage(cmd *cobra.Command, g *globalOptions, args []string, verb string,
	fn func(context.Context, imageStore, images.Image, imagecrypt.Progress) (images.Image, error)) error {
	ctx := cmd.Context()
	s, err := g.openStore(cmd.Context(), false)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, release, err := s.Lease(ctx)
	if err != nil {
		return err
	}
	defer release()
	src, err := findImage(ctx, s.Images(), args[0])
	if err != nil {
		return err
	}
	dstName := src.Name
	if len(args) == 2 {
		if dstName, err = targetName(ctx, s.Images(), args[1]); err != nil {
			return err
		}
	}
	progress := newProgress(cmd.ErrOrStderr(), verb, g.quiet)
	out, err := fn(ctx, s, src, progress)
	progress.Finish()
	if err != nil {
		return err
	}
	out.Name = dstName
	if err := saveImage(ctx, s, out); err != nil {
		return fmt.Errorf("saving %s: %w", dstName, err)
	}
	if !g.quiet {
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", dstName, out.Target.Digest)
	}
	return nil
}
