package cli

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/imagecrypt"
)

type layerinfoOptions struct {
	selectOptions
	format     string
	noResolve  bool
	gpgHomedir string
	gpgVersion string
}

func newLayerinfoCommand(g *globalOptions) *cobra.Command {
	o := &layerinfoOptions{}
	cmd := &cobra.Command{
		Use:   "layerinfo [flags] NAME",
		Short: "Show the layers of an image and how each is encrypted",
		Long: `Show every layer of every platform of an image: its digest, size, the
schemes it is encrypted with and its recipients. pgp recipients are shown by
gpg user name when gpg knows the key, unless -n is given.`,
		Example: `  imgcrypt layerinfo alpine:enc
  imgcrypt layerinfo --platform linux/arm64 --layer -1 app:1.0-enc
  imgcrypt layerinfo --format json app:1.0-enc | jq '.[].encryption'`,
		Args: usage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.format != "table" && o.format != "json" {
				return usagef(cmd, "invalid --format %q (want table or json)", o.format)
			}
			filter, err := o.filter(cmd)
			if err != nil {
				return err
			}
			s, img, err := g.openImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			layers, err := imagecrypt.Layers(cmd.Context(), s.Content(), img.Target, filter)
			if err != nil {
				return err
			}
			if !o.noResolve {
				o.resolvePGP(layers)
			}
			if o.format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(layers)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "#\tDIGEST\tPLATFORM\tSIZE\tENCRYPTION\tRECIPIENTS\t")
			for _, l := range layers {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t\n", l.Index, l.Digest, l.Platform, l.Size,
					strings.Join(l.Encryption, ","), strings.Join(l.Recipients, ", "))
			}
			return tw.Flush()
		},
	}
	o.selectOptions.register(cmd, false)
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "table", "output format: table or json")
	f.BoolVarP(&o.noResolve, "no-resolve", "n", false, "show pgp key IDs instead of resolving them to user names")
	f.StringVar(&o.gpgHomedir, "gpg-homedir", "", "gpg home directory to resolve pgp key IDs in")
	f.StringVar(&o.gpgVersion, "gpg-version", "", "gpg version: v1 or v2 (default: guessed)")
	return cmd
}

// resolvePGP replaces pgp key IDs by the e-mail (or user ID) gpg knows
// for them; without gpg, or for unknown keys, the IDs stay, still correct.
// ocicrypt's own resolver formats IDs without leading zeros, which gpg
// cannot look up, so this asks gpg directly.
func (o *layerinfoOptions) resolvePGP(layers []imagecrypt.LayerInfo) {
	gpg, err := exec.LookPath("gpg")
	if o.gpgVersion == "v2" {
		if g2, err2 := exec.LookPath("gpg2"); err2 == nil {
			gpg, err = g2, nil
		}
	}
	if err != nil {
		return
	}
	known := map[string]string{}
	for i := range layers {
		for j, r := range layers[i].Recipients {
			if !strings.HasPrefix(r, "0x") {
				continue
			}
			name, ok := known[r]
			if !ok {
				name = gpgUserID(gpg, o.gpgHomedir, r)
				known[r] = name
			}
			if name != "" {
				layers[i].Recipients[j] = name
			}
		}
	}
}

// gpgUserID returns the e-mail of the first user ID of keyID, its whole
// user ID when it has no e-mail, or "" when gpg does not know the key.
func gpgUserID(gpg, homedir, keyID string) string {
	args := []string{"--batch", "--with-colons", "--list-keys", keyID}
	if homedir != "" {
		args = append([]string{"--homedir", homedir}, args...)
	}
	out, err := exec.Command(gpg, args...).Output()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Split(line, ":")
		if len(fields) < 10 || fields[0] != "uid" {
			continue
		}
		uid := fields[9]
		if i, j := strings.LastIndex(uid, "<"), strings.LastIndex(uid, ">"); i >= 0 && j > i {
			return uid[i+1 : j]
		}
		return uid
	}
	return ""
}
