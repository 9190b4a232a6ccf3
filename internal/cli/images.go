package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/imagecrypt"
)

// imageSummary is one row of 'imgcrypt images'.
type imageSummary struct {
	Name      string   `json:"name"`
	Digest    string   `json:"digest"`
	MediaType string   `json:"mediaType"`
	Size      int64    `json:"size"`
	Platforms []string `json:"platforms"`
	Layers    int      `json:"layers"`
	Encrypted int      `json:"encryptedLayers"`
}

func newImagesCommand(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "images [flags]",
		Aliases: []string{"ls", "list"},
		Short:   "List the images in the store",
		Long: `List the images in the store with their platforms, layer size and how many
of their layers are encrypted.`,
		Example: `  imgcrypt images
  imgcrypt images --quiet
  imgcrypt images --format json`,
		Args: usage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return usagef(cmd, "invalid --format %q (want table or json)", format)
			}
			var imgs []images.Image
			s, err := g.openStore(cmd.Context(), false)
			switch {
			case errors.Is(err, errNoStore):
				// No store yet is an empty list, not an error.
			case err != nil:
				return err
			default:
				defer s.Close()
				if imgs, err = s.Images().List(cmd.Context()); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if g.quiet {
				for _, img := range imgs {
					fmt.Fprintln(out, img.Name)
				}
				return nil
			}
			rows := make([]imageSummary, 0, len(imgs))
			for _, img := range imgs {
				rows = append(rows, summarize(cmd.Context(), s, img))
			}
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDIGEST\tPLATFORMS\tSIZE\tENCRYPTED")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d layers\n", r.Name, shortDigest(r.Digest),
					joinOr(r.Platforms, "-"), humanBytes(r.Size), r.Encrypted, r.Layers)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// summarize describes img; an image with missing blobs is still listed.
func summarize(ctx context.Context, s imageStore, img images.Image) imageSummary {
	r := imageSummary{Name: img.Name, Digest: img.Target.Digest.String(), MediaType: img.Target.MediaType, Platforms: []string{}}
	layers, err := imagecrypt.Layers(ctx, s.Content(), img.Target, imagecrypt.Filter{})
	if err != nil {
		return r
	}
	seen := map[string]bool{}
	for _, l := range layers {
		if !seen[l.Platform] {
			seen[l.Platform] = true
			r.Platforms = append(r.Platforms, l.Platform)
		}
		r.Size += l.Size
		r.Layers++
		if len(l.Encryption) > 0 {
			r.Encrypted++
		}
	}
	return r
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func joinOr(s []string, empty string) string {
	if len(s) == 0 {
		return empty
	}
	out := s[0]
	for _, x := range s[1:] {
		out += "," + x
	}
	return out
}

func newTagCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "tag SRC DST",
		Short:   "Give an image another name",
		Example: `  imgcrypt tag alpine:enc registry.example.com/team/alpine:enc`,
		Args:    usage(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, img, err := g.openImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			if img.Name, err = targetName(cmd.Context(), s.Images(), args[1]); err != nil {
				return err
			}
			return saveImage(cmd.Context(), s, img)
		},
	}
}

func newRmiCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "rmi NAME...",
		Aliases: []string{"rm"},
		Short:   "Remove image names from the store",
		Long: `Remove image names from the store. Their blobs stay until 'imgcrypt prune'
removes every blob no image refers to.`,
		Example: `  imgcrypt rmi alpine:dec
  imgcrypt rmi alpine:dec alpine:enc && imgcrypt prune`,
		Args: usage(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer s.Close()
			var errs []error
			for _, name := range args {
				img, err := findImage(cmd.Context(), s.Images(), name)
				if err == nil {
					err = s.Images().Delete(cmd.Context(), img.Name)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if !g.quiet {
					fmt.Fprintln(cmd.OutOrStdout(), img.Name)
				}
			}
			return errors.Join(errs...)
		},
	}
}

func newPruneCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Remove blobs no image refers to",
		Long: `Remove every blob that no image in the store refers to, and the leftovers of
interrupted commands. It waits for other imgcrypt commands on the store to
finish first.`,
		Example: `  imgcrypt prune`,
		Args:    usage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer s.Close()
			layout, ok := s.(embeddedStore)
			if !ok {
				return errors.New("prune works on the embedded store; containerd collects its own garbage")
			}
			res, err := layout.Prune(cmd.Context())
			if err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(cmd.OutOrStdout(), "removed %d blobs, %s\n", res.Blobs, humanBytes(res.Bytes))
			}
			return nil
		},
	}
}
