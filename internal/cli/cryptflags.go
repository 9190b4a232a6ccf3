package cli

import (
	"runtime"

	"github.com/containerd/platforms"
	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/imagecrypt"
	"github.com/imgcrypt/imgcrypt/internal/keys"
)

// keyOptions are the flags that name private keys, as ctr and skopeo spell them.
type keyOptions struct {
	keys          []string
	decRecipients []string
	gpgHomedir    string
	gpgVersion    string
}

func (o *keyOptions) register(cmd *cobra.Command, keyHelp string) {
	f := cmd.Flags()
	f.StringArrayVarP(&o.keys, "key", "k", nil, keyHelp)
	f.StringArrayVar(&o.decRecipients, "dec-recipient", nil, "x509 certificate of a pkcs7 key, needed to decrypt with it (pkcs7:FILE or FILE)")
	f.StringVar(&o.gpgHomedir, "gpg-homedir", "", "gpg home directory for pgp recipients and keys")
	f.StringVar(&o.gpgVersion, "gpg-version", "", "gpg version: v1 or v2 (default: guessed)")
}

func (o *keyOptions) keysOptions() keys.Options {
	return keys.Options{GPGHomedir: o.gpgHomedir, GPGVersion: o.gpgVersion}
}

// selectOptions choose platforms and layers, as upstream imgcrypt does.
type selectOptions struct {
	platforms []string
	layers    []int
	jobs      int
}

func (o *selectOptions) register(cmd *cobra.Command, withJobs bool) {
	f := cmd.Flags()
	f.StringArrayVar(&o.platforms, "platform", nil, "only this platform, e.g. linux/arm64 (repeatable; default: all)")
	f.IntSliceVar(&o.layers, "layer", nil, "only the layer with this index in each image, negative counts from the top (repeatable; default: all)")
	if withJobs {
		f.IntVarP(&o.jobs, "jobs", "j", runtime.NumCPU(), "layers to process at once")
	}
}

func (o *selectOptions) filter(cmd *cobra.Command) (imagecrypt.Filter, error) {
	var f imagecrypt.Filter
	for _, s := range o.platforms {
		p, err := platforms.Parse(s)
		if err != nil {
			return f, usagef(cmd, "invalid --platform %q: %v", s, err)
		}
		f.Platforms = append(f.Platforms, p)
	}
	f.Layers = o.layers
	if o.jobs < 0 {
		return f, usagef(cmd, "--jobs must not be negative (0 means one per CPU)")
	}
	return f, nil
}
