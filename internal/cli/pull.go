package cli

import (
	"fmt"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/daemon"
	"github.com/imgcrypt/imgcrypt/internal/registry"
)

func newPullCommand(g *globalOptions) *cobra.Command {
	o := &daemonOptions{}
	r := &registryOptions{}
	var platformList []string
	var allPlatforms, unpack bool
	cmd := &cobra.Command{
		Use:   "pull [flags] NAME",
		Short: "Pull an image from a registry",
		Long: `Pull an image from its registry into the store: this machine's platform by
default, others with --platform or --all-platforms. Encrypted images pull as
they are, no key needed. A pull that fails names no image; run again, it
resumes the blobs it had begun.

Into containerd (--address), the image is also unpacked for this machine's
platform: encrypted layers are decrypted by containerd's ctd-decoder stream
processor with the keys given here (checked against every layer first) or,
without --key, with the node keys in the decoder's key directory. With
--unpack=false an encrypted image is kept for later.`,
		Example: `  imgcrypt pull registry.example.com/team/app:enc
  imgcrypt pull --all-platforms --plain-http 127.0.0.1:5000/app:enc
  imgcrypt --address /run/containerd/containerd.sock pull --key mykey registry.example.com/app:enc`,
		Args: usage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			want, err := pullPlatforms(cmd, platformList, allPlatforms)
			if err != nil {
				return err
			}
			if err := r.prepare(cmd); err != nil {
				return err
			}
			ref, err := normalizeName(args[0])
			if err != nil {
				return err
			}
			s, err := g.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			ds, daemonStore := s.(*daemon.Store)
			if len(o.keys) > 0 && !daemonStore {
				return usagef(cmd, "--key unpacks into containerd: give its socket with --address")
			}
			dc, err := o.decryptConfig()
			if err != nil {
				return err
			}
			// Everything fetched stays leased until the image names it, and
			// the name comes last: a pull that fails names no image.
			ctx, release, err := s.Lease(ctx)
			if err != nil {
				return err
			}
			defer release()
			bar := newProgress(cmd.ErrOrStderr(), "pulling", g.quiet)
			bar.Start(0, 0)
			target, err := registry.Pull(ctx, bar.counted(s.Content()), ref, want, r.Options)
			bar.Finish()
			if err != nil {
				return err
			}
			img := images.Image{Name: ref, Target: target}
			if daemonStore && unpack {
				if len(o.keys) > 0 {
					if err := daemon.Authorize(ctx, ds.Client(), img, o.platform, dc); err != nil {
						return err
					}
				}
				if err := daemon.Unpack(ctx, ds.Client(), img, o.platform, o.snapshotter, dc); err != nil {
					return err
				}
			}
			if err := saveImage(ctx, s, img); err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", img.Name, img.Target.Digest)
			}
			return nil
		},
	}
	o.keyOptions.register(cmd, "private key for the image's encrypted layers, to unpack into containerd (repeatable; FILE[:PASSWORD])")
	f := cmd.Flags()
	f.StringVar(&o.platform, "unpack-platform", defaultPlatform(), "platform to unpack into containerd")
	f.StringVar(&o.snapshotter, "snapshotter", envOr("CONTAINERD_SNAPSHOTTER", "overlayfs"), "containerd snapshotter ($CONTAINERD_SNAPSHOTTER)")
	f.BoolVar(&unpack, "unpack", true, "unpack into containerd after pulling")
	f.StringArrayVar(&platformList, "platform", nil, "pull this platform (repeatable; default: this machine's)")
	f.BoolVar(&allPlatforms, "all-platforms", false, "pull every platform")
	r.register(cmd)
	return cmd
}
