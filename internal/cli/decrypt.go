package cli

import (
	"context"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/imagecrypt"
	"github.com/imgcrypt/imgcrypt/internal/keys"
)

type decryptOptions struct {
	keyOptions
	selectOptions
}

func newDecryptCommand(g *globalOptions) *cobra.Command {
	o := &decryptOptions{}
	cmd := &cobra.Command{
		Use:   "decrypt [flags] SRC [DST]",
		Short: "Decrypt the layers of an image",
		Long: `Decrypt the encrypted layers of image SRC and store the result as DST, or
replace SRC when DST is not given. Each layer gets back its original media
type and digest. Every layer key is unwrapped before any data is read: if a
key is missing nothing is written and the exit code is 3.

Keys: FILE, FILE:PASSWORD, FILE:pass=PASSWORD, FILE:file=PASSWORDFILE,
FILE:fd=N, or provider:NAME[:PARAMS]. A password given on the command line
is visible to every user of the machine in the process list: prefer file=
or fd=. PEM, DER, JWK, SEC1 EC, encrypted PEM,
gpg secret keyrings and pkcs11 key yaml are understood.`,
		Example: `  imgcrypt decrypt --key mykey alpine:enc alpine:dec
  imgcrypt decrypt --key bob.key --dec-recipient bob.crt app:1.0-enc app:1.0
  imgcrypt decrypt --key mykey:file=pw.txt --platform linux/amd64 app:enc`,
		Args: usage(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(o.keys) == 0 {
				return usagef(cmd, "at least one --key is required")
			}
			filter, err := o.filter(cmd)
			if err != nil {
				return err
			}
			dc, err := keys.DecryptConfig(o.keys, o.decRecipients, o.keysOptions())
			if err != nil {
				return err
			}
			return transformImage(cmd, g, args, "decrypting", func(ctx context.Context, s imageStore, img images.Image, progress imagecrypt.Progress) (images.Image, error) {
				target, err := imagecrypt.Decrypt(ctx, s.Content(), img.Target, imagecrypt.DecryptOptions{
					Options: imagecrypt.Options{Filter: filter, Jobs: o.jobs, Progress: progress},
					Config:  dc,
				})
				img.Target = target
				return img, err
			})
		},
	}
	o.keyOptions.register(cmd, "private key to decrypt with (repeatable; FILE[:PASSWORD])")
	o.selectOptions.register(cmd, true)
	return cmd
}
