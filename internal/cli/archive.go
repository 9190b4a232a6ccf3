package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/platforms"
	"github.com/google/renameio/v2"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func newImportCommand(g *globalOptions) *cobra.Command {
	var name string
	unpack := &daemonOptions{}
	cmd := &cobra.Command{
		Use:   "import [flags] FILE",
		Short: "Import images from an OCI or Docker archive",
		Long: `Import every image of an OCI image archive or a Docker archive ('docker save'
format) into the store. FILE - reads standard input. Encrypted images import
as they are; no key is needed.

Into containerd (--address), images are also unpacked for --platform: plain
ones always, encrypted ones when --key opens every layer. Without keys an
encrypted image is stored but not unpacked.`,
		Example: `  imgcrypt import alpine.tar
  docker save alpine | imgcrypt import -
  imgcrypt import --name app:1.0 app-oci.tar`,
		Args: usage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(unpack.keys) > 0 && g.daemonAddress() == "" {
				return usagef(cmd, "--key unpacks into containerd: give its socket with --address")
			}
			r, closeFn, err := openInput(args[0])
			if err != nil {
				return err
			}
			defer closeFn()
			s, err := g.openStore(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx, release, err := s.Lease(cmd.Context())
			if err != nil {
				return err
			}
			defer release()
			imgs, err := importArchive(ctx, s, r, name)
			if err != nil {
				return fmt.Errorf("importing %s: %w", args[0], err)
			}
			var names []string
			for _, img := range imgs {
				if err := saveImage(ctx, s, img); err != nil {
					return err
				}
				names = append(names, img.Name)
				if !g.quiet {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", img.Name, img.Target.Digest)
				}
			}
			return unpackImported(ctx, s, unpack, names, cmd.ErrOrStderr())
		},
	}
	unpack.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "name for the image when the archive holds one unnamed (or one) image")
	return cmd
}

// importArchive stores the blobs of an archive and returns its images,
// named from the archive or by name.
func importArchive(ctx context.Context, s imageStore, r io.Reader, name string) ([]images.Image, error) {
	index, err := archive.ImportIndex(ctx, s.Content(), r)
	if err != nil {
		return nil, fmt.Errorf("not an OCI or Docker image archive: %w", err)
	}
	blob, err := content.ReadBlob(ctx, s.Content(), index)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(blob, &idx); err != nil {
		return nil, err
	}
	if name != "" && len(idx.Manifests) != 1 {
		return nil, fmt.Errorf("--name needs an archive with one image; this one has %d", len(idx.Manifests))
	}
	// The archive's index only carried the names; the images now do.
	defer s.Content().Delete(context.WithoutCancel(ctx), index.Digest)
	var out []images.Image
	for _, m := range idx.Manifests {
		imgName := name
		if imgName == "" {
			imgName = m.Annotations[images.AnnotationImageName]
		}
		if imgName == "" {
			imgName = m.Annotations[ocispec.AnnotationRefName]
		}
		if imgName == "" {
			return nil, fmt.Errorf("image %s in the archive has no name; give one with --name", m.Digest)
		}
		// A bare tag, as OCI archives often carry (ref.name "v1.0"), is a
		// name of its own; a reference is normalized as containerd does.
		full := imgName
		if strings.ContainsAny(imgName, "/:@") {
			if full, err = normalizeName(imgName); err != nil {
				return nil, err
			}
		}
		target := m
		target.Annotations = nil
		if len(m.Annotations) > 0 {
			target.Annotations = map[string]string{}
			for k, v := range m.Annotations {
				if k != images.AnnotationImageName && k != ocispec.AnnotationRefName {
					target.Annotations[k] = v
				}
			}
			if len(target.Annotations) == 0 {
				target.Annotations = nil
			}
		}
		out = append(out, images.Image{Name: full, Target: target})
	}
	if len(out) == 0 {
		return nil, errors.New("the archive holds no image")
	}
	return out, nil
}

func openInput(path string) (io.Reader, func(), error) {
	if path == "-" {
		return os.Stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

func newExportCommand(g *globalOptions) *cobra.Command {
	var platformList []string
	cmd := &cobra.Command{
		Use:   "export [flags] FILE NAME...",
		Short: "Export images to an archive that docker and OCI tools load",
		Long: `Write the named images to an archive holding both an OCI index and a Docker
manifest.json, so 'docker load', 'imgcrypt import', 'ctr import' and skopeo
(oci-archive:) all take it. FILE - writes standard output. The file appears
only once it is complete. Encrypted images export as they are.`,
		Example: `  imgcrypt export alpine.tar alpine:enc
  imgcrypt export --platform linux/amd64 app.tar app:1.0 app:1.0-enc
  imgcrypt export - alpine:enc | ssh host imgcrypt import -`,
		Args: usage(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := []archive.ExportOpt{}
			if len(platformList) == 0 {
				// All blobs, and the host's platform for the Docker
				// manifest.json that 'docker load' reads.
				opts = append(opts, archive.WithAllPlatforms(), archive.WithPlatform(platforms.DefaultStrict()))
			} else {
				ps, err := platforms.ParseAll(platformList)
				if err != nil {
					return usagef(cmd, "invalid --platform: %v", err)
				}
				opts = append(opts, archive.WithPlatform(platforms.Ordered(ps...)))
			}
			s, err := g.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer s.Close()
			var imgs []images.Image
			for _, name := range args[1:] {
				img, err := findImage(cmd.Context(), s.Images(), name)
				if err != nil {
					return err
				}
				imgs = append(imgs, img)
			}
			opts = append(opts, archive.WithImages(imgs))
			return writeOutput(args[0], cmd.OutOrStdout(), func(w io.Writer) error {
				return archive.Export(cmd.Context(), s.Content(), w, opts...)
			})
		},
	}
	cmd.Flags().StringArrayVar(&platformList, "platform", nil, "only this platform (repeatable; default: all)")
	return cmd
}

// writeOutput writes to path through a temporary file renamed into place on
// success, so a failed or interrupted export leaves no partial file.
func writeOutput(path string, stdout io.Writer, fn func(io.Writer) error) error {
	if path == "-" {
		return fn(stdout)
	}
	f, err := renameio.NewPendingFile(path, renameio.WithPermissions(0o644))
	if err != nil {
		// The error names renameio's temporary file; the user named path.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("writing %s: %w", path, pe.Err)
		}
		return err
	}
	defer f.Cleanup()
	if err := fn(f); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}
