package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/nodekey"
)

func newNodeKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node-key",
		Short: "Install and list the node's decryption keys (Kubernetes node-key model)",
		Long: `Manage the key directory that containerd's stream processor (ctd-decoder)
reads on a Kubernetes node. With CRI's image_decryption key_model = "node",
the kubelet passes no keys: containerd unpacks an encrypted image only if a
key in this directory matches one of its recipients. See docs/kubernetes.md.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newNodeKeyInstallCommand(), newNodeKeyListCommand())
	return cmd
}

func newNodeKeyInstallCommand() *cobra.Command {
	var opts nodekey.InstallOptions
	cmd := &cobra.Command{
		Use:   "install [flags] KEY",
		Short: "Copy a private key into the node's key directory",
		Long: `Copy the private key KEY into the key directory under its own file name,
mode 0600 in a directory of mode 0700, replacing nothing unless --force is
given. The copy is written to a temporary file and moved into place, so the
decoder never reads half a key. Installing the same key again is not an
error.

The decoder runs unattended, so a key protected by a password is refused:
install an unprotected copy. Files that hold no key (public keys included)
are refused too. A pkcs7 recipient needs its certificate installed beside
the private key.`,
		Example: `  imgcrypt node-key install node.pem
  imgcrypt node-key install --dir /etc/imgcrypt/keys --force node.pem
  openssl pkey -in locked.pem -out node.pem && imgcrypt node-key install node.pem`,
		Args: usage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := nodekey.Install(args[0], opts)
			if errors.Is(err, nodekey.ErrNeedsPassword) {
				return fmt.Errorf("%w: install an unprotected copy (openssl pkey -in KEY -out PLAIN)", err)
			}
			if err != nil {
				return err
			}
			if res.Tightened {
				fmt.Fprintf(cmd.ErrOrStderr(), "imgcrypt: %s was accessible to other users; it is now mode 0700\n", opts.Dir)
			}
			verb := "installed"
			if res.Unchanged {
				verb = "already installed"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s %s\n", verb, res.Path, res.Type, orDash(res.Fingerprint))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", nodekey.DefaultDir, "node key directory (the decoder's --decryption-keys-path)")
	f.BoolVarP(&opts.Force, "force", "f", false, "replace a different key of the same name")
	return cmd
}

func newNodeKeyListCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "list [flags]",
		Aliases: []string{"ls"},
		Short:   "List the keys in the node's key directory",
		Long: `List the keys the decoder finds in the key directory: file name, key type
and the SHA-256 fingerprint of the public key (for RSA and EC keys and
certificates, what 'openssl pkey -pubout -outform DER | sha256sum' prints),
never key bytes. Files the decoder skips (not keys, keys that need a
password) and keys readable by other users are reported on stderr.`,
		Example: `  imgcrypt node-key list
  imgcrypt node-key list --dir /etc/imgcrypt/keys`,
		Args: usage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := nodekey.List(dir)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no key directory at %s (imgcrypt node-key install creates it)", dir)
			}
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTYPE\tFINGERPRINT")
			usable := 0
			for _, e := range entries {
				if e.Skipped != nil {
					fmt.Fprintf(stderr, "imgcrypt: skipped by the decoder: %v\n", e.Skipped)
					continue
				}
				usable++
				fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, e.Type, orDash(e.Fingerprint))
				if e.Mode&0o077 != 0 {
					fmt.Fprintf(stderr, "imgcrypt: %s is accessible to other users (mode %04o): chmod 600 it\n", e.Name, e.Mode)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if usable == 0 {
				fmt.Fprintf(stderr, "imgcrypt: no usable keys in %s: the decoder can decrypt nothing\n", dir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", nodekey.DefaultDir, "node key directory (the decoder's --decryption-keys-path)")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
