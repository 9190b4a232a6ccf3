package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/keygen"
)

func newKeygenCommand() *cobra.Command {
	o := keygen.Options{}
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen [flags] PATH",
		Short: "Generate a key pair for encrypting images",
		Long: `Generate a key pair: the private key in PATH (mode 0600) and the public key in
PATH.pub. Use the public key as a recipient (--recipient jwe:PATH.pub) and
the private key to decrypt (--key PATH). Existing files are kept unless
--force is given.`,
		Example: `  imgcrypt keygen mykey
  imgcrypt keygen --type ec --curve P-384 team-key
  imgcrypt keygen --jwk --bits 4096 node-key`,
		Args: usage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			private, public, err := keygen.Generate(o)
			if err != nil {
				return usagef(cmd, "%v", err)
			}
			if err := keygen.WriteFiles(args[0], private, public, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "private key: %s\npublic key:  %s.pub\n", args[0], args[0])
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Type, "type", "rsa", "key type: rsa or ec")
	f.IntVar(&o.Bits, "bits", 3072, "RSA key size in bits")
	f.StringVar(&o.Curve, "curve", "P-256", "EC curve: P-256, P-384 or P-521")
	f.BoolVar(&o.JWK, "jwk", false, "write JWK (JSON) instead of PEM")
	f.BoolVarP(&force, "force", "f", false, "overwrite existing files")
	return cmd
}
